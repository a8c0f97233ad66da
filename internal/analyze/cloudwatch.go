package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
	"github.com/schollz/progressbar/v3"

	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
)

// CloudWatchScheme starts a log group input: cloudwatch://GROUP[/STREAM-PREFIX].
const CloudWatchScheme = "cloudwatch://"

// cwSinceSlack is how much earlier than --since the events are asked for.
// An event's timestamp is its record's start (AWS, and flowlog's sink),
// and a record that starts before --since is still in the range when it
// ends after it: windows last up to the 10-minute aggregation interval,
// plus the capture's lag.
const cwSinceSlack = 20 * time.Minute

// IsCloudWatch reports whether arg names a log group: cloudwatch://… or a
// log group ARN (arn:PARTITION:logs:REGION:ACCOUNT:log-group:NAME).
func IsCloudWatch(arg string) bool {
	if strings.HasPrefix(arg, CloudWatchScheme) {
		return true
	}
	parts := strings.SplitN(arg, ":", 7)
	return len(parts) == 7 && parts[0] == "arn" && parts[2] == "logs" && parts[5] == "log-group"
}

// CloudWatchConfig says how to reach CloudWatch Logs.
type CloudWatchConfig struct {
	// EndpointURL is a CloudWatch Logs-compatible endpoint (a flowlog
	// serve, http://127.0.0.1:8080). Empty: AWS, or the SDK's
	// AWS_ENDPOINT_URL_CLOUDWATCH_LOGS.
	EndpointURL string
	// Region of the log groups named by cloudwatch:// (an ARN names its
	// own); empty: AWS_REGION or the shared config.
	Region string
	// Progress receives a line of events and bytes read while log groups
	// are read (their size is not known ahead, so it is a count, not a
	// bar); nil: none.
	Progress io.Writer
	// ProgressDelay is how long a read runs before the progress line
	// shows: short reads print nothing.
	ProgressDelay time.Duration
}

// CloudWatch reads flow log records from CloudWatch Logs log groups with
// FilterLogEvents. Credentials come from the usual AWS sources
// (environment, shared files, roles).
type CloudWatch struct {
	cfg    CloudWatchConfig
	awsCfg aws.Config

	mu      sync.Mutex
	clients map[string]*cloudwatchlogs.Client // by region

	prog *streamProgress
}

// NewCloudWatch returns a log group reader for cfg.
func NewCloudWatch(ctx context.Context, cfg CloudWatchConfig) (*CloudWatch, error) {
	opts := []func(*config.LoadOptions) error{}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	prog := &streamProgress{w: cfg.Progress, delay: cfg.ProgressDelay, what: "log events"}
	return &CloudWatch{cfg: cfg, awsCfg: awsCfg, clients: map[string]*cloudwatchlogs.Client{}, prog: prog}, nil
}

// client returns the client of region.
func (c *CloudWatch) client(region string) *cloudwatchlogs.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[region]; ok {
		return cl
	}
	cl := cloudwatchlogs.NewFromConfig(c.awsCfg, func(o *cloudwatchlogs.Options) {
		o.Region = region
		// Throttling (FilterLogEvents has a per-account rate) waits and
		// goes on; a dead endpoint fails within seconds.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.MaxBackoff = 5 * time.Second
			so.RateLimiter = ratelimit.None
		})
		if c.cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(c.cfg.EndpointURL)
		}
	})
	c.clients[region] = cl
	return cl
}

// cwTarget is a log group to read, and which of its streams.
type cwTarget struct {
	group      string
	identifier string // the ARN when the input was one: it may name another account's group
	region     string
	prefix     string // logStreamNamePrefix; "" reads every stream
}

// parseTarget reads a cloudwatch:// URL (its whole path is taken for the
// group name first: list tries a stream prefix), a log group ARN or a log
// stream ARN.
func (c *CloudWatch) parseTarget(arg string) (cwTarget, error) {
	if rest, ok := strings.CutPrefix(arg, CloudWatchScheme); ok {
		if rest == "" {
			return cwTarget{}, fmt.Errorf("%s: no log group name", arg)
		}
		region := c.awsCfg.Region
		if region == "" {
			return cwTarget{}, fmt.Errorf("%s: no AWS region: give --region, set AWS_REGION, or name the log group by its ARN", arg)
		}
		return cwTarget{group: rest, region: region}, nil
	}
	// A log stream ARN (…:log-group:NAME:log-stream:STREAM) reads the
	// streams whose names start with STREAM.
	arn, prefix, _ := strings.Cut(arg, ":log-stream:")
	t, err := cloudwatch.ParseLocation(arn)
	if err != nil {
		return cwTarget{}, err
	}
	id := strings.TrimSuffix(arn, ":*")
	return cwTarget{group: t.Group, identifier: id, region: t.Region, prefix: strings.TrimSuffix(prefix, "*")}, nil
}

