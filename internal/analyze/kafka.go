package analyze

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
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
	// Follow keeps each topic open once read (connections --follow): the
	// consumer that read it stays, and every later List of the same
	// argument returns the messages produced since, each once, in
	// partition order (see kafkaFollow). The consumer is closed when the
	// context of the first List ends.
	Follow bool
	// Opts are further franz-go options, applied last.
	Opts []kgo.Opt
}

// Kafka reads flow log records from Kafka topics, one record line per
// message value (what flowlog's kafka destination writes): from the
// oldest message kept (or the first produced at --since, less the
// aggregation slack) up to the end of each partition as it was when the
// topic was listed. Messages produced later are not waited for, unless
// the topic is followed (KafkaConfig.Follow).
type Kafka struct {
	cfg  KafkaConfig
	prog *streamProgress

	mu      sync.Mutex
	follows map[string]*kafkaFollow // by argument, with cfg.Follow
}

// NewKafka returns a topic reader for cfg.
func NewKafka(cfg KafkaConfig) *Kafka {
	return &Kafka{cfg: cfg, prog: &streamProgress{w: cfg.Progress, delay: cfg.ProgressDelay, what: "messages"},
		follows: map[string]*kafkaFollow{}}
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
	where      string // "topic NAME on BROKERS", for messages
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
// is printed. With Follow, the topic is listed once: later Lists of arg
// poll it (kafkaFollow.poll).
func (k *Kafka) list(ctx context.Context, arg string, tr TimeRange, fn func(Input) error) error {
	if k.cfg.Follow {
		k.mu.Lock()
		f := k.follows[arg]
		k.mu.Unlock()
		if f != nil {
			return f.poll(ctx, arg, fn)
		}
	}
	tg, err := kafka.ParseTarget(strings.TrimPrefix(arg, KafkaScheme))
	if err != nil {
		return err
	}
	sec, err := k.secure(tg.Security)
	if err != nil {
		return err
	}
	t := &kafkaTopic{k: k, name: arg, brokers: tg.Brokers, topic: tg.Topic, sec: sec,
		where: "topic " + tg.Topic + " on " + strings.Join(tg.Brokers, ",")}
	cl, err := kgo.NewClient(k.opts(t.brokers, sec)...)
	if err != nil {
		return fmt.Errorf("kafka brokers %s: %w", strings.Join(t.brokers, ","), err)
	}
	defer cl.Close()
	lctx, cancel := context.WithTimeout(ctx, kafkaSetupTimeout)
	defer cancel()
	ids, err := t.partitionIDs(lctx, cl)
	if errors.Is(err, errNoTopic) {
		return fmt.Errorf("%s does not exist", t.where)
	}
	if err != nil {
		return err
	}
	from, to, err := t.offsets(lctx, cl, ids, tr)
	if err != nil {
		return err
	}
	if k.cfg.Follow {
		f, err := newKafkaFollow(ctx, t, tr, from)
		if err != nil {
			return err
		}
		k.mu.Lock()
		k.follows[arg] = f
		k.mu.Unlock()
		return fn(Input{Name: arg, Size: -1, src: &kafkaScan{f: f, to: to}, poll: true})
	}
	for _, id := range ids {
		if from[id] < to[id] {
			t.partitions = append(t.partitions, kafkaPartition{id: id, from: from[id], to: to[id]})
		}
	}
	return fn(Input{Name: arg, Size: -1, src: t})
}

// errNoTopic is the brokers saying the topic does not exist.
var errNoTopic = errors.New("no such topic")

// partitionIDs asks the brokers for the topic's partitions, sorted;
// errNoTopic when there is no such topic.
func (t *kafkaTopic) partitionIDs(ctx context.Context, cl *kgo.Client) ([]int32, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(t.topic)
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = false
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.where, t.sec.Explain(err))
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("read %s: the brokers answered for %d topics", t.where, len(mresp.Topics))
	}
	if err := kerr.ErrorForCode(mresp.Topics[0].ErrorCode); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, errNoTopic
		}
		return nil, fmt.Errorf("read %s: %w", t.where, err)
	}
	var ids []int32
	for _, p := range mresp.Topics[0].Partitions {
		ids = append(ids, p.Partition)
	}
	slices.Sort(ids)
	return ids, nil
}

