package analyze

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
)

// kafkaLines produces n record lines to topic of c, keyed by interface as
// flowlog's kafka destination keys them, with the given message time,
// and returns them.
func kafkaLines(t *testing.T, c *kfake.Cluster, topic string, n int, at time.Time, src string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var lines []string
	var recs []*kgo.Record
	for i := range n {
		eni := fmt.Sprintf("eni-0%d", i%5)
		s := at.Unix() + int64(i/10)
		line := fmt.Sprintf("2 123456789012 %s %s 10.0.9.9 %d 443 6 1 100 %d %d ACCEPT OK", eni, src, 40000+i, s, s+30)
		lines = append(lines, line)
		recs = append(recs, &kgo.Record{Key: []byte(eni), Value: []byte(line), Timestamp: at})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func listKafka(t *testing.T, k *Kafka, arg string, tr TimeRange) (Input, error) {
	t.Helper()
	var in Input
	err := (&Lister{Kafka: k, Range: tr}).List(context.Background(), arg, func(i Input) error { in = i; return nil })
	return in, err
}

// readAllLines returns the lines of in sorted: partitions interleave.
func readAllLines(t *testing.T, in Input) []string {
	t.Helper()
	lines := scanLines(t, in)
	sort.Strings(lines)
	return lines
}

// TestKafkaTopic reads a topic of three partitions on kfake (a Kafka
// wire-protocol server): every message there at the listing once, none
// produced after it; --since starts each partition at the first message
// produced then (less the slack); a missing topic and unreachable
// brokers are errors naming them.
func TestKafkaTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"), kfake.SeedTopics(1, "empty"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now().Truncate(time.Second)
	old := kafkaLines(t, c, "flows", 300, now.Add(-3*time.Hour), "10.0.0.9")
	recent := kafkaLines(t, c, "flows", 2500, now.Add(-10*time.Minute), "10.0.0.1")
	url := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/flows"

	k := NewKafka(KafkaConfig{})
	in, err := listKafka(t, k, url, TimeRange{})
	if err != nil {
		t.Fatal(err)
	}
	// Produced after the listing: not read, not waited for.
	kafkaLines(t, c, "flows", 50, now, "10.0.0.2")
	want := append(append([]string{}, old...), recent...)
	sort.Strings(want)
	if got := readAllLines(t, in); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("read %d lines, want the %d there at the listing", len(got), len(want))
	}
	if n := k.prog.items.Load(); n != int64(len(want)) {
		t.Errorf("messages counted %d", n)
	}

	in, err = listKafka(t, k, url, TimeRange{Since: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got := readAllLines(t, in)
	if len(got) != len(recent)+50 || strings.Contains(strings.Join(got, "\n"), "10.0.0.9") {
		t.Fatalf("--since 1h: %d lines, want the %d recent ones", len(got), len(recent)+50)
	}

	in, err = listKafka(t, k, "kafka://"+c.ListenAddrs()[0]+"/empty", TimeRange{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllLines(t, in); len(got) != 0 {
		t.Fatalf("empty topic: %q", got)
	}

	if _, err := listKafka(t, k, "kafka://"+c.ListenAddrs()[0]+"/nope", TimeRange{}); err == nil || err.Error() != "topic nope on "+c.ListenAddrs()[0]+" does not exist" {
		t.Errorf("missing topic: %v", err)
	}
	if _, err := listKafka(t, k, "kafka://nohostport/flows", TimeRange{}); err == nil || !strings.Contains(err.Error(), "want host:port") {
		t.Errorf("bad broker: %v", err)
	}
	began := time.Now()
	_, err = listKafka(t, k, "kafka://127.0.0.1:1/flows", TimeRange{})
	if err == nil || !strings.Contains(err.Error(), "topic flows on 127.0.0.1:1") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("unreachable broker: %v", err)
	}
	t.Logf("unreachable broker: %v after %v", err, time.Since(began))

	// The context ending stops a read at once.
	in, err = listKafka(t, k, url, TimeRange{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := in.src.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, rc); err != context.Canceled {
		t.Errorf("read after cancel: %v", err)
	}
	rc.Close()
}

// BenchmarkKafkaTopic reads 200,000 record messages in three partitions
// of kfake (in this process) through Top, and reports messages per
// second: fetching, decoding and the report together.
func BenchmarkKafkaTopic(b *testing.B) {
	const n = 200000
	c := kafkatest.RecordTopic(b, n)
	k := NewKafka(KafkaConfig{})
	url := "kafka://" + c.ListenAddrs()[0] + "/flows"
	b.ResetTimer()
	for range b.N {
		var inputs []Input
		if err := (&Lister{Kafka: k}).List(context.Background(), url, func(in Input) error { inputs = append(inputs, in); return nil }); err != nil {
			b.Fatal(err)
		}
		var out strings.Builder
		st, err := Top(context.Background(), inputs, ReadConfig{}, TopOptions{By: []flow.FieldID{flow.FieldSrcAddr}, Metric: MetricBytes, Limit: 10}, Output{W: &out, Mode: ModeTable})
		if err != nil || st.Records != n {
			b.Fatalf("%+v %v", st, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}
