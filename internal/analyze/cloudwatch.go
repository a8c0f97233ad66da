package analyze

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
	"github.com/schollz/progressbar/v3"

	"github.com/flowlog/flowlog/internal/awsconf"
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
	// Follow keeps each log group open once read (connections --follow):
	// every later List of the same argument polls the group and returns
	// the events that arrived since, each event once (see cwFollow).
	Follow bool
}

// CloudWatch reads flow log records from CloudWatch Logs log groups with
// FilterLogEvents. Credentials come from the usual AWS sources
// (environment, shared files, roles).
type CloudWatch struct {
	cfg    CloudWatchConfig
	awsCfg aws.Config

	mu      sync.Mutex
	clients map[string]*cloudwatchlogs.Client // by region
	follows map[string]*cwFollow              // by argument, with cfg.Follow

	prog *streamProgress
	seed maphash.Seed // of the event id hashes of follows
}

// NewCloudWatch returns a log group reader for cfg.
func NewCloudWatch(ctx context.Context, cfg CloudWatchConfig) (*CloudWatch, error) {
	awsCfg, err := awsconf.Load(ctx, awsconf.Overrides{Region: cfg.Region})
	if err != nil {
		return nil, err
	}
	prog := &streamProgress{w: cfg.Progress, delay: cfg.ProgressDelay, what: "log events"}
	return &CloudWatch{cfg: cfg, awsCfg: awsCfg, clients: map[string]*cloudwatchlogs.Client{}, prog: prog,
		follows: map[string]*cwFollow{}, seed: maphash.MakeSeed()}, nil
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
	if c.cfg.Follow {
		c.mu.Lock()
		f := c.follows[arg]
		c.mu.Unlock()
		if f != nil {
			return f.poll(ctx, arg, fn)
		}
	}
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
	src := &cwSource{c: c, t: t, in: in, first: first}
	if c.cfg.Follow {
		src.follow = newCWFollow(c, t, in)
		src.follow.begin(true)
		c.mu.Lock()
		c.follows[arg] = src.follow
		c.mu.Unlock()
	}
	return fn(Input{Name: arg, Size: -1, src: src, poll: c.cfg.Follow})
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
	// follow, with --follow, keeps the events seen: only new ones are
	// read, and a failure ends this scan quietly to end the follow at the
	// next poll.
	follow *cwFollow

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
				} else if s.follow != nil {
					// What was read stays read; the next poll
					// fetches the rest or ends the follow.
					s.follow.end(err)
					err = io.EOF
				} else {
					err = cwError(s.t, err)
				}
				sendPage(ctx, pages, linePage{err: err})
				return
			}
		}
		events := out.Events
		if s.follow != nil {
			events = s.follow.fresh(events)
		}
		var size int
		for _, e := range events {
			size += len(aws.ToString(e.Message)) + 1
		}
		b := make([]byte, 0, size)
		for _, e := range events {
			m := strings.TrimRight(aws.ToString(e.Message), "\r\n")
			b = append(b, m...)
			b = append(b, '\n')
		}
		s.c.prog.add(len(events), len(b))
		next := aws.ToString(out.NextToken)
		if next == "" && s.follow != nil {
			s.follow.end(nil)
		}
		// A page may be empty and still have a token: AWS stops a search
		// after a while and says where to go on.
		if len(b) > 0 || next == "" {
			p := linePage{lines: b}
			if next == "" {
				p.err = io.EOF
			}
			if !sendPage(ctx, pages, p) {
				return
			}
		}
		if next == "" {
			return
		}
		if next == aws.ToString(in.NextToken) {
			err := fmt.Errorf("read log group %s: the service returned the same nextToken twice", s.t.group)
			if s.follow != nil {
				s.follow.end(err)
				err = io.EOF
			}
			sendPage(ctx, pages, linePage{err: err})
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

// Following a log group. CloudWatch Logs has no cursor: an event becomes
// visible to FilterLogEvents some time after it is put, and flow log
// events come late by their own design (an event's timestamp is its
// record's start; each interface publishes a window's records after it
// closes, interfaces at different moments). So each poll searches again
// from a while before the newest event seen and leaves out the events
// already read, by eventId, as `aws logs tail --follow` does, but from
// further back: the CLI searches from the newest timestamp only, and
// drops an event that arrives later with an older one.
const (
	// cwFollowLookback is how far before the newest event seen a sweep
	// searches: an event later than that behind the newest one is
	// missed. As --since's slack: a window and the capture's lag.
	cwFollowLookback = cwSinceSlack
	// cwFollowRecent is how far back the polls between sweeps search.
	cwFollowRecent = 30 * time.Second
	// cwFollowSweepEvery is how often a group with many events in the
	// lookback is swept; a group with few (cwFollowSmall) is swept at
	// every poll, which then costs a page.
	cwFollowSweepEvery = time.Minute
	cwFollowSmall      = 10000
	// cwFollowMaxIDs bounds the event ids kept (a hash of 8 bytes each,
	// 20 MB at most with the maps' overhead; 437 events a second over
	// the 20 minutes): past it, the oldest seconds are forgotten, and
	// the lookback is shorter.
	cwFollowMaxIDs = 1 << 19
	// cwFollowMaxSkip is how many polls an idle or throttled group
	// skips at most: polls back off to 1 in 4.
	cwFollowMaxSkip = 3
	// cwFollowMaxThrottled ends a follow that every poll of which,
	// after the client's own retries, was throttled.
	cwFollowMaxThrottled = 10
)

// cwFollow is the state of a followed log group: which events were read,
// where to search next, and when.
type cwFollow struct {
	c    *CloudWatch
	t    cwTarget
	base cloudwatchlogs.FilterLogEventsInput // the first search (--since, --until)

	// The cwFollow… constants; tests change them.
	lookback, recent, sweepEvery time.Duration
	small                        int

	mu        sync.Mutex
	ids       eventIDs
	first     bool  // the scan running is the first, from --since
	maxTS     int64 // newest event timestamp read, ms
	maxIngest int64 // newest ingestion time read, ms (the service's clock)
	scanTS    int64 // the running scan's, merged when it ends
	scanIng   int64
	scanNew   int
	lastSweep time.Time
	sweepNext bool // the last scan ended early: search the whole lookback
	skip      int  // polls to skip before the next search
	idle      int  // scans in a row without a new event (or throttled)
	throttled int  // polls in a row throttled
	err       error
}

func newCWFollow(c *CloudWatch, t cwTarget, in *cloudwatchlogs.FilterLogEventsInput) *cwFollow {
	f := &cwFollow{c: c, t: t, base: *in, lookback: cwFollowLookback, recent: cwFollowRecent, sweepEvery: cwFollowSweepEvery, small: cwFollowSmall}
	f.base.NextToken = nil
	f.ids.init(c.seed)
	return f
}

// anchor is the newest event timestamp read, but not after the newest
// ingestion time: an event stamped in the future (a skewed clock) does
// not move the searches past events still to come.
func (f *cwFollow) anchor() int64 {
	if f.maxIngest > 0 && f.maxIngest < f.maxTS {
		return f.maxIngest
	}
	return f.maxTS
}

// begin starts a scan.
func (f *cwFollow) begin(first bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.first = first
	f.scanTS, f.scanIng, f.scanNew = 0, 0, 0
}

// poll is a later List of the group: it searches from before the newest
// event read and hands fn an input of the events not read yet — or
// nothing, when the group backs off or the search is throttled. An error
// ends the follow: the group is gone, the key refused.
func (f *cwFollow) poll(ctx context.Context, arg string, fn func(Input) error) error {
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	if f.skip > 0 {
		f.skip--
		f.mu.Unlock()
		return nil
	}
	in := f.base
	now := time.Now()
	if a := f.anchor(); a > 0 {
		w := f.recent
		if f.sweepNext || f.ids.len() <= f.small || now.Sub(f.lastSweep) >= f.sweepEvery {
			w, f.lastSweep, f.sweepNext = f.lookback, now, false
		}
		start := max(a-w.Milliseconds(), f.ids.floor, aws.ToInt64(f.base.StartTime))
		in.StartTime = aws.Int64(start)
	}
	f.mu.Unlock()

	f.begin(false)
	first, err := f.c.client(f.t.region).FilterLogEvents(ctx, &in)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.end(err)
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.err // nil when throttled: the next polls try again
	}
	return fn(Input{Name: arg, Size: -1, src: &cwSource{c: f.c, t: f.t, in: &in, first: first, follow: f}, poll: true})
}