// offsets returns where the partitions ids begin to be read — the oldest
// message kept, or the first produced at tr.Since less cwSinceSlack — and
// where they end: the high-water marks. The ends are asked first: a
// partition with no message at the start time when asked has none before
// its end either, and begins there.
func (t *kafkaTopic) offsets(ctx context.Context, cl *kgo.Client, ids []int32, tr TimeRange) (from, to map[int32]int64, err error) {
	if to, err = t.listOffsets(ctx, cl, ids, -1); err != nil {
		return nil, nil, err
	}
	// -2 asks for the oldest kept, a time for the first message produced
	// at or after it.
	start := int64(-2)
	if !tr.Since.IsZero() {
		start = max(tr.Since.Add(-cwSinceSlack).UnixMilli(), 0)
	}
	if from, err = t.listOffsets(ctx, cl, ids, start); err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		if f := from[id]; f < 0 { // no message at or after the time
			from[id] = to[id]
		}
	}
	return from, to, nil
}

// listOffsets asks for the offsets of the topic's partitions ids at ts
// (-1: the end, -2: the start, else milliseconds).
func (t *kafkaTopic) listOffsets(ctx context.Context, cl *kgo.Client, ids []int32, ts int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = t.topic
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
		return nil, fmt.Errorf("read %s: list offsets: %w", t.where, t.sec.Explain(err))
	}
	out := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("read %s: list offsets of partition %d: %w", t.where, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("read %s: list offsets: no answer for partition %d", t.where, id)
		}
	}
	return out, nil
}

// consumer returns a client that consumes the topic's partitions from
// the offsets given.
func (t *kafkaTopic) consumer(offsets map[int32]int64) (*kgo.Client, error) {
	at := map[int32]kgo.Offset{}
	for id, o := range offsets {
		at[id] = kgo.NewOffset().At(o)
	}
	// Control records (transaction markers) are kept so that offsets
	// run on to each high-water mark; they are not passed on.
	cl, err := kgo.NewClient(t.k.opts(t.brokers, t.sec,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.topic: at}),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(8<<20))...)
	if err != nil {
		return nil, fmt.Errorf("kafka brokers %s: %w", strings.Join(t.brokers, ","), err)
	}
	return cl, nil
}

// open consumes the partitions' offsets fixed by list, a fetch at a time,
// and streams the message values as lines.
func (t *kafkaTopic) open(ctx context.Context) (io.ReadCloser, error) {
	if len(t.partitions) == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	from := map[int32]int64{}
	end := map[int32]int64{}
	for _, p := range t.partitions {
		from[p.id], end[p.id] = p.from, p.to
	}
	cl, err := t.consumer(from)
	if err != nil {
		return nil, err
	}
	return startPageReader(ctx, t.k.prog, func(ctx context.Context, pages chan<- linePage) {
		defer cl.Close()
		t.pump(ctx, cl, pages, kafkaPump{
			more: func() bool { return len(end) > 0 },
			take: func(rec *kgo.Record) bool {
				stop, ok := end[rec.Partition]
				if !ok || rec.Offset >= stop {
					return false // produced after the listing
				}
				if rec.Offset+1 >= stop {
					delete(end, rec.Partition)
					cl.PauseFetchPartitions(map[string][]int32{t.topic: {rec.Partition}})
				}
				return true
			},
			fail: func(err error) error { return err },
		})
	}), nil
}

// kafkaPump says how long a read of a topic consumes, which records it
// passes on, and how it ends on a fetch error.
type kafkaPump struct {
	more func() bool                // false: the read is over
	take func(rec *kgo.Record) bool // whether rec's value is read (control records never are)
	// fail is what the reader returns after the fetch error err: err,
	// or io.EOF to end the read quietly.
	fail func(err error) error
	// stall, when not 0, ends the read (io.EOF) once a fetch was waited
	// for that long.
	stall time.Duration
}

