#!/usr/bin/env bash
# Analyzer benchmark: the top-talkers query over a generated flow log,
# flowlog side by side with the awk and sort | uniq -c pipelines people
# write for it, in one run, and over the same records as Parquet objects
# (AWS's schema, gzip and zstd); then the per-core CPU-time benchmarks of
# the reading path. Writes bench/analyze/RESULTS.md.
#
#   bench/analyze/run.sh                 # a 2 GiB log (generated once under bench/out/)
#   SIZE=500MB RUNS=1 bench/analyze/run.sh
#   PIN_CPU=1 bench/analyze/run.sh       # one-core rows on CPU 1 (default 0)
#
# Every command reads the file from the page cache (it is read once
# first). Times are the best of RUNS runs; CPU is user+sys of the whole
# pipeline. The outputs of all tools are compared: a row whose answer
# differs from flowlog's says so.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
out=bench/out
mkdir -p "$out"
size=${SIZE:-2GiB}
runs=${RUNS:-3}
log=$out/analyze-$size.log
parts=$out/analyze-$size-parts
pq=$out/analyze-$size-parquet
pqz=$out/analyze-$size-parquet-zstd
bin=$out/flowlog
results=bench/analyze/RESULTS.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building flowlog and generating the logs (skipped if present)"
go build -o "$bin" ./cmd/flowlog
[ -f "$log" ] || go run ./bench/analyze/genlog -size "$size" -o "$log"
[ -d "$parts" ] || go run ./bench/analyze/genlog -size "$size" -parts 8 -o "$parts"
# The Parquet twins: the same records (same -size and seed) as objects cut
# where the S3 sink cuts them, at 75 MB of text, each one row group.
[ -d "$pq" ] || go run ./bench/analyze/genlog -size "$size" -parquet -o "$pq"
[ -d "$pqz" ] || go run ./bench/analyze/genlog -size "$size" -parquet -parquet-compression zstd -o "$pqz"
bytes=$(stat -c %s "$log")
records=$(($(wc -l <"$log") - 1))
pqbytes=$(cat "$pq"/* | wc -c)
pqzbytes=$(cat "$pqz"/* | wc -c)
pqobjects=$(ls "$pq" | wc -l)
cat "$log" "$parts"/* "$pq"/* "$pqz"/* >/dev/null

pin_cpu=${PIN_CPU:-0}
pin=()
if command -v taskset >/dev/null && taskset -c "$pin_cpu" true 2>/dev/null; then
	pin=(taskset -c "$pin_cpu")
fi
cores=$(nproc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# measure NAME QUERY CMD: runs CMD (a shell pipeline) RUNS times, keeps the
# best wall time, and records a row; the output goes to $work/NAME.out.
rows=()
measure() {
	local name=$1 query=$2 cmd=$3 best="" line load
	load=$(cut -d' ' -f1 /proc/loadavg)
	for _ in $(seq "$runs"); do
		/usr/bin/time -f "%e %U %S %M" -o "$work/time" bash -c "$cmd" >"$work/$name.out" 2>"$work/$name.err" || {
			echo "$name failed:"; cat "$work/$name.err"; exit 1
		}
		line=$(tail -1 "$work/time")
		if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then
			best=$line
		fi
	done
	read -r wall user sys rss <<<"$best"
	rows+=("$query|$name|$wall|$user|$sys|$rss|$load")
	printf '%-34s %-22s wall %6.2fs cpu %6.2fs rss %7d KB\n' "$name" "$query" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')" "$rss"
}

# normalize NAME: "addr value" lines, sorted, from any tool's output.
normalize() {
	case $1 in
	flowlog*-bytes*) awk -F'\t' 'NR>1 {print $1, $4}' "$work/$1.out" ;;
	flowlog*-records*) awk -F'\t' 'NR>1 {print $1, $2}' "$work/$1.out" ;;
	*) awk '{print $2, $1}' "$work/$1.out" ;;
	esac | sort
}

awks=(mawk)
command -v gawk >/dev/null && awks+=(gawk)

echo "== top 10 source addresses by bytes"
measure "flowlog-bytes-1core" "bytes, one file" "${pin[*]} $bin analyze top --by srcaddr --metric bytes -n 10 --progress never $log"
measure "flowlog-bytes-${cores}cores" "bytes, one file" "$bin analyze top --by srcaddr --metric bytes -n 10 --progress never $log"
measure "flowlog-bytes-${cores}cores-8files" "bytes, 8 files" "$bin analyze top --by srcaddr --metric bytes -n 10 --progress never $parts"
measure "flowlog-bytes-1core-parquet-gzip" "bytes, Parquet gzip" "${pin[*]} $bin analyze top --by srcaddr --metric bytes -n 10 --progress never $pq"
measure "flowlog-bytes-1core-parquet-zstd" "bytes, Parquet zstd" "${pin[*]} $bin analyze top --by srcaddr --metric bytes -n 10 --progress never $pqz"
measure "flowlog-bytes-${cores}cores-parquet-gzip" "bytes, Parquet gzip" "$bin analyze top --by srcaddr --metric bytes -n 10 --progress never $pq"
for a in "${awks[@]}"; do
	measure "$a-bytes" "bytes, one file" "${pin[*]} $a '\$14 == \"OK\" { b[\$4] += \$10 } END { for (k in b) printf \"%.0f %s\\n\", b[k], k }' $log | sort -rn | head -10"
done

echo "== top 10 source addresses by records"
measure "flowlog-records-1core" "records, one file" "${pin[*]} $bin analyze top --by srcaddr --metric records -n 10 --progress never $log"
measure "flowlog-records-1core-parquet-gzip" "records, Parquet gzip" "${pin[*]} $bin analyze top --by srcaddr --metric records -n 10 --progress never $pq"
for a in "${awks[@]}"; do
	measure "$a-records" "records, one file" "${pin[*]} $a '\$14 == \"OK\" { c[\$4]++ } END { for (k in c) print c[k], k }' $log | sort -rn | head -10"
done
measure "sort-uniq-c" "records, one file" "grep -v NODATA $log | tail -n +2 | cut -d' ' -f4 | LC_ALL=C sort | uniq -c | sort -rn | head -10"

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== per-core CPU-time benchmarks of the reading path"
(cd internal/analyze && BENCH_LOG="$root/$log" "${pin[@]}" go test -run '^$' -bench 'TopFile|^BenchmarkEngineNop|ReaderScan|FlowReaderNext|ReaderLinesOnly' \
	-benchtime 2x -cpu 1 -count 1 . ) | tee "$work/gobench.txt"
for p in "gzip $pq" "zstd $pqz"; do
	read -r codec dir <<<"$p"
	(cd internal/analyze && BENCH_PARQUET="$root/$dir" "${pin[@]}" go test -run '^$' -bench 'TopParquet|ParquetEngineNop' \
		-benchtime 2x -cpu 1 -count 1 . ) | sed "s/^\(BenchmarkTopParquet\|BenchmarkParquetEngineNop\)/\1\/$codec/" | tee -a "$work/gobench.txt"
done
(cd internal/analyze && "${pin[@]}" go test -run '^$' -bench 'BenchmarkScan' -benchtime 2s -cpu 1 -count 1 .) | tee -a "$work/gobench.txt"

{
	echo "# Analyzer benchmark"
	echo
	echo "Generated by \`bench/analyze/run.sh\` on $(date -u +%Y-%m-%dT%H:%MZ): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores CPUs,"
	echo "$(free -g | awk '/^Mem/ {print $2}') GB RAM, $(go version | cut -d' ' -f3). **Load average before: $load_before; after the"
	echo "comparison: $load_after.** With other work running, wall times are pessimistic — the"
	echo "multi-CPU rows most of all, as they need both CPUs — and CPU times (user+sys of the whole"
	echo "pipeline) are the better measure of cost. \"load before\" is the 1-minute load average"
	echo "when each row's runs began."
	echo
	echo "Input: \`$log\`, $bytes bytes, $records default-format records (generated by"
	echo "\`bench/analyze/genlog\`: 100 000 Zipf-distributed sources, 5% IPv6, 5% REJECT, 0.1% NODATA),"
	echo "read from the page cache; the 8-file variant holds the same number of bytes in \`$parts/\`."
	echo "The Parquet rows read the same records as $pqobjects Parquet objects (\`genlog -parquet\`: written by"
	echo "internal/parquet as \`flowlog read --file-format parquet\` writes them, AWS's schema, cut where the S3"
	echo "sink cuts an object, at 75 MB of text, one row group each): \`$pq/\`, $pqbytes bytes with gzip"
	echo "(AWS's default), and \`$pqz/\`, $pqzbytes bytes with zstd. Their MB/s are of the text"
	echo "equivalent ($bytes bytes), so that every row compares per record."
	echo "Best of $runs runs. \`1core\` and the awk/sort rows are pinned to one CPU (\`taskset -c $pin_cpu\`);"
	echo "the \`${cores}cores\` rows use all CPUs: flowlog reads a large plain file in pieces, one per CPU,"
	echo "and many files (Parquet objects too) one per CPU."
	echo
	echo "## Top 10 source addresses"
	echo
	echo "| query | tool | wall s | CPU s | MB/s (wall) | MB/s per CPU-second | M records per CPU-second | max RSS MB | same answer as flowlog | load before |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"
	for r in "${rows[@]}"; do
		IFS='|' read -r query name wall user sys rss load <<<"$r"
		ref=flowlog-bytes-1core
		[[ $query == records* ]] && ref=flowlog-records-1core
		same=yes
		[ "$name" = "$ref" ] && same="(reference)"
		if [ "$name" != "$ref" ] && ! diff -q <(normalize "$ref") <(normalize "$name") >/dev/null; then
			same="**no**"
		fi
		awk -v q="$query" -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v b="$bytes" -v r="$records" -v same="$same" -v l="$load" \
			'BEGIN { c = u + s; printf "| %s | %s | %.2f | %.2f | %.0f | %.0f | %.2f | %.0f | %s | %s |\n", q, n, w, c, b/w/1e6, (c > 0 ? b/c/1e6 : 0), (c > 0 ? r/c/1e6 : 0), m/1024, same, l }'
	done
	echo
	echo "The pipelines:"
	echo
	echo '```'
	echo "flowlog analyze top --by srcaddr --metric bytes -n 10 FILE"
	echo "mawk '\$14 == \"OK\" { b[\$4] += \$10 } END { for (k in b) printf \"%.0f %s\\n\", b[k], k }' FILE | sort -rn | head -10"
	echo "flowlog analyze top --by srcaddr --metric bytes -n 10 PARQUET-DIRECTORY"
	echo "flowlog analyze top --by srcaddr --metric records -n 10 FILE"
	echo "grep -v NODATA FILE | tail -n +2 | cut -d' ' -f4 | LC_ALL=C sort | uniq -c | sort -rn | head -10"
	echo '```'
	echo
	echo "flowlog's answer also carries packets, records, share, first and last time for each group."
	echo
	echo "## Reading path, one core, CPU time"
	echo
	echo "\`go test -bench\` in \`internal/analyze\` over the same file (\`BENCH_LOG\`) and its Parquet twins"
	echo "(\`BENCH_PARQUET\`), pinned to one CPU, \`-cpu 1\`. MB/cpu-s is bytes of input per CPU-second of"
	echo "the process (GC included): for Parquet the bytes of the objects, about an eighth of the text, so"
	echo "compare the rows by records per CPU-second, or by text MB/cpu-s (records/cpu-s times the text's"
	echo "bytes per record, $(awk -v b="$bytes" -v r="$records" 'BEGIN{printf "%.1f", b/r}'))."
	echo
	echo "| benchmark | what it does | MB/s (wall) | MB/cpu-s | M records/cpu-s | text MB/cpu-s |"
	echo "|---|---|---:|---:|---:|---:|"
	awk -v bpr="$(awk -v b="$bytes" -v r="$records" 'BEGIN{print b/r}')" '/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); wall = ""; cpu = ""; rec = ""
		for (i = 2; i < NF; i++) { if ($(i+1) == "MB/s") wall = $i; if ($(i+1) == "MB/cpu-s") cpu = $i; if ($(i+1) == "records/cpu-s") rec = $i }
		text = ""
		if (rec != "") text = sprintf("%.0f", rec * bpr / 1e6)
		else if (cpu != "" && name !~ /Scan\//) { rec = cpu * 1e6 / bpr; text = cpu }
		what = "?"
		if (name ~ /TopParquet/) what = "the whole top-talkers report over the Parquet objects"
		if (name ~ /ParquetEngineNop/) what = "reading the Parquet columns top needs, no report (decompression included)"
		if (name ~ /^BenchmarkEngineNop/) what = "reading and scanning the text, no report"
		if (name ~ /TopFile/) what = "the whole top-talkers report (read, scan, group, rank)"
		if (name ~ /ReaderScan/) what = "flow.Reader lines + Scanner on the six fields top needs"
		if (name ~ /FlowReaderNext/) what = "flow.Reader.Next: every field parsed into a Record (for comparison)"
		if (name ~ /ReaderLinesOnly/) what = "flow.Reader splitting lines only (the floor)"
		if (name ~ /Scan\/top/) what = "Scanner alone, lines in memory, srcaddr+dstport+bytes+log-status"
		if (name ~ /Scan\/all/) what = "Scanner alone, lines in memory, every field"
		if (name ~ /Scan\/ParseRecord/) what = "flow.Format.ParseRecord alone, lines in memory (for comparison)"
		if (name ~ /IndexByte/) what = "bytes.IndexByte over the lines (memory bandwidth floor)"
		printf "| %s | %s | %s | %s | %s | %s |\n", name, what, wall, (cpu == "" ? "-" : cpu), (rec == "" ? "-" : sprintf("%.2f", rec / 1e6)), (text == "" ? "-" : text)
	}' "$work/gobench.txt"
} >"$results"
echo "== wrote $results"
