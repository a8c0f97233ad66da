// Package firehose owns the Kinesis Data Firehose destination: records go
// to a delivery stream with PutRecordBatch, each record one Firehose
// record whose data is the record line in the flow log's format (no
// header, spec §5) followed by "\n". Firehose concatenates the data of
// the records it buffers into one object without adding a separator, so
// the line end is what makes the delivered objects one record per line.
//
// Write renders records and sends every full batch at once (memory stays
// bounded by one batch, whatever the window's size); Advance and Close
// send the rest. Batches respect PutRecordBatch's limits (MaxBatchRecords
// records, MaxBatchBytes of data per call, MaxRecordBytes per record).
// Throttling, ServiceUnavailableException and server errors of a whole
// call are retried by the SDK's retryer with backoff. A call that
// succeeds with FailedPutCount > 0 is followed by calls that resend only
// the failed records, with backoff, up to Config.PartialAttempts; then
// the Write or Advance fails and the spool in front (internal/spool)
// delivers the window again.
//
// Such a retried window does not duplicate what Firehose already
// accepted: the sink remembers (by a 128-bit hash of its line) each
// record accepted since the last Advance that succeeded, and leaves out
// as many identical records of the window delivered again. What it
// cannot know is a call whose answer was lost (a broken connection, a
// timeout after Firehose stored the batch): the SDK's retry sends it
// again, as the AWS agents do, and neither does a restarted process
// remember what its predecessor sent. Delivery is therefore at least
// once, as for the other stream destinations, with duplicates only after
// such losses of an answer or a crash.
package firehose

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/smithy-go"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/awsconf"
	"github.com/flowlog/flowlog/internal/sink"
)

// PutRecordBatch limits (Amazon Data Firehose API reference).
const (
	MaxBatchRecords = 500
	// MaxBatchBytes is the most data of one call, counted before the
	// base64 encoding of the JSON protocol.
	MaxBatchBytes = 4 << 20
	// MaxRecordBytes is the most data of one record (1,000 KiB).
	MaxRecordBytes = 1000 << 10
)

// Every record line and its line end fit one record, so no record is ever
// refused for its size.
const _ uint = MaxRecordBytes - sink.MaxLineBytes - 1

// DefaultPartialAttempts is how many calls a record that Firehose refused
// on its own (FailedPutCount) gets within one Write or Advance.
const DefaultPartialAttempts = 8

// ErrAccessDenied is matched (errors.Is) by errors of calls the
// credentials are not allowed to make (AccessDeniedException) or that
// were refused for the credentials themselves (unknown key, bad
// signature, expired token). A flow log's deliverLogsStatus is FAILED
// while its delivery fails with it.
var ErrAccessDenied = errors.New("access denied")

// Error is a failed Firehose call.
type Error struct {
	Op     string // API operation, e.g. "PutRecordBatch"
	Stream string
	Err    error // the SDK's error, or the records' own error
	denied bool
}

func (e *Error) Error() string {
	// An API's refusal as its code and message, without the SDK's
	// request id: a flow log's deliverLogsErrorMessage then stays the
	// same from one retry to the next.
	detail := e.Err.Error()
	var ae smithy.APIError
	if errors.As(e.Err, &ae) {
		detail = ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	if e.denied {
		return fmt.Sprintf("firehose %s to delivery stream %s: access denied: the credentials in use need firehose:PutRecordBatch on it: %s", e.Op, e.Stream, detail)
	}
	return fmt.Sprintf("firehose %s to delivery stream %s: %s", e.Op, e.Stream, detail)
}

// Unwrap returns the underlying error, and ErrAccessDenied for permission
// errors.
func (e *Error) Unwrap() []error {
	if e.denied {
		return []error{ErrAccessDenied, e.Err}
	}
	return []error{e.Err}
}

func wrapErr(op, stream string, err error) error {
	e := &Error{Op: op, Stream: stream, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"IncompleteSignature", "ExpiredTokenException", "MissingAuthenticationToken", "AccessDenied", "SignatureDoesNotMatch":
			e.denied = true
		}
	}
	return e
}

// ValidStreamName reports whether s has the syntax Firehose allows for
// delivery stream names: 1 to 64 of [a-zA-Z0-9_.-].
func ValidStreamName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Target is a delivery stream, as named by a destination.
type Target struct {
	Stream  string
	Region  string // "" unless the destination gave one
	Account string // "" unless the destination was an ARN
}

// ARN is the stream's ARN in region and account.
func ARN(region, account, stream string) string {
	return "arn:aws:firehose:" + region + ":" + account + ":deliverystream/" + stream
}