// pump sends the values of each fetch of cl as a page of lines while
// p.more, until a fetch error, a stall or ctx ends it.
func (t *kafkaTopic) pump(ctx context.Context, cl *kgo.Client, pages chan<- linePage, p kafkaPump) {
	for p.more() {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if p.stall > 0 {
			pctx, cancel = context.WithTimeout(ctx, p.stall)
		}
		fs := cl.PollFetches(pctx)
		stalled := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		var ferr error
		fs.EachError(func(topic string, part int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read partition %d of topic %s: %w", part, topic, t.sec.Explain(err))
			}
		})
		if ferr != nil {
			sendPage(ctx, pages, linePage{err: p.fail(ferr)})
			return
		}
		var b []byte
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			if !p.take(rec) || rec.Attrs.IsControl() {
				return
			}
			b = append(b, bytes.TrimRight(rec.Value, "\r\n")...)
			b = append(b, '\n')
			n++
		})
		t.k.prog.add(n, len(b))
		if len(b) > 0 && !sendPage(ctx, pages, linePage{lines: b}) {
			return
		}
		if stalled {
			break
		}
	}
	sendPage(ctx, pages, linePage{err: io.EOF})
}

// Following a topic. Unlike a log group, a topic has a cursor: the
// consumer that read the topic up to its end stays open, positioned after
// the last message read, and its fetches wait at the brokers for new
// messages (a long poll: FetchMaxWait). Nothing is read twice, in
// partition order, and nothing is kept per message. Each poll asks for the
// topic's partitions (to consume the ones added since, and to notice the
// topic deleted) and their ends, and reads up to them.
const (
	// kafkaFollowGone ends a follow whose brokers have failed to answer
	// the polls for that long.
	kafkaFollowGone = time.Minute
	// kafkaFollowStall ends a poll's read that waited that long for a
	// fetch (an end not reached: a partition whose leader is away): the
	// other inputs' conversations are not held, and the next poll goes
	// on from there.
	kafkaFollowStall = 10 * time.Second
)

// kafkaFollow is the state of a followed topic: its consumer, and where
// each partition's read has come to.
type kafkaFollow struct {
	t       *kafkaTopic
	tr      TimeRange // where partitions added while followed begin
	cl      *kgo.Client
	release func() bool // stops the closing of cl when the follow's context ends

	// The kafkaFollow… constants; tests change them.
	gone, stall time.Duration

	mu      sync.Mutex
	pos     map[int32]int64 // the next offset to read, by partition consumed
	failing time.Time       // when the polls began to fail; zero while they do not
	scanErr error           // why the last read stopped early
	err     error           // ended the follow
}

// newKafkaFollow starts consuming t from the offsets from, until ctx
// ends (Ctrl-C) or an error ends the follow.
func newKafkaFollow(ctx context.Context, t *kafkaTopic, tr TimeRange, from map[int32]int64) (*kafkaFollow, error) {
	cl, err := t.consumer(from)
	if err != nil {
		return nil, err
	}
	f := &kafkaFollow{t: t, tr: tr, cl: cl, gone: kafkaFollowGone, stall: kafkaFollowStall, pos: maps.Clone(from)}
	f.release = context.AfterFunc(ctx, cl.Close)
	return f, nil
}

// poll is a later List of the topic: it consumes the partitions added
// since the last poll, asks for the partitions' ends and hands fn an input
// of the messages up to them — or nothing, when there are none. An error
// ends the follow: the topic deleted, a login refused, brokers that have
// not answered for f.gone.
func (f *kafkaFollow) poll(ctx context.Context, arg string, fn func(Input) error) error {
	f.mu.Lock()
	err, scanErr := f.err, f.scanErr
	f.scanErr = nil
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if scanErr != nil && kafkaFatal(scanErr) {
		return f.end(scanErr)
	}
	to, err := f.refresh(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return f.failed(err)
	}
	if !f.behind(to) {
		return nil
	}
	return fn(Input{Name: arg, Size: -1, src: &kafkaScan{f: f, to: to}, poll: true})
}

