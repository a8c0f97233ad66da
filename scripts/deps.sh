#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with Go (CI runs
# this through scripts/test.sh). Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# package:probe — the probe is a command or a file that the package provides.
apt_needs=(
  "iproute2:ip"
  "ethtool:ethtool"
  "nftables:nft"
  "iputils-ping:ping"
  "clang-19:clang-19"
  "llvm-19:llvm-strip-19"
  "libbpf-dev:/usr/include/bpf/bpf_helpers.h"
  "linux-libc-dev:/usr/include/linux/bpf.h"
  "awscli:/usr/bin/aws"
  "chromium:/usr/bin/chromium"
)
missing=()
for need in "${apt_needs[@]}"; do
  pkg=${need%%:*} probe=${need#*:}
  if [[ $probe == /* ]]; then [ -e "$probe" ] || missing+=("$pkg")
  else command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go tools the tests run as real servers.
gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/versitygw" ]; then
  echo "deps: go install versitygw (a real S3 server for the S3 tests)"
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