// ParseLocation reads the location of a firehose destination
// (sink.ParseDestination): "STREAM" or "STREAM?region=R" (the form of
// firehose://STREAM?region=R), or the stream's ARN
// "arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME", the form AWS's
// LogDestination takes.
func ParseLocation(location string) (Target, error) {
	if rest, ok := strings.CutPrefix(location, "arn:"); ok {
		parts := strings.SplitN(rest, ":", 5)
		if len(parts) != 5 || !strings.HasPrefix(parts[0], "aws") || parts[1] != "firehose" || parts[2] == "" || !strings.HasPrefix(parts[4], "deliverystream/") {
			return Target{}, fmt.Errorf("firehose destination %q: want arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME", location)
		}
		t := Target{Stream: strings.TrimPrefix(parts[4], "deliverystream/"), Region: parts[2], Account: parts[3]}
		if !ValidStreamName(t.Stream) {
			return Target{}, fmt.Errorf("firehose destination %q: delivery stream name %q: want 1 to 64 of A-Z a-z 0-9 _ . -", location, t.Stream)
		}
		return t, nil
	}
	name, query, _ := strings.Cut(location, "?")
	if !ValidStreamName(name) {
		return Target{}, fmt.Errorf("firehose destination %q: delivery stream name %q: want 1 to 64 of A-Z a-z 0-9 _ . -", location, name)
	}
	t := Target{Stream: name}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return Target{}, fmt.Errorf("firehose destination %q: query: %w", location, err)
		}
		for k, v := range q {
			if k != "region" {
				return Target{}, fmt.Errorf("firehose destination %q: query parameter %q: only region is known", location, k)
			}
			if len(v) != 1 || v[0] == "" {
				return Target{}, fmt.Errorf("firehose destination %q: region: want one value", location)
			}
			t.Region = v[0]
		}
	}
	return t, nil
}

// ClientConfig says how to reach Firehose.
type ClientConfig struct {
	// Region of the stream; "" means the standard configuration
	// (AWS_REGION, the profile's region).
	Region string
	// EndpointURL is another implementation of the API (`flowlog serve`:
	// http://127.0.0.1:8080); "" means AWS (or AWS_ENDPOINT_URL_FIREHOSE /
	// AWS_ENDPOINT_URL).
	EndpointURL string
	// Credentials overrides the standard chain (environment, shared
	// files, SSO, web identity, container and instance roles) when set.
	Credentials aws.CredentialsProvider
}

// Validate reports the first setting of c NewClient cannot use.
func (c ClientConfig) Validate() error {
	return awsconf.CheckEndpoint("firehose endpoint url", c.EndpointURL)
}

// NewClient returns a Firehose client configured the standard way
// (credential chain, region, shared configuration) with cfg's overrides.
func NewClient(ctx context.Context, cfg ClientConfig) (*awsfirehose.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	awsCfg, err := awsconf.Load(ctx, awsconf.Overrides{Region: cfg.Region, Credentials: cfg.Credentials})
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		return nil, errors.New("firehose region: not set: give the stream's ARN (arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME), firehose://NAME?region=REGION, or set AWS_REGION")
	}
	return awsfirehose.NewFromConfig(awsCfg, func(o *awsfirehose.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
		}
	}), nil
}

// DefaultRetryer retries throttling, ServiceUnavailableException, server
// errors and broken connections up to 10 attempts with exponential
// backoff and jitter up to 20 s, with no retry quota: a destination
// slower than the records must wait, not fail.
func DefaultRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.MaxBackoff = 20 * time.Second
		o.RateLimiter = ratelimit.None
		o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{"ServiceUnavailableException": {}}})
	})
}

// Config configures a Sink.
type Config struct {
	// Stream is the delivery stream's name.
	Stream string
	// Format renders record lines (the flow log's format).
	Format sink.Renderer
	// Client calls Firehose (NewClient, or awsfirehose.New).
	Client *awsfirehose.Client
	// Retryer retries each call; nil means DefaultRetryer().
	Retryer aws.Retryer
	// CallTimeout bounds each call, retries included; 0 means 2 minutes.
	CallTimeout time.Duration
	// PartialAttempts bounds the calls a record refused on its own
	// (FailedPutCount) gets within one Write or Advance; 0 means
	// DefaultPartialAttempts.
	PartialAttempts int
	// PartialBackoff is the wait before the first resend of refused
	// records, doubled at each further one up to 5 s; 0 means 100 ms.
	PartialBackoff time.Duration
}

// Validate reports the first setting a Sink cannot use.
func (c Config) Validate() error {
	if !ValidStreamName(c.Stream) {
		return fmt.Errorf("firehose delivery stream %q: want 1 to 64 of A-Z a-z 0-9 _ . -", c.Stream)
	}
	if c.Format == nil {
		return errors.New("firehose format: missing")
	}
	if c.Client == nil {
		return errors.New("firehose client: missing")
	}
	if c.PartialAttempts < 0 || c.PartialAttempts > 100 {
		return fmt.Errorf("firehose partial attempts %d: want 1 to 100", c.PartialAttempts)
	}
	if c.CallTimeout < 0 || c.PartialBackoff < 0 {
		return errors.New("firehose timeouts: must not be negative")
	}
	return nil
}

