// Package bench owns flowlog's performance measurements: the read-path
// benchmarks (capture → decode → flow table → records, see
// read_bench_test.go), the tests that hold the hot path to zero allocations
// per packet and the flow table to its memory budget per flow, the
// synthetic capture generator they run on (internal/gen, command gencap),
// and the scripts that record results (run-read.sh → RESULTS.md).
//
// Plain `go test ./bench/...` runs only the fast tests; the benchmarks run
// with -bench and generate their 5 M packet capture under bench/out/
// (ignored by git) the first time.
package bench
