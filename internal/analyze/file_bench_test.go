package analyze

// Benchmarks over a generated log (bench/analyze/run.sh sets BENCH_LOG):
// CPU time per byte, which load from other processes distorts less than
// wall time.

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTopFile runs Top over the file in BENCH_LOG with one worker
// and reports CPU-time throughput (MB/s of CPU), which load from other
// processes does not distort the way wall time is.
func BenchmarkTopFile(b *testing.B) {
	path := os.Getenv("BENCH_LOG")
	if path == "" {
		b.Skip("BENCH_LOG not set")
	}
	in, err := FileInput(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(in.Size)
	c0 := cpuTime()
	for b.Loop() {
		if _, err := Top(context.Background(), []Input{in}, ReadConfig{Workers: 1}, TopOptions{By: []flow.FieldID{flow.FieldSrcAddr}, Metric: MetricBytes, Limit: 10}, Output{W: io.Discard}); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(in.Size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}

// BenchmarkReaderLinesOnly is flow.Reader splitting lines, nothing more:
// the floor under every report.
func BenchmarkReaderLinesOnly(b *testing.B) {
	path := os.Getenv("BENCH_LOG")
	if path == "" {
		b.Skip("BENCH_LOG not set")
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	c0 := cpuTime()
	for b.Loop() {
		f, _ := os.Open(path)
		rd := flow.NewReader(f, flow.ReaderOptions{})
		for {
			_, _, err := rd.NextLine()
			if err != nil {
				break
			}
		}
		f.Close()
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(fi.Size())*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}

// BenchmarkReaderScan is the parsing Top does: the scanner on the fields
// of a top-talkers query, without the grouping.
func BenchmarkReaderScan(b *testing.B) {
	path := os.Getenv("BENCH_LOG")
	if path == "" {
		b.Skip("BENCH_LOG not set")
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	need := flow.FieldSet(0).With(flow.FieldSrcAddr).With(flow.FieldBytes).With(flow.FieldPackets).With(flow.FieldStart).With(flow.FieldEnd).With(flow.FieldLogStatus)
	c0 := cpuTime()
	var r flow.Record
	for b.Loop() {
		f, _ := os.Open(path)
		rd := flow.NewReader(f, flow.ReaderOptions{})
		sc := NewScanner(flow.DefaultFormat(), need)
		for {
			line, _, err := rd.NextLine()
			if err != nil {
				break
			}
			_ = sc.Scan(line, &r)
		}
		f.Close()
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(fi.Size())*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}

// BenchmarkFlowReaderNext is flow.Reader.Next over the same file, for
// comparison: every field parsed into a Record.
func BenchmarkFlowReaderNext(b *testing.B) {
	path := os.Getenv("BENCH_LOG")
	if path == "" {
		b.Skip("BENCH_LOG not set")
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	c0 := cpuTime()
	var r flow.Record
	for b.Loop() {
		f, _ := os.Open(path)
		rd := flow.NewReader(f, flow.ReaderOptions{})
		for rd.Next(&r) == nil {
		}
		f.Close()
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(fi.Size())*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}

type nopVisitor struct{ noHooks }

func (nopVisitor) format(*flow.Format)         {}
func (nopVisitor) record(*flow.Record, []byte) {}

// BenchmarkEngineNop is the engine with a report that does nothing: what
// reading costs before any report work.
func BenchmarkEngineNop(b *testing.B) {
	path := os.Getenv("BENCH_LOG")
	if path == "" {
		b.Skip("BENCH_LOG not set")
	}
	in, err := FileInput(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(in.Size)
	need := newGroupTable(&TopOptions{By: []flow.FieldID{flow.FieldSrcAddr}}, false).fields()
	c0 := cpuTime()
	for b.Loop() {
		e := newEngine(ReadConfig{Workers: 1}, need, false)
		e.run(context.Background(), []Input{in}, func() visitor { return nopVisitor{} })
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(in.Size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}
