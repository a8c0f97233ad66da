#!/usr/bin/env bash
# pmacctd (pmacct 1.7): the print plugin aggregates packets by 5-tuple into
# 600 s time bins and writes CSV files: the closest pmacct has to AWS's
# aggregation windows (a bin is a window aligned to the clock).
#
#   aggregate: src_host, dst_host, src_port, dst_port, proto   the 5-tuple
#   print_history: 10m + print_history_roundoff: m   600 s bins on 10-minute
#                             boundaries, like AWS windows
#   print_refresh_time: 600   purge (write) each bin every 600 s; everything
#                             is written when the capture ends
#   print_output_file: flows-%s.csv + print_output_file_append: true
#                             one CSV per bin, appended to, never overwritten
#   print_cache_entries: PMACCT_CACHE_ENTRIES   buckets of the plugin's
#                             cache; the harness sets it as CONFIG-KEYS
#                             advises (a prime ≥ expected flows / 8, at least
#                             the default 16411): pmacct preallocates ~4 KB
#                             per bucket, so a fixed large value would
#                             penalise it on small inputs
#   plugin_pipe_size: PMACCT_PIPE_SIZE, plugin_buffer_size: 16 MiB
#                             the ring between the core and the plugin. Reading
#                             a file, the core outruns the plugin and the ring
#                             has no back-pressure: whatever does not fit is
#                             lost ("Missing data detected"; with 64 MiB, 40%
#                             of the packets of the 10 M / 1 M capture). The
#                             harness sizes it at 256 bytes per packet of the
#                             capture (at least 64 MiB), so nothing is lost;
#                             it is shared memory, counted as pmacctd's
#   pcap_savefile_wait: true  do not exit at the end of the file. Without it
#                             the core exits as soon as it has read the file,
#                             and the plugin writes only what it has taken
#                             from the ring by then: on the 10 M / 1 M capture
#                             29% of the packets were never written (and no
#                             "Missing data" was logged). So the script waits
#                             until the core has read the whole file and both
#                             processes have used no CPU for 0.3 s (the ring
#                             is drained), then stops pmacctd with SIGINT,
#                             on which the plugin writes its cache and exits.
#                             The wait adds up to about 0.4 s of wall time.
# pmacctd sleeps 2 s before reading a savefile (it says so: "PCAP capture
# file, sleeping for 2 seconds"); that sleep is in its wall time, not its CPU.
#
# Usage: pmacctd.sh CAPTURE OUTDIR
set -euo pipefail
in=$1 out=$2
entries=${PMACCT_CACHE_ENTRIES:-16411}
pipe=${PMACCT_PIPE_SIZE:-67108864}
cat >"$out/pmacctd.conf" <<CONF
daemonize: false
pcap_savefile: $in
plugins: print[flows]
aggregate[flows]: src_host, dst_host, src_port, dst_port, proto
print_output[flows]: csv
print_output_file[flows]: $out/flows-%s.csv
print_output_file_append[flows]: true
print_history[flows]: 10m
print_history_roundoff[flows]: m
print_refresh_time[flows]: 600
print_cache_entries[flows]: $entries
plugin_pipe_size: $pipe
plugin_buffer_size: 16777216
pcap_savefile_wait: true
CONF
pmacctd -f "$out/pmacctd.conf" >"$out/pmacctd.log" 2>&1 &
core=$!
size=$(stat -L -c %s "$in")
ticks() { # user + system clock ticks of the core and its plugin(s)
	local p t=0 f
	for p in $core $(cat /proc/$core/task/*/children 2>/dev/null); do
		f=$(cat /proc/$p/stat 2>/dev/null) || continue
		f=${f##*) }
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}
last=-1 idle=0
while kill -0 "$core" 2>/dev/null; do
	sleep 0.1
	read_bytes=$(awk '/^rchar:/ { print $2 }' /proc/$core/io 2>/dev/null || echo 0)
	((${read_bytes:-0} >= size)) || continue
	now=$(ticks)
	if ((now == last)); then
		((++idle >= 3)) && break
	else
		idle=0 last=$now
	fi
done
# Stop the plugin first: on SIGINT it writes its cache and exits. (SIGINT
# to the core makes it hand the plugin its last buffer a second time: one
# buffer's packets, 51 150 of them, were counted twice in a test.)
plugins=$(cat /proc/$core/task/*/children 2>/dev/null || true)
kill -INT $plugins 2>/dev/null || true
while [[ -n $plugins ]] && kill -0 $plugins 2>/dev/null; do sleep 0.01; done
kill -INT "$core" 2>/dev/null || true
wait "$core" || true
