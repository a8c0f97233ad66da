package kafka

import (
	"testing"
)

// BenchmarkProduce measures records produced to kfake (in this process,
// so the broker's work is counted too), in windows of 1000 records with a
// flush per window.
func BenchmarkProduce(b *testing.B) {
	c := cluster(b, "flows")
	s := newSink(b, c.ListenAddrs(), "flows", 0)
	recs := window(t0, 1000, 50)
	b.ResetTimer()
	n := 0
	for w := int64(t0); n < b.N; w += 60 {
		if err := s.Write(recs); err != nil {
			b.Fatal(err)
		}
		if err := s.Advance(w + 60); err != nil {
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