// Stats counts what a Sink delivered.
type Stats struct {
	Records        uint64 // records Firehose accepted
	Bytes          uint64 // bytes of their data, line ends included
	Requests       uint64 // successful PutRecordBatch calls
	RefusedRecords uint64 // records refused on their own (FailedPutCount), each time
	Skipped        uint64 // records of a retried window left out: Firehose had accepted them
}

// Sink delivers records to a Firehose delivery stream. Write, Advance,
// Close and Reset are called by one goroutine; Stats and Abort from any.
type Sink struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	opts   []func(*awsfirehose.Options)

	// buf holds the rendered lines (with their line end) not yet sent;
	// ends[i] is where line i ends in buf.
	buf  []byte
	ends []int
	// accepted counts, by the hash of its line, the records Firehose
	// accepted since the last Advance that succeeded, in every attempt
	// to deliver the window.
	accepted map[lineKey]int32
	// skip is what the current attempt still leaves out: a copy of
	// accepted taken at Reset, when the spool starts delivering the
	// window again, used up as the records come again. Only a copy:
	// lines accepted during this attempt must not make later identical
	// lines of the same attempt (distinct records, e.g. in a format of
	// few fields) be left out.
	skip  map[lineKey]int32
	seeds [2]maphash.Seed
	// sleep waits between resends of refused records; false when the
	// sink was aborted.
	sleep func(context.Context, time.Duration) bool

	mu    sync.Mutex
	stats Stats
}

// lineKey identifies a line by two independent 64-bit hashes: 128 bits,
// so that two different lines of a window never pass for each other (a
// collision would drop a record), at a fraction of a cryptographic
// hash's cost per record.
type lineKey [2]uint64

func (s *Sink) keyOf(line []byte) lineKey {
	return lineKey{maphash.Bytes(s.seeds[0], line), maphash.Bytes(s.seeds[1], line)}
}

// New validates cfg and returns a Sink.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Retryer == nil {
		cfg.Retryer = DefaultRetryer()
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 2 * time.Minute
	}
	if cfg.PartialAttempts == 0 {
		cfg.PartialAttempts = DefaultPartialAttempts
	}
	if cfg.PartialBackoff == 0 {
		cfg.PartialBackoff = 100 * time.Millisecond
	}
	s := &Sink{cfg: cfg, accepted: map[lineKey]int32{}, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, sleep: sleepCtx}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	retryer := cfg.Retryer
	s.opts = []func(*awsfirehose.Options){func(o *awsfirehose.Options) { o.Retryer = retryer }}
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Write renders recs and sends every full batch; the rest waits for more
// records or the Advance. A record Firehose accepted earlier in the
// window (the spool delivering it again after a failure) is left out.
func (s *Sink) Write(recs []flow.Record) error {
	var skipped uint64
	for i := range recs {
		start := len(s.buf)
		s.buf = s.cfg.Format.Append(s.buf, &recs[i])
		s.buf = append(s.buf, '\n')
		if len(s.skip) > 0 {
			k := s.keyOf(s.buf[start:])
			if n := s.skip[k]; n > 0 {
				if n == 1 {
					delete(s.skip, k)
				} else {
					s.skip[k] = n - 1
				}
				s.buf = s.buf[:start]
				skipped++
				continue
			}
		}
		s.ends = append(s.ends, len(s.buf))
	}
	if skipped > 0 {
		s.mu.Lock()
		s.stats.Skipped += skipped
		s.mu.Unlock()
	}
	return s.send(false)
}

// Advance sends every record written so far. On success the window is
// delivered: the spool acknowledges it, and the memory of what was
// accepted is dropped.
func (s *Sink) Advance(int64) error {
	if err := s.send(true); err != nil {
		return err
	}
	clear(s.accepted)
	clear(s.skip)
	return nil
}

// Reset drops the records not yet sent. The spool calls it before it
// delivers the window again from its start: of the records that come
// again, as many of each line as Firehose accepted are left out.
func (s *Sink) Reset() error {
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	s.skip = maps.Clone(s.accepted)
	return nil
}

// Abort makes a Write, Advance or Close in progress return soon, with an
// error, by canceling its calls; only Close may follow. It may be called
// from any goroutine (a spool's Stop does).
func (s *Sink) Abort() { s.cancel() }

// Close sends what is left.
func (s *Sink) Close() error {
	err := s.Advance(0)
	s.cancel()
	return err
}