// fresh returns the events of a page not read before, and counts them.
func (f *cwFollow) fresh(events []types.FilteredLogEvent) []types.FilteredLogEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]types.FilteredLogEvent, 0, len(events))
	for _, e := range events {
		ts := aws.ToInt64(e.Timestamp)
		id := aws.ToString(e.EventId)
		if id == "" {
			// The service always sends one; a stand-in keeps an
			// event that lacks it from hiding others.
			id = aws.ToString(e.LogStreamName) + "\x00" + strconv.FormatInt(ts, 10) + "\x00" + aws.ToString(e.Message)
		}
		if !f.ids.add(id, ts) {
			continue
		}
		out = append(out, e)
		f.scanTS = max(f.scanTS, ts)
		f.scanIng = max(f.scanIng, aws.ToInt64(e.IngestionTime))
		f.scanNew++
	}
	if f.first {
		// The first scan may be the whole group: what is older than
		// the lookback is forgotten as it goes (no earlier scan's ids
		// need keeping yet).
		f.merge()
		if f.ids.len() > cwFollowMaxIDs || f.ids.len() > 2*f.ids.kept+cwFollowSmall {
			f.prune()
		}
	}
	return out
}

// merge takes the running scan's newest times into the follow's.
func (f *cwFollow) merge() {
	f.maxTS = max(f.maxTS, f.scanTS)
	f.maxIngest = max(f.maxIngest, f.scanIng)
}

