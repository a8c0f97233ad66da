#!/usr/bin/env bash
# argus 3.0.8: bidirectional flow records (argus's only usual mode: one record
# per 5-tuple conversation, with packets and bytes of each direction) in an
# argus file.
#
#   -X                        ignore /etc/argus.conf (Debian's sets a 5 s
#                             status interval, which would cut every flow
#                             into 5 s records)
#   -r IN -w OUTDIR/flows.argus   read the capture, write records to a file
#   -S 600                    flow status interval 600 s: the active timeout
#   (argus's idle timeouts are built in, not configurable from the command
#    line; they end quiet flows early, which adds records, not flows)
#
# Usage: argus.sh CAPTURE OUTDIR
set -euo pipefail
in=$1 out=$2
exec argus -X -r "$in" -w "$out/flows.argus" -S 600 >"$out/argus.log" 2>&1
