#!/usr/bin/env bash
# Builds flowlog, turns the bundled capture into flow logs under ./flowlogs
# in the S3 layout, and prints the first records.
set -euo pipefail
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -o bin/flowlog ./cmd/flowlog
rm -rf flowlogs
./bin/flowlog read --interval 60 --dest ./flowlogs testdata/sample.pcap.gz
first=$(find flowlogs -name '*.log.gz' | sort | head -n 1)
echo "== $first"
gzip -dc "$first" | head -n 8
echo "== $(find flowlogs -name '*.log.gz' | wc -l) objects under ./flowlogs"
