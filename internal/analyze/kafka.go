package analyze

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowlog/flowlog/internal/sink/kafka"
)

// KafkaScheme starts a topic input:
// kafka://host:port[,host:port…]/topic[?tls=true&sasl=…] (kafka.ParseTarget).
const KafkaScheme = "kafka://"

// kafkaSetupTimeout bounds listing a topic (metadata and offsets): brokers
// that do not answer are an error, not a hang.
const kafkaSetupTimeout = 20 * time.Second

// KafkaConfig says how to read Kafka topics.
type KafkaConfig struct {
	// Progress receives a count of messages read while topics are read;
	// nil: none.
	Progress io.Writer
	// ProgressDelay is how long a read runs before the count shows.
	ProgressDelay time.Duration
	// Getenv completes the security settings of a kafka:// URL
	// (kafka.Security.FromEnv: FLOWLOG_KAFKA_USERNAME, …); nil means
	// os.Getenv.
	Getenv func(string) string
	// Warn receives the warnings of a URL's security settings
	// (tls-insecure-skip-verify); nil means os.Stderr.
	Warn io.Writer
	// Opts are further franz-go options, applied last.
	Opts []kgo.Opt
}

// Kafka reads flow log records from Kafka topics, one record line per
// message value (what flowlog's kafka destination writes): from the
// oldest message kept (or the first produced at --since, less the
// aggregation slack) up to the end of each partition as it was when the
// topic was listed. Messages produced later are not waited for.
type Kafka struct {
	cfg  KafkaConfig
	prog *streamProgress
}

// NewKafka returns a topic reader for cfg.
func NewKafka(cfg KafkaConfig) *Kafka {
	return &Kafka{cfg: cfg, prog: &streamProgress{w: cfg.Progress, delay: cfg.ProgressDelay, what: "messages"}}
}

// kafkaPartition is a partition's offsets to read: [from, to).
type kafkaPartition struct {
	id       int32
	from, to int64
}

// kafkaTopic is one topic input.
type kafkaTopic struct {
	k          *Kafka
	name       string // the argument, for messages
	brokers    []string
	topic      string
	sec        *kafka.Secured
	partitions []kafkaPartition // with messages to read
}

func (k *Kafka) opts(brokers []string, sec *kafka.Secured, more ...kgo.Opt) []kgo.Opt {
	o := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("flowlog-analyze"), kgo.DialTimeout(5 * time.Second), kgo.RequestRetries(3)}
	o = append(o, more...)
	o = append(o, sec.Opts()...)
	return append(o, k.cfg.Opts...)
}

// secure loads the security settings of a kafka:// argument, completed
// from the environment, and warns about them.
func (k *Kafka) secure(s kafka.Security) (*kafka.Secured, error) {
	sec, err := s.FromEnv(k.cfg.Getenv).Load()
	if err != nil {
		return nil, err
	}
	if w := sec.Warning(); w != "" {
		out := k.cfg.Warn
		if out == nil {
			out = os.Stderr
		}
		fmt.Fprintf(out, "flowlog: warning: %s\n", w)
	}
	return sec, nil
}

