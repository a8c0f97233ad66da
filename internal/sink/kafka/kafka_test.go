package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
	"github.com/flowlog/flowlog/internal/spool"
)

const t0 = 1529511600 // 2018-06-20T16:20:00Z

func window(start int64, n, ifaces int) []flow.Record { return sinktest.Window(7, start, n, ifaces) }

func lines(recs []flow.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = string(flow.DefaultFormat().Append(nil, &recs[i]))
	}
	return out
}

// cluster starts a kfake cluster (a real Kafka wire-protocol server in
// this process) with topic in 3 partitions.
func cluster(t testing.TB, topic string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// message is one consumed Kafka message.
type message struct {
	key, value string
	partition  int32
	offset     int64
}

// consume reads want messages of topic with a separate client, from the
// start, and fails after 20 s without them; it then waits briefly for any
// more (duplicates).
func consume(t testing.TB, addrs []string, topic string, want int, opts ...kgo.Opt) []message {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []message
	deadline := time.Now().Add(20 * time.Second)
	extra := time.Time{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, message{string(r.Key), string(r.Value), r.Partition, r.Offset})
		})
		if len(got) >= want && extra.IsZero() {
			extra = time.Now().Add(300 * time.Millisecond)
		}
		if !extra.IsZero() && time.Now().After(extra) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d messages in 20 s, want %d", len(got), want)
		}
	}
}

