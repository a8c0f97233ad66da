#!/usr/bin/env bash
# tshark 4.0: conversation tables, tshark's flow view: bidirectional, one row
# per TCP or UDP 5-tuple, plus IPv4 and IPv6 address pairs for everything else
# (ICMP, ICMPv6, …), written as text to a file. tshark
# has no timeouts: a conversation spans the whole capture.
#
#   -n                        no name resolution
#   -q                        no per-packet output, only the tables
#   -o tcp.desegment_tcp_streams:FALSE -o ip.defragment:FALSE
#   -o ipv6.defragment:FALSE  no reassembly: a flow exporter counts packets as
#                             they come (the corpus truth was made the same way);
#                             this also makes tshark faster
#   -z conv,tcp -z conv,udp   TCP and UDP conversations
#   -z 'conv,ip,!(tcp || udp) || icmp' -z 'conv,ipv6,!(tcp || udp) || icmpv6'
#                             the rest, by address pair (protocols are not
#                             told apart); ICMP errors are named explicitly:
#                             they quote a TCP or UDP header, which the
#                             TCP/UDP tables do not count, so a plain
#                             '!tcp && !udp' loses them
#
# Usage: tshark.sh CAPTURE OUTDIR
set -euo pipefail
in=$1 out=$2
exec tshark -n -r "$in" -q \
	-o tcp.desegment_tcp_streams:FALSE -o ip.defragment:FALSE -o ipv6.defragment:FALSE \
	-z conv,tcp -z conv,udp -z 'conv,ip,!(tcp || udp) || icmp' -z 'conv,ipv6,!(tcp || udp) || icmpv6' \
	>"$out/conversations.txt" 2>"$out/tshark.log"