// Stats returns what was delivered so far.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// send sends the pending lines in batches: all of them when all is set,
// else only full batches. On an error the lines not accepted are dropped
// (the spool delivers the window again).
func (s *Sink) send(all bool) error {
	sent := 0 // lines sent (or failed) from the start of ends
	var err error
	for _, b := range Batches(s.lineSizes(), all) {
		if err = s.put(b[0], b[1]); err != nil {
			break
		}
		sent = b[1]
	}
	if err != nil {
		s.buf, s.ends = s.buf[:0], s.ends[:0]
		return err
	}
	if sent == 0 {
		return nil
	}
	// Keep the tail that did not make a full batch at the start of buf.
	from := s.ends[sent-1]
	n := copy(s.buf, s.buf[from:])
	s.buf = s.buf[:n]
	m := copy(s.ends, s.ends[sent:])
	s.ends = s.ends[:m]
	for i := range s.ends {
		s.ends[i] -= from
	}
	return nil
}

// lineSizes returns the size of each pending line.
func (s *Sink) lineSizes() []int {
	sizes := make([]int, len(s.ends))
	prev := 0
	for i, e := range s.ends {
		sizes[i] = e - prev
		prev = e
	}
	return sizes
}

// Batches cuts lines of the given sizes into PutRecordBatch calls, as
// [from, to) index ranges: each within MaxBatchRecords records and
// MaxBatchBytes bytes. With all unset only full batches are returned
// (those cut by a limit), and the tail that could still grow is left.
// A line over MaxRecordBytes never occurs (the compile-time check above);
// were one given, it would be a batch of its own.
func Batches(sizes []int, all bool) [][2]int {
	var out [][2]int
	from := 0
	for from < len(sizes) {
		to, bytes := from, 0
		for to < len(sizes) && to-from < MaxBatchRecords && bytes+sizes[to] <= MaxBatchBytes {
			bytes += sizes[to]
			to++
		}
		to = max(to, from+1)
		if to == len(sizes) && !all && to-from < MaxBatchRecords && bytes < MaxBatchBytes {
			break // not full: wait for more
		}
		out = append(out, [2]int{from, to})
		from = to
	}
	return out
}

// put sends lines [from, to) of the pending ones, and then, with
// backoff, those Firehose refused on their own, until all are accepted
// or PartialAttempts calls were made.
func (s *Sink) put(from, to int) error {
	idx := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	wait := s.cfg.PartialBackoff
	var lastCode, lastMsg string
	for attempt := 1; ; attempt++ {
		in := &awsfirehose.PutRecordBatchInput{DeliveryStreamName: aws.String(s.cfg.Stream), Records: make([]types.Record, len(idx))}
		bytes := 0
		for j, i := range idx {
			in.Records[j].Data = s.line(i)
			bytes += len(in.Records[j].Data)
		}
		out, err := call(s, func(ctx context.Context) (*awsfirehose.PutRecordBatchOutput, error) {
			return s.cfg.Client.PutRecordBatch(ctx, in, s.opts...)
		})
		if err != nil {
			return wrapErr("PutRecordBatch", s.cfg.Stream, err)
		}
		if len(out.RequestResponses) != len(idx) {
			return wrapErr("PutRecordBatch", s.cfg.Stream, fmt.Errorf("answered %d results for %d records", len(out.RequestResponses), len(idx)))
		}
		failed := idx[:0:0]
		for j, r := range out.RequestResponses {
			if r.ErrorCode != nil {
				failed = append(failed, idx[j])
				lastCode, lastMsg = aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage)
				bytes -= len(in.Records[j].Data)
				continue
			}
			s.accepted[s.keyOf(in.Records[j].Data)]++
		}
		s.mu.Lock()
		s.stats.Requests++
		s.stats.Records += uint64(len(idx) - len(failed))
		s.stats.Bytes += uint64(bytes)
		s.stats.RefusedRecords += uint64(len(failed))
		s.mu.Unlock()
		if len(failed) == 0 {
			return nil
		}
		if attempt >= s.cfg.PartialAttempts {
			return &Error{Op: "PutRecordBatch", Stream: s.cfg.Stream,
				Err: fmt.Errorf("%d of %d records refused after %d attempts (last: %s: %s)", len(failed), to-from, attempt, lastCode, lastMsg)}
		}
		if !s.sleep(s.ctx, wait) {
			return &Error{Op: "PutRecordBatch", Stream: s.cfg.Stream, Err: fmt.Errorf("%d records refused (%s), not sent again: %w", len(failed), lastCode, context.Canceled)}
		}
		wait = min(2*wait, 5*time.Second)
		idx = failed
	}
}

// line returns pending line i, line end included.
func (s *Sink) line(i int) []byte {
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.buf[start:s.ends[i]:s.ends[i]]
}

// call runs one API call under the sink's context and CallTimeout.
func call[T any](s *Sink, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.CallTimeout)
	defer cancel()
	return fn(ctx)
}