// refresh consumes the partitions added since the last poll (from their
// start, or the first message at --since) and returns the ends of all.
func (f *kafkaFollow) refresh(ctx context.Context) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, kafkaSetupTimeout)
	defer cancel()
	ids, err := f.t.partitionIDs(ctx, f.cl)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	var added []int32
	for _, id := range ids {
		if _, ok := f.pos[id]; !ok {
			added = append(added, id)
		}
	}
	f.mu.Unlock()
	if len(added) > 0 {
		from, _, err := f.t.offsets(ctx, f.cl, added, f.tr)
		if err != nil {
			return nil, err
		}
		at := map[int32]kgo.Offset{}
		f.mu.Lock()
		for id, o := range from {
			f.pos[id], at[id] = o, kgo.NewOffset().At(o)
		}
		f.mu.Unlock()
		f.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{f.t.topic: at})
	}
	to, err := f.t.listOffsets(ctx, f.cl, ids, -1)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.failing = time.Time{}
	f.mu.Unlock()
	return to, nil
}

// failed says what a failed poll means: the topic deleted or settings
// refused end the follow; brokers that fail to answer end it once they
// have for f.gone, and until then the next polls try again.
func (f *kafkaFollow) failed(err error) error {
	switch {
	case errors.Is(err, errNoTopic):
		return f.end(fmt.Errorf("%s no longer exists (deleted while followed)", f.t.where))
	case kafkaFatal(err):
		return f.end(err)
	}
	now := time.Now()
	f.mu.Lock()
	if f.failing.IsZero() {
		f.failing = now
	}
	failing := now.Sub(f.failing)
	f.mu.Unlock()
	if failing < f.gone {
		return nil
	}
	return f.end(fmt.Errorf("%w (failing for over %s: the brokers are down or unreachable)", err, f.gone))
}

// kafkaFatal reports whether err, met while a topic is followed, is
// settings to change rather than brokers away for a while: a refused
// login or certificate, or a Kafka error that retrying does not mend
// (not authorized, …).
func kafkaFatal(err error) bool {
	if kafka.IsSecurityError(err) {
		return true
	}
	var ke *kerr.Error
	return errors.As(err, &ke) && !ke.Retriable && ke != kerr.UnknownTopicOrPartition && ke != kerr.UnknownTopicID
}

// end ends the follow with err, closing its consumer; every later poll
// returns the first error.
func (f *kafkaFollow) end(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		if f.release() {
			f.cl.Close()
		}
	}
	return f.err
}

// behind reports whether a partition's read has not come to its end in
// to.
func (f *kafkaFollow) behind(to map[int32]int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, end := range to {
		if f.pos[id] < end {
			return true
		}
	}
	return false
}

// kafkaScan is one poll's read of a followed topic: from where the last
// one stopped up to the ends the poll asked for, and the messages that
// came with the last fetches beyond them.
type kafkaScan struct {
	f  *kafkaFollow
	to map[int32]int64
}

func (s *kafkaScan) open(ctx context.Context) (io.ReadCloser, error) {
	f := s.f
	return startPageReader(ctx, f.t.k.prog, func(ctx context.Context, pages chan<- linePage) {
		f.t.pump(ctx, f.cl, pages, kafkaPump{
			more: func() bool { return f.behind(s.to) },
			take: func(rec *kgo.Record) bool {
				f.mu.Lock()
				f.pos[rec.Partition] = rec.Offset + 1
				f.mu.Unlock()
				return true
			},
			// What was read stays read; the next poll goes on from
			// there, or ends the follow.
			fail: func(err error) error {
				f.mu.Lock()
				f.scanErr = err
				f.mu.Unlock()
				return io.EOF
			},
			stall: f.stall,
		})
	}), nil
}

