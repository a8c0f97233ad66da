package ebpf

//go:generate go tool bpf2go -tags linux -target bpfel -cc clang-19 -strip llvm-strip-19 -type flow_key -type flow_value -type control -type iface_key -type iface_value -type inflight -type stat_index flowlog bpf/flowlog.c -- -I/usr/include/x86_64-linux-gnu -mcpu=v3 -Wall -Werror
