#!/usr/bin/env bash
# Object destination throughput: writes RECORDS (default 10 M) default-format
# records to the directory destination and to an S3 bucket on a local
# versitygw, as gzip'd text (gzip level 1, flowlog's default, and level 6,
# zlib's default) and Parquet (gzip 1 and 6, zstd), and writes
# bench/sinks/RESULTS.md.
#
#   bench/sinks/run.sh
#   RECORDS=2000000 bench/sinks/run.sh
#
# The writer is pinned to core 0 and versitygw to core 1 when taskset works;
# CPU seconds are measured per process (getrusage for the writer, /proc for
# the server), so they hold on a loaded machine where wall times do not.
# Needs versitygw: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
out="$root/bench/out/sinks"
mkdir -p "$out"
records=${RECORDS:-10000000}
bin="$out/sinks"
results="$out/results.jsonl"
: >"$results"

vgw=$(command -v versitygw || true)
[ -n "$vgw" ] || vgw="$(go env GOPATH)/bin/versitygw"
if [ ! -x "$vgw" ]; then
	echo "versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0" >&2
	exit 1
fi

pin0=() pin1=() pinning="none (taskset not available)"
if command -v taskset >/dev/null && taskset -c 1 true 2>/dev/null; then
	pin0=(taskset -c 0) pin1=(taskset -c 1)
	pinning="writer on core 0 (GOMAXPROCS 1), versitygw on core 1"
fi

echo "== building"
go build -o "$bin" ./bench/sinks

work=$(mktemp -d "$out/run-XXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/s3"
env -i PATH="$PATH" HOME="$HOME" "${pin1[@]}" "$vgw" --access bench --secret benchsecret --port "127.0.0.1:$port" --quiet posix "$work/s3" >"$work/versitygw.log" 2>&1 &
vgw_pid=$!
trap 'kill $vgw_pid 2>/dev/null; wait $vgw_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

# server_cpu prints versitygw's CPU seconds so far (user + system).
server_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$vgw_pid/stat"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run() { # dest, then flags
	local dest=$1
	shift
	local before after
	before=$(server_cpu)
	if [ "$dest" = dir ]; then
		GOMAXPROCS=1 "${pin0[@]}" "$bin" -records "$records" -dest dir -root "$work/dir" "$@" >"$work/one.json"
	else
		GOMAXPROCS=1 "${pin0[@]}" "$bin" -records "$records" -dest s3 -endpoint "http://127.0.0.1:$port" -access bench -secret benchsecret "$@" >"$work/one.json"
	fi
	after=$(server_cpu)
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["server_cpu_seconds"]=float(sys.argv[3])-float(sys.argv[2]) if sys.argv[4]=="s3" else 0; print(json.dumps(r))' \
		"$work/one.json" "$before" "$after" "$dest" | tee -a "$results"
	rm -rf "$work/dir"
}

echo "== $records records per run"
for dest in dir s3; do
	run "$dest"
	run "$dest" -gzip-level 6
	run "$dest" -parquet
	run "$dest" -parquet -gzip-level 6
	run "$dest" -parquet -codec zstd
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$results" "$records" "$pinning" "$load_before" "$load_after" >bench/sinks/RESULTS.md <<'EOF'
import json, subprocess, sys, time, platform
path, records, pinning, lb, la = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
gov = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
print("# Object destination throughput\n")
print("Written by `bench/sinks/run.sh` (rerun it to refresh this file): %s default-format records per run," % f"{int(records):,}")
print("10-minute windows of 500,000 records as the flow table emits them (sorted by start, then Advance),")
print("objects cut per 5-minute period (75 MB cap), published atomically; S3 is a local versitygw (posix backend).\n")
print("## Machine\n")
print("| | |\n|---|---|")
print(f"| CPU | {cpu} |\n| cores | {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} |")
print(f"| Go | {gov} |\n| finished | {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} |")
print(f"| load average before / after (1, 5, 15 min) | {lb} / {la} |\n| pinning | {pinning} |\n")
print("Rates per wall second depend on what else the machine runs; rates per CPU second of the writer do not.")
print("Max RSS is mostly the benchmark's own 1 M in-memory records (about 400 MB live), and the GC's headroom.\n")
print("## Results\n")
print("| destination | file format | compression | records/s | records/CPU-s | text MB/s | written MB/s | ratio | writer CPU s | server CPU s | max RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    comp = r["compression"]
    if comp == "gzip":
        comp += " level %d%s" % (r["gzip_level"], " (default)" if r["gzip_level"] == 1 else "")
    srv = "%.1f" % r["server_cpu_seconds"] if r["dest"] == "s3" else "–"
    print(f"| {r['dest']} | {r['file_format']} | {comp} | {r['records_per_s']/1e6:.2f} M | {r['records_per_cpu_s']/1e6:.2f} M | {r['text_mb_per_s']:.0f} | {r['out_mb_per_s']:.1f} | {r['compression_ratio']:.2f} | {r['cpu_seconds']:.1f} | {srv} | {r['max_rss_mb']:.0f} |")

# The read path makes 395,948 records of the generated 5 M packet capture
# (bench/RESULTS.md, BenchmarkReadGenerated): 12.6 packets per record. At the
# design's 10 M packets/s on one core that is 0.79 M records/s; at the read
# path's measured 1.69 M packets/s (2026-11-26), 0.134 M records/s.
target, measured = 10e6 * 395948 / 5e6, 1.69e6 * 395948 / 5e6
print("\n## Keeping up with the read path (default format)\n")
print("The read path turns the generated capture's 5 M packets into 395,948 records (12.6 packets per record,")
print(f"bench/RESULTS.md). At the design's 10 M packets/s per core that is {target/1e6:.2f} M records/s; at the read")
print(f"path's 1.69 M packets/s measured on 2026-11-26, {measured/1e6:.3f} M records/s. Per CPU second of the writer:\n")
print("| destination | file format | compression | records/CPU-s | 10 M packets/s | measured read path |")
print("|---|---|---|---|---|---|")
for r in rows:
    comp = r["compression"] + (" level %d" % r["gzip_level"] if r["compression"] == "gzip" else "")
    v = r["records_per_cpu_s"]
    print(f"| {r['dest']} | {r['file_format']} | {comp} | {v/1e6:.2f} M | {'keeps up' if v >= target else 'does not keep up (%.0f%%)' % (100*v/target)} | {'keeps up' if v >= measured else 'does not keep up'} |")
EOF
echo "== wrote bench/sinks/RESULTS.md"
