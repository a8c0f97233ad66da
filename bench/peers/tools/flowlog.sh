#!/usr/bin/env bash
# flowlog: the AWS VPC Flow Logs records of the capture, default (version 2)
# format, as text in one file.
#
#   read IN > flows.txt        records to a file (stdout redirected; the
#                              summary goes to flowlog.log)
#   --interval 600             600 s aggregation windows: AWS's default, and
#                              the active timeout every peer is given
#   --no-exclusions            record every IP packet: the peers know nothing of
#                              the traffic AWS never logs (instance metadata,
#                              DHCP, …), so every tool sees the same packets
#   --max-flows 16777215       the largest flow table; it grows on demand, so
#                              no flow is dropped as SKIPDATA on the 1 M-flow
#                              capture and nothing is preallocated on small ones
#
# Usage: flowlog.sh CAPTURE OUTDIR   (FLOWLOG names the binary)
set -euo pipefail
in=$1 out=$2
exec "${FLOWLOG:?FLOWLOG must name the flowlog binary}" read \
	--interval 600 --no-exclusions --max-flows 16777215 \
	"$in" >"$out/flows.txt" 2>"$out/flowlog.log"
