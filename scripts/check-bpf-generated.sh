#!/usr/bin/env bash
# Regenerates the eBPF objects and their Go bindings (bpf2go) and fails if
# the committed ones differ: the C in internal/capture/ebpf/bpf/ and the
# committed flowlog_bpfel.{go,o} must stay in step, so that `go build`
# needs no clang.
#
# Needs the pinned toolchain (Debian 12): clang-19, llvm-19 (llvm-strip-19),
# libbpf-dev (bpf_helpers.h) and linux-libc-dev, on x86_64. A different
# clang emits different bytes; the script refuses to run with another
# major version rather than report a spurious difference.
set -euo pipefail
cd "$(dirname "$0")/.."

want_major=19
if ! command -v clang-${want_major} >/dev/null || ! command -v llvm-strip-${want_major} >/dev/null; then
  echo "check-bpf-generated: clang-${want_major} and llvm-strip-${want_major} are needed (apt-get install clang-${want_major} llvm-${want_major} libbpf-dev)" >&2
  exit 1
fi
if [ ! -f /usr/include/bpf/bpf_helpers.h ]; then
  echo "check-bpf-generated: /usr/include/bpf/bpf_helpers.h missing (apt-get install libbpf-dev)" >&2
  exit 1
fi

go generate ./internal/capture/ebpf/
if ! git diff --exit-code --stat -- internal/capture/ebpf/; then
  echo "check-bpf-generated: the committed BPF objects are stale; run 'go generate ./internal/capture/ebpf/' and commit the result" >&2
  exit 1
fi
if [ -n "$(git ls-files --others --exclude-standard -- internal/capture/ebpf/)" ]; then
  echo "check-bpf-generated: go generate created files that are not committed:" >&2
  git ls-files --others --exclude-standard -- internal/capture/ebpf/ >&2
  exit 1
fi
echo "check-bpf-generated: BPF objects are current"
