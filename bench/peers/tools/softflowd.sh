#!/usr/bin/env bash
# softflowd: NetFlow v9 flows, exported over loopback UDP to nfcapd (nfdump's
# collector), which writes them to a file. softflowd has no file output of its
# own: the collector is the documented way to get its flows on disk, so the
# job measured is softflowd + nfcapd together (CPU summed by the harness).
#
# softflowd:
#   -r IN -d                  read the capture, stay in the foreground
#   (not -a: it "adjusts time" by replaying the capture in real time, so a
#    600 s capture takes 600 s; without it softflowd reads as fast as it can,
#    and, as its man page says, expires flows from a file only when the table
#    is full, so every flow is exported at the end of the capture)
#   -v 9                      NetFlow v9: the only version besides IPFIX that
#                             carries IPv6 flows (v5, the default, drops them)
#   -n 127.0.0.1:PORT         export to the collector below (loopback only)
#   -m 8388608                track up to 8 M flows: no early (forced) expiry on
#                             any input here (the default, 8192, would expire
#                             flows early); flows are allocated on demand
#   -t maxlife=600            the 600 s active timeout
#   -t general=600 tcp=600 tcp.rst=600 tcp.fin=600 udp=600 icmp=600
#                             idle timeouts no shorter than the window: AWS
#                             keeps one record per flow and window however
#                             quiet the flow is, and however it ends (FIN/RST)
#   (no -c: given a control socket, softflowd -r blocks in accept() on it
#    at the end of the capture instead of exiting)
# nfcapd:
#   -b 127.0.0.1 -p PORT -l OUTDIR/nf   listen on loopback, write flow files
#   -t 600                    one file per 600 s (of flow time)
#   -B 536870912              512 MiB socket buffer: softflowd -r exports
#                             every flow at the end of the capture in one
#                             burst (72 k datagrams for 1.9 M flows), which
#                             overflows a smaller buffer and loses flows
#                             (with 8 MiB: 43% of them on the 10 M / 1 M
#                             capture). The kernel caps the buffer at
#                             net.core.rmem_max, so the script raises that
#                             cap for the run and restores it on exit (a
#                             cap only: no memory is reserved)
#
# Usage: softflowd.sh CAPTURE OUTDIR   (PORT: a free UDP port on 127.0.0.1)
set -euo pipefail
in=$1 out=$2 port=${PORT:?PORT must name a free UDP port}
mkdir -p "$out/nf"
bufsize=536870912
rmem_max=$(cat /proc/sys/net/core/rmem_max)
if ((rmem_max < bufsize)); then
	trap 'echo "$rmem_max" >/proc/sys/net/core/rmem_max' EXIT
	echo "$bufsize" >/proc/sys/net/core/rmem_max
fi
nfcapd -b 127.0.0.1 -p "$port" -l "$out/nf" -t 600 -B "$bufsize" >"$out/nfcapd.log" 2>&1 &
collector=$!
# Wait until the collector is listening, so no early datagram is lost.
for _ in $(seq 200); do
	grep -q 'Startup' "$out/nfcapd.log" 2>/dev/null && break
	sleep 0.01
done
status=0
softflowd -r "$in" -d -v 9 -n "127.0.0.1:$port" -m 8388608 \
	-t maxlife=600 -t general=600 -t tcp=600 -t tcp.rst=600 -t tcp.fin=600 -t udp=600 -t icmp=600 >"$out/softflowd.log" 2>&1 || status=$?
# Let the collector drain its socket before stopping it: nfcapd exits on
# SIGTERM without reading what is still queued (about a third of the flows of
# a 1 M-packet capture were lost that way). rx_queue is the 5th column of
# /proc/net/udp, after the colon.
hexport=$(printf '%04X' "$port")
for _ in $(seq 60000); do # up to 10 minutes
	queued=$(awk -v p=":$hexport" '$2 ~ p"$" { split($5, q, ":"); print q[2] }' /proc/net/udp)
	[[ $((16#${queued:-0})) -eq 0 ]] && break
	sleep 0.01
done
sleep 0.05
kill -TERM "$collector"
wait "$collector" || true
exit "$status"