func newSink(t testing.TB, addrs []string, topic string, timeout time.Duration) *Sink {
	t.Helper()
	s, err := New(Config{Brokers: addrs, Topic: topic, Format: flow.DefaultFormat(), DeliveryTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkMessages asserts that the messages are the lines, each keyed by its
// interface id, with the lines of each interface in one partition in the
// order written; exactly once unless dups.
func checkMessages(t testing.TB, got []message, want []string, dups bool) {
	t.Helper()
	byKey := map[string][]message{}
	for _, m := range got {
		byKey[m.key] = append(byKey[m.key], m)
	}
	seen := map[string]int{}
	for key, ms := range byKey {
		slices.SortFunc(ms, func(a, b message) int { return int(a.offset - b.offset) })
		for _, m := range ms {
			if m.partition != ms[0].partition {
				t.Fatalf("interface %s in partitions %d and %d", key, ms[0].partition, m.partition)
			}
			if f := strings.Fields(m.value); len(f) < 3 || f[2] != key {
				t.Fatalf("message %q keyed %q", m.value, key)
			}
			seen[m.value]++
		}
		// Order per interface: the first occurrences follow the order written.
		var order []string
		first := map[string]bool{}
		for _, m := range ms {
			if !first[m.value] {
				first[m.value] = true
				order = append(order, m.value)
			}
		}
		var wantOrder []string
		for _, l := range want {
			if strings.Fields(l)[2] == key {
				wantOrder = append(wantOrder, l)
			}
		}
		if !slices.Equal(order, wantOrder) {
			t.Fatalf("interface %s: %d messages out of the order written", key, len(order))
		}
	}
	wantCount := map[string]int{}
	for _, l := range want {
		wantCount[l]++
	}
	for l, n := range wantCount {
		if seen[l] < n || (!dups && seen[l] != n) {
			t.Fatalf("line delivered %d times, want %d: %s", seen[l], n, l)
		}
	}
	if !dups && len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
}

// TestProduceReadBack: every record arrives exactly once, keyed by its
// interface id, the value its line without a header, the records of an
// interface in one partition in the order written, from an idempotent
// producer.
func TestProduceReadBack(t *testing.T) {
	c := cluster(t, "flows")
	var producerIDs atomic.Int64
	var nonIdempotent atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(p.Records); err == nil {
					if b.ProducerID < 0 {
						nonIdempotent.Add(1)
					} else {
						producerIDs.Store(b.ProducerID)
					}
				}
			}
		}
		return nil, nil, false
	})
	s := newSink(t, c.ListenAddrs(), "flows", 0)
	var want []string
	for w := int64(t0); w < t0+20*60; w += 60 {
		recs := window(w, 300, 7)
		if err := s.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Advance(w + 60); err != nil {
			t.Fatal(err)
		}
		want = append(want, lines(recs)...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := consume(t, c.ListenAddrs(), "flows", len(want))
	checkMessages(t, got, want, false)
	if st := s.Stats(); st.Records != uint64(len(want)) || st.FailedRecords != 0 {
		t.Errorf("Stats %+v", st)
	}
	if nonIdempotent.Load() != 0 || producerIDs.Load() < 0 {
		t.Errorf("%d batches without a producer id: the producer is not idempotent", nonIdempotent.Load())
	}
}

// TestBrokerDownThenBack: the broker goes away (its port refuses
// connections) and comes back with its data; with a spool in front,
// records written meanwhile wait, delivery is retried, and in the end
// every record is in the topic at least once, in order per interface.
func TestBrokerDownThenBack(t *testing.T) {
	data := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"), kfake.DataDir(data), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	_, port, _ := strings.Cut(addrs[0], "127.0.0.1:")

	// The client's reconnect backoff grows to seconds and it looks for
	// brokers again at most every 5 s; keep both short so the test sees
	// the outage and the recovery quickly.
	dest, err := New(Config{Brokers: addrs, Topic: "flows", Format: flow.DefaultFormat(), DeliveryTimeout: time.Second,
		Opts: []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }), kgo.MetadataMinAge(100 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	sp := sinktest.StartSpool(t, dest, spool.Retry{Initial: 50 * time.Millisecond, Max: 300 * time.Millisecond})

	var want []string
	w := int64(t0)
	produce := func(n int) {
		for range n {
			recs := window(w, 100, 5)
			if err := sp.Write(recs); err != nil {
				t.Fatal(err)
			}
			if err := sp.Advance(w + 60); err != nil {
				t.Fatal(err)
			}
			want = append(want, lines(recs)...)
			w += 60
		}
	}
	began := time.Now()
	produce(5)
	waitUntil(t, "the first windows delivered", func() bool { return sp.Stats().BacklogBytes == 0 })
	t.Logf("%v: delivered, closing the broker", time.Since(began))
	c.Close()
	t.Logf("%v: broker closed", time.Since(began))
	produce(10)
	waitUntil(t, "failed deliveries", func() bool { return sp.Stats().Retries >= 2 })
	if st := sp.Stats(); st.BacklogBytes == 0 || st.LastError == nil {
		t.Fatalf("while the broker is down: Stats %+v", st)
	}
	var pn int
	fmt.Sscan(port, &pn)
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"), kfake.DataDir(data), kfake.Ports(pn))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	t.Logf("%v: broker back", time.Since(began))
	produce(5)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: spool closed", time.Since(began))
	got := consume(t, c2.ListenAddrs(), "flows", len(want))
	checkMessages(t, got, want, true)
	t.Logf("%d records, %d messages (%d repeated by at-least-once delivery), %d retries", len(want), len(got), len(got)-len(want), sp.Stats().Retries)
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeliveryTimeout: with every produce refused, Advance fails within
// about the delivery timeout, naming the topic, instead of hanging.
func TestDeliveryTimeout(t *testing.T) {
	c := cluster(t, "flows")
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("refused"), true
	})
	s := newSink(t, c.ListenAddrs(), "flows", time.Second)
	defer s.Close()
	if err := s.Write(window(t0, 10, 2)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err := s.Advance(t0 + 60)
	if err == nil || !strings.Contains(err.Error(), "topic flows") {
		t.Fatalf("Advance: %v, want a delivery error naming the topic", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("Advance took %v", d)
	}
	if st := s.Stats(); st.FailedRecords != 10 {
		t.Errorf("Stats %+v, want 10 failed records", st)
	}
}

func TestParseLocation(t *testing.T) {
	brokers, topic, err := ParseLocation("k1:9092,[::1]:9093/vpc-flow-logs")
	if err != nil || !slices.Equal(brokers, []string{"k1:9092", "[::1]:9093"}) || topic != "vpc-flow-logs" {
		t.Fatalf("ParseLocation = %v, %q, %v", brokers, topic, err)
	}
	for _, bad := range []string{"k1:9092", "k1/flows", "k1:0/flows", "k1:9092/", "k1:9092/a b", ":9092/t", "k1:9092,/t", "k1:9092/" + strings.Repeat("t", 250)} {
		if _, _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q): no error", bad)
		}
	}
}
