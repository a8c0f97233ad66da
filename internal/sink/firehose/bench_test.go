package firehose

import (
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"

	"testing"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/apitest"
)

// BenchmarkPutRecordBatch measures records sent to `flowlog serve`'s
// Firehose API over loopback, its deliverer writing objects meanwhile:
// windows of 5,000 records over 50 interfaces (10 calls of 500 each),
// each call verified (SigV4), decoded and committed to the server's
// SQLite store before its answer, as a server acknowledges records.
func BenchmarkPutRecordBatch(b *testing.B) {
	srv := startServer(b, true)
	srv.createStream("bench", 128, 60)
	s, err := New(Config{Stream: "bench", Format: flow.DefaultFormat(), Client: srv.client(apitest.SecretKey)})
	if err != nil {
		b.Fatal(err)
	}
	recs := window(t0, 5000, 50)
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
	b.ReportMetric(float64(st.Requests)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkWriteRetried measures the cost of a window the spool delivers
// again: rendering and leaving out the records Firehose had accepted
// (no call is made; all of them were).
func BenchmarkWriteRetried(b *testing.B) {
	s, err := New(Config{Stream: "bench", Format: flow.DefaultFormat(), Client: newSinkClientForBench()})
	if err != nil {
		b.Fatal(err)
	}
	recs := window(t0, 5000, 50)
	for _, l := range lines(recs) {
		s.accepted[s.keyOf([]byte(l))]++
	}
	b.ResetTimer()
	n := 0
	for n < b.N {
		s.Reset()
		if err := s.Write(recs); err != nil {
			b.Fatal(err)
		}
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// newSinkClientForBench is a client that is never called.
func newSinkClientForBench() *awsfirehose.Client {
	return awsfirehose.New(awsfirehose.Options{Region: "us-east-1"})
}
