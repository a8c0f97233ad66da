#!/usr/bin/env bash
# Builds flowlog, turns the bundled capture into flow logs under ./flowlogs
# in the S3 layout, and prints the first records.
set -euo pipefail
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -o bin/flowlog ./cmd/flowlog
rm -rf flowlogs
./bin/flowlog read --interval 60 --dest ./flowlogs testdata/sample.pcap.gz
# sed reads to the end (head would exit early and, with pipefail, the
# writer's SIGPIPE would fail the script).
first=$(find flowlogs -name '*.log.gz' | sort | sed -n 1p)
echo "== $first"
gzip -dc "$first" | sed -n 1,8p
echo "== $(find flowlogs -name '*.log.gz' | wc -l) objects under ./flowlogs"
