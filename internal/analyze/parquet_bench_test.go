package analyze

// The Parquet twin of BenchmarkTopFile (bench/analyze/run.sh sets
// BENCH_PARQUET to the objects genlog -parquet writes): records per
// CPU-second, the measure that compares with text, where bytes do not.

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// BenchmarkTopParquet runs Top over the Parquet file or directory in
// BENCH_PARQUET with one worker and reports records per CPU-second (and
// Parquet MB per CPU-second, for what it is worth: the text form is about
// eight times larger).
func BenchmarkTopParquet(b *testing.B) {
	path := os.Getenv("BENCH_PARQUET")
	if path == "" {
		b.Skip("BENCH_PARQUET not set")
	}
	ins := listInputs(b, path)
	var size int64
	for _, in := range ins {
		size += in.Size
	}
	b.SetBytes(size)
	var records int64
	c0 := cpuTime()
	for b.Loop() {
		st, err := Top(context.Background(), ins, ReadConfig{Workers: 1}, TopOptions{By: []flow.FieldID{flow.FieldSrcAddr}, Metric: MetricBytes, Limit: 10}, Output{W: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		records += st.Records
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}

// BenchmarkParquetEngineNop is the engine over BENCH_PARQUET with a report
// that does nothing (BenchmarkEngineNop's twin): what reading the columns
// of a top-talkers query costs, decompression included, before any
// report work.
func BenchmarkParquetEngineNop(b *testing.B) {
	path := os.Getenv("BENCH_PARQUET")
	if path == "" {
		b.Skip("BENCH_PARQUET not set")
	}
	ins := listInputs(b, path)
	var size int64
	for _, in := range ins {
		size += in.Size
	}
	b.SetBytes(size)
	need := newGroupTable(&TopOptions{By: []flow.FieldID{flow.FieldSrcAddr}}, false).fields()
	var records int64
	c0 := cpuTime()
	for b.Loop() {
		e := newEngine(ReadConfig{Workers: 1}, need, false)
		_, st := e.run(context.Background(), ins, func() visitor { return nopVisitor{} })
		records += st.Records
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
}