// prune forgets the ids older than the lookback before the anchor, and
// more when there are too many; no search starts before what is kept.
// A scan other than the first prunes only when it ends: a search that
// begins at the lookback must still find the ids it began with.
func (f *cwFollow) prune() {
	if a := f.anchor(); a > 0 {
		f.ids.forget(a - f.lookback.Milliseconds())
	}
	f.ids.shrink(cwFollowMaxIDs)
}

// end ends a scan: complete (err nil), throttled, or failed. The polls
// back off while nothing new comes and while throttled.
func (f *cwFollow) end(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.merge()
	f.prune()
	switch {
	case err == nil:
		f.throttled = 0
	case isThrottled(err):
		f.throttled++
		f.sweepNext = true
		if f.throttled >= cwFollowMaxThrottled {
			f.err = fmt.Errorf("%w (throttled at %d polls in a row: FilterLogEvents' rate is per account and region; poll less often with --poll)", cwError(f.t, err), f.throttled)
		}
	default:
		f.sweepNext = true
		if isNotFound(err) {
			f.err = fmt.Errorf("log group %s in %s no longer exists (deleted while followed)", f.t.group, f.t.region)
		} else {
			f.err = cwError(f.t, err)
		}
	}
	if f.scanNew > 0 && err == nil {
		f.idle, f.skip = 0, 0
	} else {
		f.idle = min(f.idle+1, 2)
		f.skip = min(1<<f.idle-1, cwFollowMaxSkip)
	}
	f.scanNew = 0
}

// isThrottled reports whether err is AWS refusing a call for its rate
// (after the client's retries).
func isThrottled(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	_, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]
	return ok
}

// eventIDs is a set of log event ids (64-bit hashes: a false match is
// about one in 3·10^13 events at the largest size), filed by the second of
// their event's timestamp: an event's id is looked for only there, and
// forgetting the oldest costs only what is forgotten.
type eventIDs struct {
	seed  maphash.Seed
	bySec map[int64]map[uint64]struct{}
	n     int
	floor int64 // ms: ids of events before it are forgotten
	kept  int   // n after the last forget
}

func (s *eventIDs) init(seed maphash.Seed) {
	s.seed = seed
	s.bySec = map[int64]map[uint64]struct{}{}
}

func (s *eventIDs) len() int { return s.n }

// add records the id of an event at ts (ms) and reports whether it was
// new.
func (s *eventIDs) add(id string, ts int64) bool {
	h := maphash.String(s.seed, id)
	sec := floorDiv(ts, 1000)
	m := s.bySec[sec]
	if m == nil {
		m = map[uint64]struct{}{}
		s.bySec[sec] = m
	} else if _, ok := m[h]; ok {
		return false
	}
	m[h] = struct{}{}
	s.n++
	return true
}

// forget drops the ids of events before ms (rounded down to its second).
func (s *eventIDs) forget(ms int64) {
	sec := floorDiv(ms, 1000)
	if sec*1000 > s.floor {
		for k, m := range s.bySec {
			if k < sec {
				s.n -= len(m)
				delete(s.bySec, k)
			}
		}
		s.floor = sec * 1000
	}
	s.kept = s.n
}

// shrink forgets the oldest seconds until at most n ids are left.
func (s *eventIDs) shrink(n int) {
	if s.n <= n {
		return
	}
	secs := slices.Sorted(maps.Keys(s.bySec))
	left := s.n
	i := 0
	for i < len(secs) && left > n {
		left -= len(s.bySec[secs[i]])
		i++
	}
	if i < len(secs) {
		s.forget(secs[i] * 1000)
	} else {
		s.forget((secs[len(secs)-1] + 1) * 1000)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
