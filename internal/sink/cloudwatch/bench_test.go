package cloudwatch

import (
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/sink/cloudwatch/logstest"
)

// BenchmarkPutLogEvents measures records sent to the test server over
// loopback (its checks, SigV4 verification included, and storage count
// too), in windows of 1000 records over 50 interfaces; with no latency
// and with 20 ms per request, as from a distant region.
func BenchmarkPutLogEvents(b *testing.B) {
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run("latency="+latency.String(), func(b *testing.B) { benchmarkPut(b, latency) })
	}
}

func benchmarkPut(b *testing.B, latency time.Duration) {
	srv := logstest.New(b)
	srv.SetFaults(func(f *logstest.Faults) { f.Latency = latency })
	s := newSink(b, srv)
	recs := window(recent, 1000, 50)
	b.ResetTimer()
	n := 0
	for n < b.N {
		if err := s.Write(recs); err != nil {
			b.Fatal(err)
		}
		if err := s.Advance(0); err != nil {
			b.Fatal(err)
		}
		n += len(recs)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	st := s.Stats()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
}
