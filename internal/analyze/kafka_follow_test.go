package analyze

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/kafka"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
)

// flagsFormat is the format of tcp's record lines.
func flagsFormat(t *testing.T) *flow.Format {
	t.Helper()
	f, err := flow.ParseHeader("${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// produceTo produces values to partition of topic (-1: by key, each
// value's interface, as flowlog's destination keys them), in order.
func produceTo(t *testing.T, c *kfake.Cluster, topic string, partition int32, opts []kgo.Opt, values ...string) {
	t.Helper()
	o := append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)
	cl, err := kgo.NewClient(o...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, v := range values {
		r := &kgo.Record{Value: []byte(v), Partition: partition}
		if partition < 0 {
			eni := strings.Fields(v)[2]
			r.Key = []byte(eni)
			r.Partition = int32(len(eni) % 3)
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// kafkaAdmin sends req to c and fails on an error in its answer.
func kafkaAdmin(t *testing.T, c *kfake.Cluster, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := cl.Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var code int16
	switch r := resp.(type) {
	case *kmsg.CreatePartitionsResponse:
		code = r.Topics[0].ErrorCode
	case *kmsg.DeleteTopicsResponse:
		code = r.Topics[0].ErrorCode
	}
	if err := kerr.ErrorForCode(code); err != nil {
		t.Fatal(err)
	}
	return resp
}

// addPartitions grows topic to n partitions.
func addPartitions(t *testing.T, c *kfake.Cluster, topic string, n int32) {
	t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, n
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	kafkaAdmin(t, c, req)
}

// scanLines reads an input as it comes: its lines in order.
func scanLines(t *testing.T, in Input) []string {
	t.Helper()
	rc, err := in.src.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestKafkaFollowPolls lists a followed topic (kfake, two partitions)
// again and again while messages are produced: the first read is what
// was there, each later one the messages produced since, each once and
// in partition order; a poll with nothing new hands no input; a
// partition added while followed is read from its start.
func TestKafkaFollowPolls(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "seq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := func(p int32, from, n int) []string {
		var v []string
		for i := from; i < from+n; i++ {
			v = append(v, fmt.Sprintf("p%d %d", p, i))
		}
		return v
	}
	produceTo(t, c, "seq", 0, nil, msgs(0, 0, 300)...)
	produceTo(t, c, "seq", 1, nil, msgs(1, 0, 200)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := NewKafka(KafkaConfig{Follow: true})
	l := &Lister{Kafka: k}
	url := KafkaScheme + c.ListenAddrs()[0] + "/seq"
	poll := func() (lines []string, inputs int) {
		t.Helper()
		if err := l.List(ctx, url, func(in Input) error {
			inputs++
			if !in.poll {
				t.Error("the input of a followed topic is not marked poll")
			}
			lines = append(lines, scanLines(t, in)...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return lines, inputs
	}
	// next checks that lines are the messages after next[p] of each
	// partition, in order, and moves next on.
	next := map[string]int{}
	check := func(lines []string, want int) {
		t.Helper()
		if len(lines) != want {
			t.Fatalf("read %d messages, want %d", len(lines), want)
		}
		for _, l := range lines {
			p, n, _ := strings.Cut(l, " ")
			i, _ := strconv.Atoi(n)
			if i != next[p] {
				t.Fatalf("%s: read after message %d of %s", l, next[p]-1, p)
			}
			next[p]++
		}
	}
	lines, _ := poll()
	check(lines, 500)
	if lines, n := poll(); n != 0 || len(lines) != 0 {
		t.Fatalf("nothing new: %d inputs, %d lines", n, len(lines))
	}
	produceTo(t, c, "seq", 1, nil, msgs(1, 200, 40)...)
	produceTo(t, c, "seq", 0, nil, msgs(0, 300, 10)...)
	lines, _ = poll()
	check(lines, 50)
	addPartitions(t, c, "seq", 3)
	produceTo(t, c, "seq", 2, nil, msgs(2, 0, 7)...)
	produceTo(t, c, "seq", 0, nil, msgs(0, 310, 3)...)
	lines, _ = poll()
	check(lines, 10)
	if n := k.prog.items.Load(); n != 560 {
		t.Errorf("%d messages counted, want 560", n)
	}
}

// TestKafkaFollow follows a topic (kfake, three partitions) and a
// directory at once, with --since and --where, while messages are
// produced: what --since leaves out is not read, conversations are
// printed once each as their records come (also from a partition added
// while followed, and from the directory), and cancelling prints what is
// open at once.
func TestKafkaFollow(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	format := flagsFormat(t)
	dir := t.TempDir()
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	where, err := ParseExpr("dstport = 443 or srcport = 443")
	if err != nil {
		t.Fatal(err)
	}
	// Before: an old conversation --since leaves out (produced with an
	// old time), and A's handshake.
	produceOld(t, c, "flows", time.Unix(t0-7200, 0),
		tcp("eni-0aaa", "10.9.9.9", "10.0.0.5", 40000, 443, 2, t0-7200),
		tcp("eni-0aaa", "10.0.0.5", "10.9.9.9", 443, 40000, 4, t0-7200))
	produceTo(t, c, "flows", -1, nil,
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 18, t0))
	// Fetches wait at the brokers 500 ms instead of 5 s: the fetch that
	// first asks for a partition added waits for the one before it.
	k := NewKafka(KafkaConfig{Follow: true, Opts: []kgo.Opt{kgo.FetchMaxWait(500 * time.Millisecond)}})
	url := KafkaScheme + c.ListenAddrs()[0] + "/flows"
	rc := ReadConfig{Format: format, Where: where, Range: TimeRange{Since: time.Unix(t0-60, 0)}}
	f := runFollow(t, &Lister{Kafka: k, Range: rc.Range}, []string{url, dir}, rc)
	f.polls(t, 3)
	if out := f.out.String(); out != "" {
		t.Fatalf("after the handshake: %q", out)
	}
	// A closes; a port-80 conversation --where leaves out.
	produceTo(t, c, "flows", -1, nil,
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 17, t0+300),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 17, t0+300),
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50009, 80, 2, t0+300),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 80, 50009, 20, t0+300))
	checkConv(t, f.waitFor(t, 1)[0], "10.0.0.9:50001", "closed by FIN by both", 4, 4)
	// A partition added while followed: B's SYN and the RST answering it.
	addPartitions(t, c, "flows", 4)
	produceTo(t, c, "flows", 3, nil,
		tcp("eni-0bbb", "10.0.1.7", "10.0.0.6", 50002, 443, 2, t0+310),
		tcp("eni-0bbb", "10.0.0.6", "10.0.1.7", 443, 50002, 20, t0+310))
	checkConv(t, f.waitFor(t, 2)[1], "10.0.1.7:50002", "answered by RST", 2, 2)
	// The directory: D answered by RST.
	publish(t, dir, format,
		tcp("eni-0ccc", "10.0.2.9", "10.0.2.5", 50004, 443, 2, t0+320),
		tcp("eni-0ccc", "10.0.2.5", "10.0.2.9", 443, 50004, 20, t0+320))
	checkConv(t, f.waitFor(t, 3)[2], "10.0.2.9:50004", "answered by RST", 2, 2)
	// C's SYN, unanswered; then many polls.
	produceTo(t, c, "flows", -1, nil, tcp("eni-0aaa", "10.0.0.9", "192.0.2.1", 50003, 443, 2, t0+400))
	f.polls(t, 20)
	if convs := f.conversations(t); len(convs) != 3 {
		t.Fatalf("printed again, or --where let port 80 through:\n%s", f.out.String())
	}
	if n := k.prog.items.Load(); n != 9 {
		t.Errorf("%d messages read, want the 9 in --since once each", n)
	}
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	convs := f.conversations(t)
	if len(convs) != 4 {
		t.Fatalf("after cancel:\n%s", f.out.String())
	}
	checkConv(t, convs[3], "10.0.0.9:50003", "no answer to SYN", 2, 0)
	if f.took > time.Second {
		t.Errorf("the follow ended %v after its context", f.took)
	}
	t.Logf("the follow ended %v after its context", f.took)
}

// produceOld produces values (keyed by interface) stamped at.
func produceOld(t *testing.T, c *kfake.Cluster, topic string, at time.Time, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Key: []byte(strings.Fields(v)[2]), Value: []byte(v), Timestamp: at})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestKafkaFollowTopicDeleted deletes the followed topic: the follow
// prints the conversations still open and ends with an error naming the
// topic and brokers.
func TestKafkaFollowTopicDeleted(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "deleted"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	produceTo(t, c, "deleted", -1, nil, tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0))
	f := runFollow(t, &Lister{Kafka: NewKafka(KafkaConfig{Follow: true})}, []string{KafkaScheme + c.ListenAddrs()[0] + "/deleted"}, ReadConfig{Format: flagsFormat(t)})
	f.polls(t, 2)
	req := kmsg.NewPtrDeleteTopicsRequest()
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr("deleted")
	req.Topics = append(req.Topics, rt)
	req.TopicNames = []string{"deleted"}
	req.TimeoutMillis = 5000
	kafkaAdmin(t, c, req)
	var err2 error
	select {
	case err2 = <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the follow went on after the topic was deleted")
	}
	if err2 == nil || err2.Error() != "topic deleted on "+c.ListenAddrs()[0]+" no longer exists (deleted while followed)" {
		t.Fatalf("error %v", err2)
	}
	convs := f.conversations(t)
	if len(convs) != 1 {
		t.Fatalf("the open conversation is not printed:\n%s", f.out.String())
	}
	checkConv(t, convs[0], "10.0.0.9:50001", "no answer to SYN", 2, 0)
}

// TestKafkaFollowBrokersGone stops the brokers of a followed topic: the
// polls go on failing for the time allowed (shortened here), then the
// follow prints what is open and ends with an error naming the topic and
// brokers.
func TestKafkaFollowBrokersGone(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "gone"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	produceTo(t, c, "gone", 0, nil, tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0))
	// Requests are retried without the client's backoff of seconds.
	k := NewKafka(KafkaConfig{Follow: true, Opts: []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond })}})
	addr := c.ListenAddrs()[0]
	url := KafkaScheme + addr + "/gone"
	f := runFollow(t, &Lister{Kafka: k}, []string{url}, ReadConfig{Format: flagsFormat(t)})
	f.polls(t, 2)
	k.mu.Lock()
	fl := k.follows[url]
	k.mu.Unlock()
	fl.mu.Lock()
	fl.gone = 500 * time.Millisecond
	fl.mu.Unlock()
	c.Close()
	began := time.Now()
	select {
	case err = <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the follow went on without brokers")
	}
	if err == nil || !strings.HasPrefix(err.Error(), "read topic gone on "+addr+": ") || !strings.Contains(err.Error(), "the brokers are down or unreachable") {
		t.Fatalf("error %v", err)
	}
	t.Logf("after %v: %v", time.Since(began), err)
	if convs := f.conversations(t); len(convs) != 1 {
		t.Fatalf("the open conversation is not printed:\n%s", f.out.String())
	}
}

