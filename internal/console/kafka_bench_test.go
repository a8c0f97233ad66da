package console

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/analyze"
)

// BenchmarkKafkaPage is what one console page of a kafka flow log costs
// besides HTTP: the topic listed and its first DefaultMaxEvents (200,000)
// messages read from kfake (in this process, three partitions) into
// memory, then summarized as the charts page does first. It reports
// messages per second.
func BenchmarkKafkaPage(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = DefaultMaxEvents
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("flows"))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Unix()
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		eni := fmt.Sprintf("eni-0%d", i%7)
		recs = append(recs, &kgo.Record{Key: []byte(eni), Value: fmt.Appendf(nil, "2 123456789012 %s 10.0.%d.%d 10.0.9.9 %d 443 6 3 180 %d %d ACCEPT OK", eni, i%5, i%200, 40000+i%20000, start+int64(i/100), start+int64(i/100)+30)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	h := &Handler{opts: Options{MaxEvents: DefaultMaxEvents}}
	fl := FlowLog{ID: "fl-0123456789abcdef0", DestinationType: "kafka", Destination: "kafka://" + c.ListenAddrs()[0] + "/flows", LogFormat: flow.DefaultFormatText}
	b.ResetTimer()
	for range b.N {
		rs := &recordSet{fl: fl}
		if err := h.listKafka(context.Background(), rs); err != nil {
			b.Fatal(err)
		}
		st, err := analyze.Summarize(context.Background(), rs.inputs(), rs.rc, analyze.Output{W: io.Discard, Mode: analyze.ModeJSON})
		if err != nil || st.Records != n {
			b.Fatalf("%+v %v", st, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}
