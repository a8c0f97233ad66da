#!/usr/bin/env bash
# nfpcapd (nfdump 1.7): reads the capture and writes nfdump flow files itself.
#
#   -r IN                     read the capture
#   -l OUTDIR/nf              write flow files there
#   -e 600,600                active timeout 600 s; inactive timeout 600 s too,
#                             since AWS keeps one record per flow and window
#                             however quiet the flow is
#   -t 600                    one file per 600 s (of capture time)
#   (defaults kept: no compression, flow cache of 512 k nodes that grows on
#    demand, snaplen 1522)
#
# Usage: nfpcapd.sh CAPTURE OUTDIR
set -euo pipefail
in=$1 out=$2
mkdir -p "$out/nf"
exec nfpcapd -r "$in" -l "$out/nf" -e 600,600 -t 600 >"$out/nfpcapd.log" 2>&1