// TestKafkaFollowSecured follows a topic over TLS and SCRAM-SHA-512:
// records flowlog's destination produces after the follow began are
// printed as their conversations end.
func TestKafkaFollowSecured(t *testing.T) {
	p := kafkatest.NewPKI(t)
	c := kafkatest.Cluster(t, p, false, "SCRAM-SHA-512", "flows")
	env := p.Env(false, true)
	loc := c.ListenAddrs()[0] + "/flows?tls=true&sasl=scram-sha-512"
	tg, err := kafka.ParseTarget(loc)
	if err != nil {
		t.Fatal(err)
	}
	format := flagsFormat(t)
	sinkWrite := func(lines ...string) {
		t.Helper()
		s, err := kafka.New(kafka.Config{Brokers: tg.Brokers, Topic: tg.Topic, Format: format, Security: tg.Security.FromEnv(kafkatest.Getenv(env))})
		if err != nil {
			t.Fatal(err)
		}
		var recs []flow.Record
		for _, l := range lines {
			var r flow.Record
			if err := format.ParseRecord([]byte(l), &r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		if err := s.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	sinkWrite(tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0))
	f := runFollow(t, &Lister{Kafka: NewKafka(KafkaConfig{Follow: true, Getenv: kafkatest.Getenv(env)})}, []string{KafkaScheme + loc}, ReadConfig{Format: format})
	f.polls(t, 2)
	sinkWrite(tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 20, t0))
	checkConv(t, f.waitFor(t, 1)[0], "10.0.0.9:50001", "answered by RST", 2, 2)
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
}
