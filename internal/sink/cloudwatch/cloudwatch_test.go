package cloudwatch

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch/logstest"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
	"github.com/flowlog/flowlog/internal/spool"
)

const group = "/flowlog/vpc-0123456789abcdef0"

// recent is a window start an hour ago: CloudWatch Logs refuses events
// more than 14 days old.
var recent = time.Now().Add(-time.Hour).Truncate(time.Minute).Unix()

func window(start int64, n, ifaces int) []flow.Record { return sinktest.Window(9, start, n, ifaces) }

// fastRetryer retries like DefaultRetryer, with short waits.
func fastRetryer(attempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 5 * time.Millisecond, nil })
	})
}

func newSink(t testing.TB, srv *logstest.Server) *Sink {
	t.Helper()
	s, err := New(Config{Group: group, Format: flow.DefaultFormat(), Client: srv.Client(), Retryer: fastRetryer(10)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// byStream is what the server should hold: each stream's events, sorted
// by time (stable: records of one start keep their order).
func byStream(recs []flow.Record) map[string][]logstest.Event {
	out := map[string][]logstest.Event{}
	for i := range recs {
		r := &recs[i]
		st := StreamName(r.InterfaceID)
		out[st] = append(out[st], logstest.Event{Timestamp: r.Start * 1000, Message: string(flow.DefaultFormat().Append(nil, r))})
	}
	for _, evs := range out {
		slices.SortStableFunc(evs, func(a, b logstest.Event) int { return int(a.Timestamp - b.Timestamp) })
	}
	return out
}

// TestDelivery: the group and one stream per interface ("<eni>-all") are
// created, and each stream holds its interface's record lines, without a
// header, timestamped by the records' start in ms, in time order; every
// request is well-formed and correctly signed (the server checks).
func TestDelivery(t *testing.T) {
	srv := logstest.New(t)
	s := newSink(t, srv)
	var all []flow.Record
	for w := recent; w < recent+10*60; w += 60 {
		recs := window(w, 200, 4)
		if err := s.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Advance(w + 60); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := byStream(all)
	if got := srv.Streams(group); len(got) != len(want) {
		t.Fatalf("streams %v, want %d", got, len(want))
	}
	for st, evs := range want {
		if !strings.HasPrefix(st, "eni-") || !strings.HasSuffix(st, "-all") {
			t.Errorf("stream name %q", st)
		}
		if got := srv.Events(group, st); !slices.Equal(got, evs) {
			t.Errorf("stream %s: %d events, want %d equal, in order", st, len(got), len(evs))
		}
	}
	// Each stream was tried first, then created (the group on the way).
	ops := srv.Ops()
	if !slices.Contains(ops, "CreateLogGroup "+group) {
		t.Errorf("calls %q: the group was not created", ops)
	}
	for st := range want {
		first := slices.IndexFunc(ops, func(op string) bool { return strings.HasSuffix(op, " "+st) })
		if first < 0 || ops[first] != "PutLogEvents "+group+" "+st || !slices.Contains(ops, "CreateLogStream "+group+" "+st) {
			t.Errorf("calls %q: want a put to %s, then its creation", ops, st)
		}
	}
	st := s.Stats()
	if st.Events != uint64(len(all)) || st.Created != 1+uint64(len(want)) || st.RejectedEvents != 0 {
		t.Errorf("Stats %+v", st)
	}
}

// TestBatchLimits sends more than one request can hold in every
// dimension: more than 10,000 events, more than 1 MiB, more than 24 hours,
// all in one stream and one Advance, shuffled. The server checks each
// batch; the stream ends with every event, in time order.
func TestBatchLimits(t *testing.T) {
	srv := logstest.New(t)
	s := newSink(t, srv)
	var recs []flow.Record
	for i := range 30000 {
		start := recent - 3*24*3600 + int64(i)*9 // 3 days and a bit
		recs = append(recs, flow.Record{Present: 1<<flow.FieldVersion | 1<<flow.FieldInterfaceID | 1<<flow.FieldStart | 1<<flow.FieldLogStatus | 1<<flow.FieldAccountID,
			Version: 2, AccountID: strings.Repeat("x", 40+i%17), InterfaceID: "eni-0123456789abcdef0", Start: start, LogStatus: flow.LogStatusOK})
	}
	shuffled := slices.Clone(recs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if err := s.Write(shuffled); err != nil {
		t.Fatal(err)
	}
	if err := s.Advance(0); err != nil {
		t.Fatal(err)
	}
	want := byStream(recs)["eni-0123456789abcdef0-all"]
	got := srv.Events(group, "eni-0123456789abcdef0-all")
	if !slices.Equal(got, want) {
		t.Fatalf("stream holds %d events, want %d in order", len(got), len(want))
	}
	if n := s.Stats().Requests; n < 4 {
		t.Errorf("%d PutLogEvents requests for 30,000 events over 3 days", n)
	}
}

// TestBatches checks the cuts at each limit exactly.
func TestBatches(t *testing.T) {
	ev := func(n int, size int, step int64) []event {
		out := make([]event, n)
		for i := range out {
			out[i] = event{ts: int64(i) * step, msg: strings.Repeat("m", size)}
		}
		return out
	}
	sizes := func(bs [][]event) []int {
		var n []int
		for _, b := range bs {
			n = append(n, len(b))
		}
		return n
	}
	if got := sizes(batches(ev(25000, 10, 1))); !slices.Equal(got, []int{10000, 10000, 5000}) {
		t.Errorf("by count: %v", got)
	}
	// 1 MiB holds exactly 1024 events of 1024-26 bytes.
	if got := sizes(batches(ev(2049, 1024-EventOverheadBytes, 1))); !slices.Equal(got, []int{1024, 1024, 1}) {
		t.Errorf("by bytes: %v", got)
	}
	hour := time.Hour.Milliseconds()
	if got := sizes(batches(ev(49, 10, hour))); !slices.Equal(got, []int{24, 24, 1}) {
		t.Errorf("by span: %v", got)
	}
	if got := sizes(batches(ev(1, MaxEventBytes-EventOverheadBytes, 1))); !slices.Equal(got, []int{1}) {
		t.Errorf("largest event: %v", got)
	}
}

// TestThrottlingRetried: throttled calls are retried with backoff and
// every event arrives once.
func TestThrottlingRetried(t *testing.T) {
	srv := logstest.New(t)
	srv.SetFaults(func(f *logstest.Faults) { f.Throttle = 4 })
	s := newSink(t, srv)
	recs := window(recent, 500, 3)
	if err := s.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close with 4 throttled calls: %v", err)
	}
	for st, evs := range byStream(recs) {
		if got := srv.Events(group, st); !slices.Equal(got, evs) {
			t.Errorf("stream %s: %d events, want %d", st, len(got), len(evs))
		}
	}
}

// TestAccessDenied: a call the credentials may not make fails with an
// error that matches ErrAccessDenied, names the call, group and stream
// and says which permissions are needed.
func TestAccessDenied(t *testing.T) {
	for _, op := range []string{"PutLogEvents", "CreateLogGroup", "CreateLogStream"} {
		t.Run(op, func(t *testing.T) {
			srv := logstest.New(t)
			srv.SetFaults(func(f *logstest.Faults) { f.Deny[op] = true })
			s := newSink(t, srv)
			if err := s.Write(window(recent, 5, 1)); err != nil {
				t.Fatal(err)
			}
			err := s.Advance(0)
			var cerr *Error
			if !errors.Is(err, ErrAccessDenied) || !errors.As(err, &cerr) || cerr.Op != op || cerr.Group != group {
				t.Fatalf("Advance: %v, want access denied for %s", err, op)
			}
			for _, want := range []string{"access denied", group, "logs:PutLogEvents", "AccessDeniedException"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			// Nothing is kept: the next Advance has nothing to send.
			if err := s.Advance(0); err != nil {
				t.Errorf("Advance after the failure: %v", err)
			}
		})
	}
}

// TestRejectedCounted: events CloudWatch Logs refuses as too old are
// counted, not retried, and Close reports them.
func TestRejectedCounted(t *testing.T) {
	srv := logstest.New(t)
	s := newSink(t, srv)
	old := window(recent-20*24*3600, 30, 1)
	fresh := window(recent, 20, 1)
	if err := s.Write(append(old, fresh...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "30 events refused") {
		t.Fatalf("Close: %v, want an error about 30 refused events", err)
	}
	if st := s.Stats(); st.RejectedEvents != 30 || st.Events != 20 {
		t.Errorf("Stats %+v, want 30 rejected and 20 accepted", st)
	}
}

// TestOutageWithSpool: the service is unavailable for a while; with a
// spool in front, records wait and are retried, and afterwards every
// record is in its stream, at least once.
func TestOutageWithSpool(t *testing.T) {
	srv := logstest.New(t)
	dest, err := New(Config{Group: group, Format: flow.DefaultFormat(), Client: srv.Client(), Retryer: fastRetryer(2)})
	if err != nil {
		t.Fatal(err)
	}
	sp := sinktest.StartSpool(t, dest, spool.Retry{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond})
	var all []flow.Record
	w := recent
	produce := func(n int) {
		for range n {
			recs := window(w, 50, 3)
			if err := sp.Write(recs); err != nil {
				t.Fatal(err)
			}
			if err := sp.Advance(w + 60); err != nil {
				t.Fatal(err)
			}
			all = append(all, recs...)
			w += 60
		}
	}
	produce(3)
	srv.SetFaults(func(f *logstest.Faults) { f.Down = true })
	produce(5)
	deadline := time.Now().Add(20 * time.Second)
	for sp.Stats().Retries < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no retries while the service is down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.SetFaults(func(f *logstest.Faults) { f.Down = false })
	produce(2)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	for st, evs := range byStream(all) {
		got := map[logstest.Event]int{}
		for _, e := range srv.Events(group, st) {
			got[e]++
		}
		for _, e := range evs {
			if got[e] == 0 {
				t.Fatalf("stream %s lacks %q", st, e.Message)
			}
		}
	}
}

func TestParseLocation(t *testing.T) {
	for in, want := range map[string]Target{
		"my-flow-logs":             {Group: "my-flow-logs"},
		"/aws/vpc/flowlogs/prod#1": {Group: "/aws/vpc/flowlogs/prod#1"},
		"arn:aws:logs:us-east-1:123456789012:log-group:my-flow-logs":   {Group: "my-flow-logs", Region: "us-east-1", Account: "123456789012"},
		"arn:aws:logs:us-east-1:123456789012:log-group:my-flow-logs:*": {Group: "my-flow-logs", Region: "us-east-1", Account: "123456789012"},
		"arn:aws-cn:logs:cn-north-1:123456789012:log-group:a/b":        {Group: "a/b", Region: "cn-north-1", Account: "123456789012"},
	} {
		if got, err := ParseLocation(in); err != nil || got != want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "has space", "arn:aws:s3:::bucket", "arn:aws:logs:us-east-1:123456789012:log-stream:x", "arn:aws:logs::123456789012:log-group:x", strings.Repeat("g", 513)} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q): no error", bad)
		}
	}
}
