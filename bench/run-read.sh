#!/usr/bin/env bash
# Read-path benchmarks: generates the synthetic capture if missing, runs the
# benchmarks pinned to one core, the allocation and memory tests, a CPU and
# an allocation profile of the whole read path, and writes bench/RESULTS.md.
#
#   bench/run-read.sh                  # 5 M packets / 200 k flows, -count 5
#   COUNT=3 BENCHTIME=1s bench/run-read.sh
#   PACKETS=1000000 FLOWS=10000 bench/run-read.sh
#   PIN_CPU=1 bench/run-read.sh        # pin to another core than 0
#
# Raw outputs stay in bench/out/ (ignored by git). The report goes to
# bench/out/read-path.md (REPORT=file to change) and into the read-path
# section of bench/RESULTS.md, whose peers section is re-rendered from
# bench/peers/results/last.json, not lost (RENDER=0: leave RESULTS.md alone).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
out=bench/out
mkdir -p "$out"
report=${REPORT:-$out/read-path.md}
bin="$root/$out/bench.test"

count=${COUNT:-5}
benchtime=${BENCHTIME:-2s}
packets=${PACKETS:-5000000}
flows=${FLOWS:-200000}
bench=${BENCH:-.}
genflags=(-gen.packets "$packets" -gen.flows "$flows")

cpu=${PIN_CPU:-0}
pin=()
pinning="none (taskset not available)"
if command -v taskset >/dev/null && taskset -c "$cpu" true 2>/dev/null; then
	pin=(taskset -c "$cpu")
	pinning="taskset -c $cpu (one core; GOMAXPROCS follows the affinity mask), go test -cpu 1"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== generating the capture (skipped if cached)"
go run ./bench/gencap -packets "$packets" -flows "$flows" -o "$out/" -keep 2>"$out/capture.txt" >/dev/null
cat "$out/capture.txt"

echo "== building the test binary"
go test -c -o "$bin" ./bench

# The test binary runs in bench/, like go test, so it finds bench/out/.
echo "== benchmarks"
args=(-test.run '^$' -test.bench "$bench" -test.benchmem -test.cpu 1
	-test.count "$count" -test.benchtime "$benchtime" -test.timeout 60m "${genflags[@]}")
(cd bench && "${pin[@]}" "$bin" "${args[@]}") | tee "$out/read-bench.txt"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== allocation and memory tests"
(cd bench && "${pin[@]}" "$bin" -test.run 'TestReadPathNoAllocsPerPacket|TestReadAllocsDoNotGrowWithPackets|TestFlowTableBytesPerFlow' \
	-test.v -test.count 1) | tee "$out/read-tests.txt" || true

echo "== profiles of the whole read path (generated capture, records discarded)"
(cd bench && "${pin[@]}" "$bin" -test.run '^$' -test.bench '^BenchmarkReadGenerated$/^sink=discard$' -test.cpu 1 \
	-test.benchtime 5x -test.cpuprofile "$root/$out/read.cpu.prof" -test.memprofile "$root/$out/read.mem.prof" \
	-test.memprofilerate 4096 "${genflags[@]}" >/dev/null)
go tool pprof -top -nodecount 25 "$out/bench.test" "$out/read.cpu.prof" 2>/dev/null | sed -n '/^Showing\|^ *flat/,$p' >"$out/read.cpu.top"
go tool pprof -top -cum -nodecount 25 "$out/bench.test" "$out/read.cpu.prof" 2>/dev/null | sed -n '/^ *flat/,$p' >"$out/read.cpu.cum"
go tool pprof -top -sample_index alloc_space -focus 'pipeline\.Read$' -nodecount 15 "$out/bench.test" "$out/read.mem.prof" 2>/dev/null | sed -n '/^Showing\|^ *flat/,$p' >"$out/read.alloc.top"

echo "== CPU profile of the largest corpus capture"
(cd bench && "${pin[@]}" "$bin" -test.run '^$' -test.bench '^BenchmarkReadLargestCorpus$' -test.cpu 1 \
	-test.benchtime 20x -test.cpuprofile "$root/$out/corpus.cpu.prof" >/dev/null)
go tool pprof -top -cum -focus 'pipeline\.Read$' -nodecount 20 "$out/bench.test" "$out/corpus.cpu.prof" 2>/dev/null | sed -n '/^ *flat/,$p' >"$out/corpus.cpu.cum"

notes=()
if [[ -f bench/read-analysis.md ]]; then
	notes=(-notes bench/read-analysis.md)
fi
go run ./bench/benchreport -bench "$out/read-bench.txt" -tests "$out/read-tests.txt" \
	-command "cd bench && ${pin[*]} go test -c && ./bench.test ${args[*]}" -pinning "$pinning" -capture "$out/capture.txt" -load-before "$load_before" -load-after "$load_after" \
	-profile "CPU profile: pipeline.Read, generated capture (flat)=$out/read.cpu.top" \
	-profile "CPU profile: pipeline.Read, generated capture (cumulative)=$out/read.cpu.cum" \
	-profile "CPU profile: pipeline.Read, largest corpus capture (cumulative)=$out/corpus.cpu.cum" \
	-profile "Allocations: pipeline.Read, generated capture (bytes over 5 reads, sampled every 4 KiB)=$out/read.alloc.top" \
	"${notes[@]}" -o "$report"
echo "== wrote $report"

# bench/RESULTS.md holds the peers report above this one: splice the
# read-path report into it (from the recorded peers run) rather than
# overwrite it. bench/run does this itself (RENDER=0).
if [[ ${RENDER:-1} == 1 ]]; then
	if [[ -f bench/peers/results/last.json ]]; then
		go run ./bench/peers -render bench/peers/results/last.json -read-path "$report"
		echo "== bench/RESULTS.md: read-path section replaced, peers section re-rendered from bench/peers/results/last.json"
	else
		cp "$report" bench/RESULTS.md
		echo "== wrote bench/RESULTS.md (no recorded peers run to combine with)"
	fi
fi