// list lists the input a log group argument names: one Input that
// streams the group's events (of the streams the prefix selects) in time
// order. The first page is fetched here, so that a missing group, a
// refused key or a typo fails before any report is printed; the rest is
// fetched a page at a time while the input is read.
//
// cloudwatch://A/B names the log group A/B when it exists, else the
// streams of group A whose names start with B (group names may hold
// slashes; stream prefixes are tried only when the whole name is no
// group).
func (c *CloudWatch) list(ctx context.Context, arg string, tr TimeRange, fn func(Input) error) error {
	t, err := c.parseTarget(arg)
	if err != nil {
		return err
	}
	in := c.filterInput(t, tr)
	first, err := c.client(t.region).FilterLogEvents(ctx, in)
	if err != nil && t.identifier == "" && isNotFound(err) {
		if i := strings.LastIndexByte(t.group, '/'); i > 0 {
			alt := t
			alt.group, alt.prefix = t.group[:i], t.group[i+1:]
			ain := c.filterInput(alt, tr)
			if afirst, aerr := c.client(t.region).FilterLogEvents(ctx, ain); aerr == nil {
				t, in, first, err = alt, ain, afirst, nil
			}
		}
	}
	if err != nil {
		return cwError(t, err)
	}
	return fn(Input{Name: arg, Size: -1, src: &cwSource{c: c, t: t, in: in, first: first}})
}

// filterInput is the FilterLogEvents request of t over tr.
func (c *CloudWatch) filterInput(t cwTarget, tr TimeRange) *cloudwatchlogs.FilterLogEventsInput {
	in := &cloudwatchlogs.FilterLogEventsInput{}
	if t.identifier != "" {
		in.LogGroupIdentifier = aws.String(t.identifier)
	} else {
		in.LogGroupName = aws.String(t.group)
	}
	if t.prefix != "" {
		in.LogStreamNamePrefix = aws.String(t.prefix)
	}
	if !tr.Since.IsZero() {
		in.StartTime = aws.Int64(max(tr.Since.Add(-cwSinceSlack).UnixMilli(), 0))
	}
	if !tr.Until.IsZero() {
		// Inclusive, to the end of the --until second: a record starting
		// in it is in the range.
		in.EndTime = aws.Int64(max(tr.Until.Truncate(time.Second).UnixMilli()+999, 0))
	}
	return in
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException"
}

// cwError says what went wrong reading t, naming the group and region and
// keeping AWS's error code and message.
func cwError(t cwTarget, err error) error {
	var ae smithy.APIError
	switch {
	case isNotFound(err):
		return fmt.Errorf("log group %s does not exist in %s", t.group, t.region)
	case errors.As(err, &ae):
		hint := ""
		switch ae.ErrorCode() {
		case "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch", "ExpiredTokenException", "IncompleteSignature":
			hint = " (check the access key: AWS_ACCESS_KEY_ID, AWS_PROFILE, the shared credentials file)"
		case "AccessDeniedException":
			hint = " (reading a log group needs logs:FilterLogEvents on it)"
		}
		return fmt.Errorf("read log group %s in %s: %s: %s%s", t.group, t.region, ae.ErrorCode(), ae.ErrorMessage(), hint)
	}
	return fmt.Errorf("read log group %s in %s: %w", t.group, t.region, err)
}

// cwSource is a log group input: open streams its events as lines.
type cwSource struct {
	c     *CloudWatch
	t     cwTarget
	in    *cloudwatchlogs.FilterLogEventsInput
	first *cloudwatchlogs.FilterLogEventsOutput // fetched by list; nil once used

	mu sync.Mutex
}

func (s *cwSource) open(ctx context.Context) (io.ReadCloser, error) {
	s.mu.Lock()
	first := s.first
	s.first = nil
	s.mu.Unlock()
	// One page is fetched ahead while the last is parsed: at most three
	// pages (about 1 MB each) are held, whatever the group's size.
	return startPageReader(ctx, s.c.prog, func(ctx context.Context, pages chan<- linePage) {
		s.fetch(ctx, first, pages)
	}), nil
}

