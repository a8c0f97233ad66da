// Package kafka owns the Kafka destination, a flowlog extension beside
// AWS's Kinesis Data Firehose (sink/firehose): each record becomes one Kafka
// message whose value is the record line in the flow log's format, with
// no header (spec §5), and whose key is the record's interface id, so
// every record of an interface lands in one partition, in order.
//
// The producer is idempotent (franz-go's default, kept on purpose): the
// broker discards a batch the client sends twice after a lost response,
// so the client's own retries add no duplicates. Write hands records to
// the client; Advance and Close wait until the brokers acknowledged all
// of them, which is when a spool in front (internal/spool) counts them
// delivered. A batch not acknowledged within Config.DeliveryTimeout
// fails, also if it was sent (the brokers are down, or slow): Advance
// returns the error, and the spool delivers the records again later. If
// such a batch had in fact been written, its records are then in the
// topic twice: delivery is at least once.
//
// The package also owns how every flowlog Kafka client (this sink, the
// analyzer's topic input, the console) is secured: Security, TLS and SASL
// from a kafka:// URL's query and FLOWLOG_KAFKA_* variables, turned into
// franz-go options in one place (Security.Load), with errors that say
// which handshake failed (Secured.Explain).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink"
)

// DefaultDeliveryTimeout is how long a record may wait for the brokers
// before the batch it is in fails (and a spool in front retries it).
const DefaultDeliveryTimeout = 30 * time.Second

// Config configures a Sink.
type Config struct {
	// Brokers are the seed brokers, host:port each.
	Brokers []string
	// Topic receives the records.
	Topic string
	// Format renders record lines (the flow log's format).
	Format sink.Renderer
	// DeliveryTimeout bounds how long Advance waits for the brokers to
	// acknowledge a record; 0 means DefaultDeliveryTimeout.
	DeliveryTimeout time.Duration
	// ClientID names the client to the brokers; "" means "flowlog".
	ClientID string
	// Security is TLS and SASL (ParseTarget, Security.FromEnv); the
	// zero value is plaintext.
	Security Security
	// Opts are further franz-go options, applied last.
	Opts []kgo.Opt
}

// Validate reports the first setting a Sink cannot use.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka brokers: none")
	}
	for _, b := range c.Brokers {
		if err := checkBroker(b); err != nil {
			return err
		}
	}
	if err := checkTopic(c.Topic); err != nil {
		return err
	}
	if c.Format == nil {
		return errors.New("kafka format: missing")
	}
	if c.DeliveryTimeout != 0 && c.DeliveryTimeout < time.Second {
		return fmt.Errorf("kafka delivery timeout %v: want at least 1s", c.DeliveryTimeout)
	}
	return c.Security.Validate()
}

// Target is a parsed kafka:// location: the seed brokers, the topic and
// the security settings of the URL's query.
type Target struct {
	Brokers  []string
	Topic    string
	Security Security
}

// ParseTarget parses the location of a kafka:// destination or input
// (sink.ParseDestination), "host:port[,host:port…]/topic[?query]". The
// query holds the security settings that are neither secret nor per host:
// tls=true, tls-server-name=NAME, tls-insecure-skip-verify=true,
// sasl=plain|scram-sha-256|scram-sha-512. An unknown parameter is an
// error naming it; a credential in the URL is an error that does not
// repeat it (Security.FromEnv takes credentials from the environment).
func ParseTarget(location string) (Target, error) {
	rest, query, _ := strings.Cut(location, "?")
	if hosts, _, _ := strings.Cut(rest, "/"); strings.Contains(hosts, "@") {
		return Target{}, fmt.Errorf("kafka destination: %s", secretsHint)
	}
	if i := strings.IndexByte(query, '#'); i >= 0 {
		return Target{}, fmt.Errorf("kafka destination %q: want no #fragment", location)
	}
	sec, err := parseSecurity(query)
	if err != nil {
		if strings.Contains(err.Error(), "credentials never") {
			return Target{}, fmt.Errorf("kafka destination: %w", err)
		}
		return Target{}, fmt.Errorf("kafka destination %q: %w", location, err)
	}
	hosts, topic, ok := strings.Cut(rest, "/")
	if !ok {
		return Target{}, fmt.Errorf("kafka destination %q: want host:port[,host:port]/topic[?tls=true&sasl=…]", location)
	}
	t := Target{Topic: topic, Security: sec}
	for b := range strings.SplitSeq(hosts, ",") {
		if err := checkBroker(b); err != nil {
			return Target{}, fmt.Errorf("kafka destination %q: %w", location, err)
		}
		t.Brokers = append(t.Brokers, b)
	}
	if err := checkTopic(topic); err != nil {
		return Target{}, fmt.Errorf("kafka destination %q: %w", location, err)
	}
	return t, nil
}

// ParseLocation splits the location of a kafka:// destination
// (sink.ParseDestination), "host:port[,host:port…]/topic[?query]", into
// brokers and topic; the query is checked as ParseTarget does, and left
// out.
func ParseLocation(location string) (brokers []string, topic string, err error) {
	t, err := ParseTarget(location)
	if err != nil {
		return nil, "", err
	}
	return t.Brokers, t.Topic, nil
}