// KafkaPartition is a partition of a topic and the offsets of it to
// read: [From, To).
type KafkaPartition struct {
	ID       int32
	From, To int64
}

// Partitions lists the topic a kafka:// argument names: every partition,
// sorted by ID, with the offsets List reads for tr (From is the oldest
// message kept or the first produced at tr.Since less the slack, To the
// high-water mark; From == To: nothing to read). A missing topic is an
// error ending in "does not exist", as List's.
func (k *Kafka) Partitions(ctx context.Context, arg string, tr TimeRange) ([]KafkaPartition, error) {
	t, cl, err := k.topicClient(arg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	lctx, cancel := context.WithTimeout(ctx, kafkaSetupTimeout)
	defer cancel()
	ids, err := t.partitionIDs(lctx, cl)
	if errors.Is(err, errNoTopic) {
		return nil, fmt.Errorf("%s does not exist", t.where)
	}
	if err != nil {
		return nil, err
	}
	from, to, err := t.offsets(lctx, cl, ids, tr)
	if err != nil {
		return nil, err
	}
	out := make([]KafkaPartition, 0, len(ids))
	for _, id := range ids {
		out = append(out, KafkaPartition{ID: id, From: from[id], To: to[id]})
	}
	return out, nil
}

// ReadPartitions reads parts of the topic arg names one partition after
// the other, in the order given, each from From up to To, and calls fn
// with each message (control records are not passed on); fn returning
// false ends the read, with no error. Only one partition is consumed at a
// time, so the messages come in a fixed order (the console's pages of a
// topic depend on it), unlike List's input, which reads the partitions
// side by side.
func (k *Kafka) ReadPartitions(ctx context.Context, arg string, parts []KafkaPartition, fn func(partition int32, offset int64, value []byte) bool) error {
	t, meta, err := k.topicClient(arg)
	if err != nil {
		return err
	}
	meta.Close()
	for _, p := range parts {
		if p.From >= p.To {
			continue
		}
		more, err := t.readPartition(ctx, p, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// topicClient parses a kafka:// argument and returns its topic and a
// client of its brokers (no consuming).
func (k *Kafka) topicClient(arg string) (*kafkaTopic, *kgo.Client, error) {
	tg, err := kafka.ParseTarget(strings.TrimPrefix(arg, KafkaScheme))
	if err != nil {
		return nil, nil, err
	}
	sec, err := k.secure(tg.Security)
	if err != nil {
		return nil, nil, err
	}
	t := &kafkaTopic{k: k, name: arg, brokers: tg.Brokers, topic: tg.Topic, sec: sec,
		where: "topic " + tg.Topic + " on " + strings.Join(tg.Brokers, ",")}
	cl, err := kgo.NewClient(k.opts(t.brokers, sec)...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka brokers %s: %w", strings.Join(t.brokers, ","), err)
	}
	return t, cl, nil
}

// readPartition consumes [p.From, p.To) of one partition into fn; more
// is false when fn stopped the read.
func (t *kafkaTopic) readPartition(ctx context.Context, p KafkaPartition, fn func(int32, int64, []byte) bool) (more bool, err error) {
	cl, err := t.consumer(map[int32]int64{p.ID: p.From})
	if err != nil {
		return false, err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var ferr error
		fs.EachError(func(topic string, part int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read partition %d of topic %s: %w", part, topic, t.sec.Explain(err))
			}
		})
		if ferr != nil {
			return false, ferr
		}
		done, stopped := false, false
		fs.EachRecord(func(rec *kgo.Record) {
			if done || rec.Partition != p.ID || rec.Offset < p.From {
				return
			}
			if rec.Offset >= p.To {
				done = true
				return
			}
			if !rec.Attrs.IsControl() {
				t.k.prog.add(1, len(rec.Value))
				if !fn(rec.Partition, rec.Offset, rec.Value) {
					done, stopped = true, true
					return
				}
			}
			if rec.Offset+1 >= p.To {
				done = true
			}
		})
		if stopped {
			return false, nil
		}
		if done {
			return true, nil
		}
	}
}
