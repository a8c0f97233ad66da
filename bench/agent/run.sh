#!/usr/bin/env bash
# Live agent benchmark: builds flowlog and benchagent, sets up two network
# namespaces joined by a veth pair, floods them with small UDP packets and
# runs iperf3, without the agent and with each capture source, and writes
# bench/agent/RESULTS.md. Needs root, iperf3 (Debian package iperf3) and
# iproute2.
#
#   sudo bench/agent/run.sh
#   DURATION=20s SOURCES=ebpf sudo -E bench/agent/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/out
mkdir -p "$out"
go build -o "$out/flowlog" ./cmd/flowlog
go build -o "$out/benchagent" ./bench/agent
"$out/benchagent" run -flowlog "$out/flowlog" \
	-duration "${DURATION:-10s}" -iperf "${IPERF:-5s}" -iperf-runs "${IPERF_RUNS:-3}" \
	-sources "${SOURCES:-afpacket,ebpf}" -senders "${SENDERS:-$(nproc)}" \
	-out bench/agent/RESULTS.md
cat bench/agent/RESULTS.md
