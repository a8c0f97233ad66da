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
CONF
exec pmacctd -f "$out/pmacctd.conf" >"$out/pmacctd.log" 2>&1