// fetch sends the pages of the group to pages, beginning with first when
// it is not nil (else with a new request), until the last or ctx ends.
func (s *cwSource) fetch(ctx context.Context, first *cloudwatchlogs.FilterLogEventsOutput, pages chan<- linePage) {
	in := *s.in
	in.NextToken = nil
	out := first
	for {
		if out == nil {
			var err error
			out, err = s.c.client(s.t.region).FilterLogEvents(ctx, &in)
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				} else {
					err = cwError(s.t, err)
				}
				select {
				case pages <- linePage{err: err}:
				case <-ctx.Done():
				}
				return
			}
		}
		var size int
		for _, e := range out.Events {
			size += len(aws.ToString(e.Message)) + 1
		}
		b := make([]byte, 0, size)
		for _, e := range out.Events {
			m := strings.TrimRight(aws.ToString(e.Message), "\r\n")
			b = append(b, m...)
			b = append(b, '\n')
		}
		s.c.prog.add(len(out.Events), len(b))
		next := aws.ToString(out.NextToken)
		// A page may be empty and still have a token: AWS stops a search
		// after a while and says where to go on.
		if len(b) > 0 || next == "" {
			p := linePage{lines: b}
			if next == "" {
				p.err = io.EOF
			}
			select {
			case pages <- p:
			case <-ctx.Done():
				return
			}
		}
		if next == "" {
			return
		}
		if next == aws.ToString(in.NextToken) {
			select {
			case pages <- linePage{err: fmt.Errorf("read log group %s: the service returned the same nextToken twice", s.t.group)}:
			case <-ctx.Done():
			}
			return
		}
		in.NextToken = aws.String(next)
		out = nil
	}
}

// linePage is one page of records rendered as lines.
type linePage struct {
	lines []byte
	err   error // after the last page: io.EOF or why reading stopped
}

// pageReader is a stream of lines that a fetcher goroutine sends a page
// at a time. Read returns as soon as its context ends, so Ctrl-C stops a
// read waiting on the network.
type pageReader struct {
	ctx    context.Context
	cancel context.CancelFunc // stops the fetcher
	pages  chan linePage
	done   chan struct{} // closed when the fetcher returned
	cur    []byte
	err    error
	finish func() // called once by Close; may be nil
	closed bool
}

// startPageReader runs fetch in a goroutine of its own, sending pages
// to the reader it returns (one page buffered: fetched ahead while the
// last is read), and counts the read in prog from now until Close.
func startPageReader(ctx context.Context, prog *streamProgress, fetch func(ctx context.Context, pages chan<- linePage)) *pageReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &pageReader{ctx: ctx, cancel: cancel, pages: make(chan linePage, 1), done: make(chan struct{}), finish: prog.end}
	prog.start()
	go func() {
		defer close(r.done)
		fetch(ctx, r.pages)
	}()
	return r
}

func (r *pageReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		select {
		case pg := <-r.pages:
			r.cur, r.err = pg.lines, pg.err
		case <-r.ctx.Done():
			r.err = r.ctx.Err()
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Close stops fetching and waits for the fetcher to end.
func (r *pageReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	<-r.done
	if r.finish != nil {
		r.finish()
	}
	return nil
}

// streamProgress shows how much inputs of unknown size (log groups,
// topics) have delivered: a count, not a bar, shown from delay into the
// first read until the last one open ends.
type streamProgress struct {
	w     io.Writer // nil: nothing is shown
	delay time.Duration
	what  string // "log events", "messages"

	items, bytes atomic.Int64

	mu   sync.Mutex
	open int
	stop func()
}

// add counts items and bytes read.
func (p *streamProgress) add(items, bytes int) {
	p.items.Add(int64(items))
	p.bytes.Add(int64(bytes))
}

// start counts an input opened and shows the progress line when it is
// the first.
func (p *streamProgress) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open++
	if p.open > 1 || p.w == nil {
		return
	}
	p.stop = p.show()
}

// end is start's counterpart: the last input to end stops the line.
func (p *streamProgress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open--
	if p.open == 0 && p.stop != nil {
		p.stop()
		p.stop = nil
	}
}

// show draws the count after p.delay, a few times a second, until the
// returned stop is called.
func (p *streamProgress) show() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-time.After(p.delay):
		case <-done:
			return
		}
		bar := progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("reading "+p.what),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(10),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		draw := func() {
			bar.Describe("reading " + p.what + ": " + strconv.FormatInt(p.items.Load(), 10))
			_ = bar.Set64(p.bytes.Load())
		}
		draw()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-done:
				draw()
				_ = bar.Finish()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
