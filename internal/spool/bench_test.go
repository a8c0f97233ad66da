package spool

import (
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// countSink counts records and does nothing else: the cost measured is
// the spool's.
type countSink struct{ n int }

func (c *countSink) Write(recs []flow.Record) error { c.n += len(recs); return nil }
func (c *countSink) Advance(int64) error            { return nil }
func (c *countSink) Close() error                   { return nil }

// BenchmarkSpool measures records through a spool (append, fsync per
// window, read back, parse, deliver), in windows of 1000 records.
func BenchmarkSpool(b *testing.B) {
	for _, sync := range []SyncPolicy{SyncAdvance, SyncNone} {
		b.Run(string(sync), func(b *testing.B) {
			recs := window(1, t0, 60, 1000, 50)
			dest := &countSink{}
			cfg := testConfig(b.TempDir())
			cfg.Sync = sync
			s := startSpool(b, cfg, dest)
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
			b.StopTimer()
			if dest.n != n {
				b.Fatalf("delivered %d of %d", dest.n, n)
			}
			st := s.Stats()
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.AckedBytes)/float64(n), "spool-bytes/record")
		})
	}
}
