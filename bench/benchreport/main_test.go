package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleBench = `goos: linux
goarch: amd64
pkg: github.com/flowlog/flowlog/bench
cpu: Test CPU
BenchmarkReadGenerated/sink=discard-2 	       2	2000000000 ns/op	 3000000 pkts/s	 0.0001 allocs/pkt	1600000000 B/op	     557 allocs/op
BenchmarkReadGenerated/sink=discard-2 	       1	1000000000 ns/op	 11000000 pkts/s	 0.0001 allocs/pkt	1600000000 B/op	     557 allocs/op
BenchmarkReadGenerated/sink=discard-2 	       1	3000000000 ns/op	 2000000 pkts/s	 0.0001 allocs/pkt	1600000000 B/op	     557 allocs/op
--- BENCH: BenchmarkReadGenerated
    read_bench_test.go:1: a log line
BenchmarkFlowTableMemory/flows=100000 	3	 901432111 ns/op	        82.89 B/flow
BenchmarkFlowTableMemory/flows=1000000 	1	 901432111 ns/op	        130 B/flow
PASS
`

func TestParseBench(t *testing.T) {
	res, err := parseBench(strings.NewReader(sampleBench))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"BenchmarkReadGenerated/sink=discard", "BenchmarkFlowTableMemory/flows=100000", "BenchmarkFlowTableMemory/flows=1000000"}
	if strings.Join(res.order, ",") != strings.Join(want, ",") {
		t.Fatalf("benchmarks %q, want %q", res.order, want)
	}
	s := summarize(res.samples[want[0]]["pkts/s"])
	if s.median != 3e6 || s.min != 2e6 || s.max != 11e6 || s.n != 3 {
		t.Fatalf("pkts/s summary %+v, want median 3e6, min 2e6, max 11e6, n 3", s)
	}
	if got := s.spread(); got != "±150.0%" {
		t.Errorf("spread %s, want ±150.0%%", got)
	}
	if got := summarize([]float64{1, 2, 3, 4}).median; got != 2.5 {
		t.Errorf("median of an even count %v, want 2.5", got)
	}
	if len(res.header) != 3 {
		t.Errorf("header lines %q, want goos, goarch and cpu", res.header)
	}
}

func TestParseBenchRejectsBadValue(t *testing.T) {
	_, err := parseBench(strings.NewReader("BenchmarkX 1 abc ns/op\n"))
	if err == nil || !strings.Contains(err.Error(), "BenchmarkX") {
		t.Fatalf("parseBench = %v, want an error naming the benchmark", err)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bench.txt")
	notes := filepath.Join(dir, "notes.md")
	out := filepath.Join(dir, "RESULTS.md")
	if err := os.WriteFile(in, []byte(sampleBench), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notes, []byte("## Analysis\n\nby hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-bench", in, "-notes", notes, "-load-before", "0.10 0.20 0.30", "-o", out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"| BenchmarkReadGenerated/sink=discard | pkts/s | 3.00 M | 2.00 M | 11.00 M | ±150.0% | 3 |",
		"| BenchmarkReadGenerated/sink=discard | 3.00 M pkts/s | **missed** |",
		"| BenchmarkFlowTableMemory/flows=100000 | 82.89 B/flow | met |",
		"| BenchmarkFlowTableMemory/flows=1000000 | 130 B/flow | **missed** |",
		"| BenchmarkReadLargestCorpus | not measured | — |",
		"| load average before the run (1, 5, 15 min) | 0.10 0.20 0.30 |",
		"## Analysis\n\nby hand",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestReportNeedsResults(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bench.txt")
	if err := os.WriteFile(in, []byte("PASS\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"-bench", in, "-o", filepath.Join(dir, "out.md")})
	if err == nil || !strings.Contains(err.Error(), "no benchmark results") {
		t.Fatalf("run = %v, want a no-results error", err)
	}
}