func checkBroker(b string) error {
	host, port, err := net.SplitHostPort(b)
	if err != nil || host == "" {
		return fmt.Errorf("kafka broker %q: want host:port", b)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("kafka broker %q: port %q: want 1 to 65535", b, port)
	}
	return nil
}

// checkTopic applies Kafka's rules for topic names.
func checkTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("kafka topic %q: want 1 to 249 characters, neither \".\" nor \"..\"", t)
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("kafka topic %q: character %q: want letters, digits, '.', '_' and '-'", t, c)
		}
	}
	return nil
}

// Stats counts what a Sink produced.
type Stats struct {
	Records       uint64 // records the brokers acknowledged
	Bytes         uint64 // bytes of their values
	FailedRecords uint64 // records whose delivery failed (a spool delivers them again)
}

// Sink produces records to a Kafka topic. Write, Advance, Close and Reset
// are called by one goroutine; Stats may be called from any.
type Sink struct {
	cfg    Config
	sec    *Secured
	client *kgo.Client
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	err     error // the first delivery error since the last Advance
	stats   Stats
	promise func(*kgo.Record, error)
}

// New validates cfg, reads its security files and creates the client; it
// connects on first use (Ping connects at once).
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sec, err := cfg.Security.Load()
	if err != nil {
		return nil, err
	}
	if cfg.DeliveryTimeout == 0 {
		cfg.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "flowlog"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ClientID(cfg.ClientID),
		// Idempotence needs every in-sync replica's ack; both are the
		// client's defaults, stated so that no later edit drops them.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		// Without this an idempotent client never gives up on a batch it
		// sent without hearing back, and Advance would hang for as long
		// as the brokers are unreachable. With it, such a batch fails
		// after the delivery timeout like any other, the spool in front
		// retries, and a batch that did reach the broker arrives twice:
		// at-least-once, as the spool promises anyway.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.ProduceRequestTimeout(min(cfg.DeliveryTimeout, 10*time.Second)),
		// A topic that does not exist is created where the brokers allow it.
		kgo.AllowAutoTopicCreation(),
		kgo.UnknownTopicRetries(-1),
	}
	opts = append(opts, sec.Opts()...)
	opts = append(opts, cfg.Opts...)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s := &Sink{cfg: cfg, client: client, sec: sec}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.promise = s.delivered
	return s, nil
}

// delivered is the promise of every produced record.
func (s *Sink) delivered(r *kgo.Record, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.stats.FailedRecords++
		if s.err == nil {
			s.err = fmt.Errorf("produce to kafka topic %s: %w", s.cfg.Topic, s.sec.Explain(err))
		}
		return
	}
	s.stats.Records++
	s.stats.Bytes += uint64(len(r.Value))
}

// Ping connects to a broker now (TLS handshake, SASL, metadata), so that
// a wrong CA, certificate or password is an error, explained, before any
// record waits for the brokers; it gives up when ctx ends.
func (s *Sink) Ping(ctx context.Context) error {
	if err := s.sec.Ping(ctx, s.client); err != nil {
		return fmt.Errorf("connect to kafka brokers %s: %w", strings.Join(s.cfg.Brokers, ","), err)
	}
	return nil
}

// Write hands recs to the client, one message each. It returns before the
// brokers acknowledged them; Advance waits for that. Write blocks while
// the client's buffer is full.
func (s *Sink) Write(recs []flow.Record) error {
	if len(recs) == 0 {
		return nil
	}
	// One allocation for the values and keys of the batch and one for
	// the messages: the client keeps them until acknowledged.
	buf := make([]byte, 0, len(recs)*160)
	msgs := make([]kgo.Record, len(recs))
	for i := range recs {
		r := &recs[i]
		start := len(buf)
		buf = append(buf, r.InterfaceID...)
		keyEnd := len(buf)
		buf = s.cfg.Format.Append(buf, r)
		msgs[i].Key = buf[start:keyEnd:keyEnd]
		msgs[i].Value = buf[keyEnd:len(buf):len(buf)]
	}
	for i := range msgs {
		if len(msgs[i].Key) == 0 {
			msgs[i].Key = nil
		}
		s.client.Produce(s.ctx, &msgs[i], s.promise)
	}
	return nil
}

// Advance waits until the brokers acknowledged every record written so
// far, or some failed: then it returns the first error, and the failed
// records are gone from the client (a spool delivers them again).
func (s *Sink) Advance(int64) error { return s.flush() }

// Reset forgets a delivery error; nothing else outlives a failed Advance.
func (s *Sink) Reset() error {
	s.mu.Lock()
	s.err = nil
	s.mu.Unlock()
	return nil
}

// Abort makes an Advance or Close in progress return at once, with an
// error, and fails the records not yet acknowledged; only Close may
// follow. It may be called from any goroutine (a spool's Stop does).
func (s *Sink) Abort() { s.cancel() }

// Close waits for the records written so far, like Advance, and closes
// the client.
func (s *Sink) Close() error {
	err := s.flush()
	s.cancel()
	s.client.Close()
	return err
}

func (s *Sink) flush() error {
	if err := s.client.Flush(s.ctx); err != nil {
		return fmt.Errorf("flush kafka topic %s: %w", s.cfg.Topic, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.err
	s.err = nil
	return err
}

// Stats returns what was produced so far.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