// list lists the input a kafka:// argument names: the topic, whose
// partitions' offsets to read are fixed here (from the oldest kept, or
// the first produced at tr.Since less cwSinceSlack, to the high-water
// mark), so a missing topic or unreachable brokers fail before a report
// is printed.
func (k *Kafka) list(ctx context.Context, arg string, tr TimeRange, fn func(Input) error) error {
	tg, err := kafka.ParseTarget(strings.TrimPrefix(arg, KafkaScheme))
	if err != nil {
		return err
	}
	brokers, topic := tg.Brokers, tg.Topic
	sec, err := k.secure(tg.Security)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(k.opts(brokers, sec)...)
	if err != nil {
		return fmt.Errorf("kafka brokers %s: %w", strings.Join(brokers, ","), err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, kafkaSetupTimeout)
	defer cancel()
	where := "topic " + topic + " on " + strings.Join(brokers, ",")

	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = false
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("read %s: %w", where, sec.Explain(err))
	}
	if len(mresp.Topics) != 1 {
		return fmt.Errorf("read %s: the brokers answered for %d topics", where, len(mresp.Topics))
	}
	if err := kerr.ErrorForCode(mresp.Topics[0].ErrorCode); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("%s does not exist", where)
		}
		return fmt.Errorf("read %s: %w", where, err)
	}
	var ids []int32
	for _, p := range mresp.Topics[0].Partitions {
		ids = append(ids, p.Partition)
	}
	slices.Sort(ids)

	// Offsets: -1 asks for the high-water mark, -2 the oldest kept, a
	// time the first message produced at or after it.
	start := int64(-2)
	if !tr.Since.IsZero() {
		start = max(tr.Since.Add(-cwSinceSlack).UnixMilli(), 0)
	}
	from, err := listOffsets(ctx, cl, topic, ids, start)
	if err != nil {
		return fmt.Errorf("read %s: %w", where, sec.Explain(err))
	}
	to, err := listOffsets(ctx, cl, topic, ids, -1)
	if err != nil {
		return fmt.Errorf("read %s: %w", where, sec.Explain(err))
	}
	t := &kafkaTopic{k: k, name: arg, brokers: brokers, topic: topic, sec: sec}
	for _, id := range ids {
		f, ok := from[id]
		if !ok || f < 0 { // no message at or after the time
			f = to[id]
		}
		if f < to[id] {
			t.partitions = append(t.partitions, kafkaPartition{id: id, from: f, to: to[id]})
		}
	}
	return fn(Input{Name: arg, Size: -1, src: t})
}

// listOffsets asks for the offsets of topic's partitions at ts (-1: the
// end, -2: the start, else milliseconds).
func listOffsets(ctx context.Context, cl *kgo.Client, topic string, ids []int32, ts int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, id := range ids {
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition = id
		p.Timestamp = ts
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	// The client sends each partition's part to its leader and merges
	// the answers.
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets of partition %d: %w", p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("list offsets: no answer for partition %d", id)
		}
	}
	return out, nil
}

// open consumes the partitions' offsets fixed by list, a fetch at a time,
// and streams the message values as lines.
func (t *kafkaTopic) open(ctx context.Context) (io.ReadCloser, error) {
	if len(t.partitions) == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	offsets := map[int32]kgo.Offset{}
	for _, p := range t.partitions {
		offsets[p.id] = kgo.NewOffset().At(p.from)
	}
	// Control records (transaction markers) are kept so that offsets
	// run on to each high-water mark; they are not passed on.
	cl, err := kgo.NewClient(t.k.opts(t.brokers, t.sec,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.topic: offsets}),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(8<<20))...)
	if err != nil {
		return nil, fmt.Errorf("kafka brokers %s: %w", strings.Join(t.brokers, ","), err)
	}
	return startPageReader(ctx, t.k.prog, func(ctx context.Context, pages chan<- linePage) {
		defer cl.Close()
		t.consume(ctx, cl, pages)
	}), nil
}

// consume sends the values of each fetch as a page of lines until every
// partition reached the offset it ends at, or ctx ends.
func (t *kafkaTopic) consume(ctx context.Context, cl *kgo.Client, pages chan<- linePage) {
	end := map[int32]int64{}
	for _, p := range t.partitions {
		end[p.id] = p.to
	}
	send := func(p linePage) bool {
		select {
		case pages <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for len(end) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("read partition %d of topic %s: %w", p, topic, t.sec.Explain(err))
			}
		})
		if ferr != nil {
			send(linePage{err: ferr})
			return
		}
		var b []byte
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			stop, ok := end[rec.Partition]
			if !ok || rec.Offset >= stop {
				return // produced after the listing
			}
			if rec.Offset+1 >= stop {
				delete(end, rec.Partition)
				cl.PauseFetchPartitions(map[string][]int32{t.topic: {rec.Partition}})
			}
			if rec.Attrs.IsControl() {
				return
			}
			b = append(b, bytes.TrimRight(rec.Value, "\r\n")...)
			b = append(b, '\n')
			n++
		})
		t.k.prog.add(n, len(b))
		if len(b) > 0 && !send(linePage{lines: b}) {
			return
		}
	}
	send(linePage{err: io.EOF})
}
