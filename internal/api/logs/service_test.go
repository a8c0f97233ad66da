package logs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// clock is a settable clock for retention tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newService(t testing.TB, opts logs.Options) (*logs.Service, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := logs.New(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc, db
}

// call runs one API call the way the server does: Resources, then Serve,
// and returns the JSON answer.
func call(t testing.TB, svc *logs.Service, action string, in any) (map[string]any, error) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewCall(nil, api.Principal{Root: true}, "logs", action, "req", netip.Addr{}, false, time.Now())
	c.Body = body
	if _, err := svc.Resources(context.Background(), c); err != nil {
		return nil, err
	}
	out, err := svc.Serve(context.Background(), c)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, nil
}

func must(t testing.TB, svc *logs.Service, action string, in any) map[string]any {
	t.Helper()
	out, err := call(t, svc, action, in)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return out
}

func wantCode(t *testing.T, err error, code, text string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != code || !strings.Contains(e.Message, text) {
		t.Errorf("error %v, want %s containing %q", err, code, text)
	}
}

func events(ts []int64) []map[string]any {
	var out []map[string]any
	for i, t := range ts {
		out = append(out, map[string]any{"timestamp": t, "message": fmt.Sprintf("event %d", i)})
	}
	return out
}

func eventCount(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM logs_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRetention: events older than the group's retention are refused
// (expiredLogEventEndIndex) and, once stored, deleted by the sweeper,
// which keeps storedBytes current; deleted groups and streams leave no
// events behind.
func TestRetention(t *testing.T) {
	clk := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	svc, db := newService(t, logs.Options{Now: clk.now})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	swept := make(chan struct{})
	go func() { svc.Start(ctx); close(swept) }()

	must(t, svc, "CreateLogGroup", map[string]any{"logGroupName": "g"})
	must(t, svc, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	now := clk.now().UnixMilli()
	day := int64(24 * 3600 * 1000)
	// Four days of events, one an hour.
	var ts []int64
	for h := range int64(96) {
		ts = append(ts, now-4*day+h*3600*1000+1)
	}
	out := must(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": events(ts[:24])})
	if out["rejectedLogEventsInfo"] != nil {
		t.Fatalf("put: %v", out)
	}
	must(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": events(ts[24:48])})
	must(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": events(ts[48:72])})
	must(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": events(ts[72:])})
	storedBytes := func() float64 {
		g := must(t, svc, "DescribeLogGroups", map[string]any{})["logGroups"].([]any)[0].(map[string]any)
		return g["storedBytes"].(float64)
	}
	// Each call's messages: "event 0".."event 23", 182 bytes.
	before := storedBytes()
	if before != 4*182 {
		t.Errorf("storedBytes = %v, want %d", before, 4*182)
	}

	// Three days: the first day's 24 events go.
	must(t, svc, "PutRetentionPolicy", map[string]any{"logGroupName": "g", "retentionInDays": 3})
	waitFor(t, func() bool { return eventCount(t, db) == 72 })
	if b := storedBytes(); b != 3*182 {
		t.Errorf("storedBytes after expiry = %v, want %d", b, 3*182)
	}
	// New events older than the retention are refused as expired.
	out = must(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": events([]int64{now - 3*day - 1000, now - 3*day - 500, now - 3*day + 1000})})
	info := out["rejectedLogEventsInfo"].(map[string]any)
	if info["expiredLogEventEndIndex"] != 2.0 || len(info) != 1 {
		t.Errorf("rejectedLogEventsInfo = %v", info)
	}
	// A day later (the sweeper runs on its interval; Sweep now).
	clk.add(24 * time.Hour)
	if _, err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := eventCount(t, db); n != 48 {
		t.Errorf("%d events after a day more, want 48", n)
	}

	// Deleting the stream and the group removes every event.
	must(t, svc, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "t"})
	must(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "t", "logEvents": events([]int64{clk.now().UnixMilli()})})
	must(t, svc, "DeleteLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	waitFor(t, func() bool { return eventCount(t, db) == 1 })
	if b := storedBytes(); b != float64(len("event 0")) {
		t.Errorf("storedBytes after deleting stream s = %v, want %d", b, len("event 0"))
	}
	must(t, svc, "DeleteLogGroup", map[string]any{"logGroupName": "g"})
	waitFor(t, func() bool { return eventCount(t, db) == 0 })
	var trash int
	db.QueryRow(`SELECT count(*) FROM logs_trash`).Scan(&trash)
	if trash != 0 {
		t.Errorf("%d trash rows left", trash)
	}
	cancel()
	<-swept
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPutLogEventsLimits: AWS's batch rules, each with AWS's code.
func TestPutLogEventsLimits(t *testing.T) {
	svc, db := newService(t, logs.Options{})
	must(t, svc, "CreateLogGroup", map[string]any{"logGroupName": "g"})
	must(t, svc, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	now := time.Now().UnixMilli()
	put := func(evs any) (map[string]any, error) {
		return call(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": evs, "sequenceToken": "ignored"})
	}
	_, err := put([]any{})
	wantCode(t, err, "InvalidParameterException", "greater than or equal to 1")
	_, err = put(make([]map[string]any, 10_001))
	wantCode(t, err, "InvalidParameterException", "less than or equal to 10000")
	_, err = put([]map[string]any{{"timestamp": now}})
	wantCode(t, err, "InvalidParameterException", "logEvents.1.member.message")
	_, err = put([]map[string]any{{"timestamp": now, "message": ""}})
	wantCode(t, err, "InvalidParameterException", "length greater than or equal to 1")
	_, err = put([]map[string]any{{"timestamp": now, "message": strings.Repeat("x", 262_144-25)}})
	wantCode(t, err, "InvalidParameterException", "Log event too large")
	// 1,048,576 bytes counting 26 a message: 4 events of 262,118 bytes
	// fit exactly; one byte more does not.
	big := strings.Repeat("x", 262_144-26)
	if _, err := put([]map[string]any{{"timestamp": now, "message": big}, {"timestamp": now, "message": big}, {"timestamp": now, "message": big}, {"timestamp": now, "message": big}}); err != nil {
		t.Errorf("a batch of exactly 1 MiB: %v", err)
	}
	_, err = put([]map[string]any{{"timestamp": now, "message": big}, {"timestamp": now, "message": big}, {"timestamp": now, "message": big}, {"timestamp": now, "message": big}, {"timestamp": now, "message": "x"}})
	wantCode(t, err, "InvalidParameterException", "Upload too large: 1048603 bytes exceeds limit of 1048576")
	_, err = put(events([]int64{now, now - 24*3600*1000 - 1}))
	wantCode(t, err, "InvalidParameterException", "cannot span more than 24 hours")
	if _, err := put(events([]int64{now, now - 24*3600*1000})); err != nil {
		t.Errorf("a batch spanning exactly 24 hours: %v", err)
	}
	_, err = put("not a list")
	wantCode(t, err, "SerializationException", "logEvents")
	_, err = call(t, svc, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "nope", "logEvents": events([]int64{now})})
	wantCode(t, err, "ResourceNotFoundException", "log stream does not exist")
	_, err = call(t, svc, "PutLogEvents", map[string]any{"logGroupName": "nope", "logStreamName": "s", "logEvents": events([]int64{now})})
	wantCode(t, err, "ResourceNotFoundException", "log group does not exist")

	// Out of order, with a too-new event in the middle: only it is left
	// out; the rest is stored. Sequence tokens count the calls.
	n0 := eventCount(t, db)
	out, err := put(events([]int64{now, now - 5000, now + 3*3600*1000, now - 10000}))
	if err != nil {
		t.Fatal(err)
	}
	if info := out["rejectedLogEventsInfo"].(map[string]any); info["tooNewLogEventStartIndex"] != 2.0 || len(info) != 1 {
		t.Errorf("rejectedLogEventsInfo = %v", info)
	}
	if n := eventCount(t, db); n != n0+3 {
		t.Errorf("%d events stored, want %d", n-n0, 3)
	}
	tok1 := out["nextSequenceToken"].(string)
	out, _ = put(events([]int64{now}))
	if tok2 := out["nextSequenceToken"].(string); tok2 <= tok1 || len(tok2) != len(tok1) {
		t.Errorf("sequence tokens %q then %q", tok1, tok2)
	}
}

// TestFilterEventsPages: with a tiny scan budget every call answers a
// short page and a token; following the tokens yields every match
// exactly once, in time order.
func TestFilterEventsPages(t *testing.T) {
	svc, _ := newService(t, logs.Options{FilterScanTime: time.Nanosecond})
	ctx := context.Background()
	if err := svc.CreateGroup(ctx, "g", "", nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour).UnixMilli()
	var want []string
	for s := range 3 {
		stream := fmt.Sprintf("eni-%d-all", s)
		if err := svc.CreateStream(ctx, "g", stream); err != nil {
			t.Fatal(err)
		}
		var evs []logs.InputEvent
		for i := range 2500 {
			msg := fmt.Sprintf("%s %d ACCEPT", stream, i)
			if i%5 == 0 {
				msg = fmt.Sprintf("%s %d REJECT", stream, i)
			}
			evs = append(evs, logs.InputEvent{Timestamp: ptr(now + int64(i)*10 + int64(s)), Message: ptr(msg)})
		}
		if _, err := svc.PutEvents(ctx, "g", stream, evs); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2500 {
		for s := range 3 {
			if i%5 == 0 {
				want = append(want, fmt.Sprintf("eni-%d-all %d REJECT", s, i))
			}
		}
	}
	var got []string
	q := logs.Query{Pattern: "REJECT", Limit: 100}
	calls := 0
	for {
		evs, next, err := svc.FilterEvents(ctx, "g", q)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if len(evs) > 100 {
			t.Fatalf("a page of %d events, limit 100", len(evs))
		}
		for _, e := range evs {
			got = append(got, e.Message)
		}
		if next == "" {
			break
		}
		q.NextToken = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("%d events over %d calls, want %d in time order", len(got), calls, len(want))
	}
	// The stream filters.
	evs, _, err := svc.FilterEvents(ctx, "g", logs.Query{Streams: []string{"eni-1-all"}, Pattern: `"1 REJECT"`})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.LogStreamName != "eni-1-all" {
			t.Errorf("event of %s", e.LogStreamName)
		}
	}
	// The console's view: [since, until) and truncation.
	msgs, truncated, err := svc.Messages(ctx, "g", time.UnixMilli(now), time.UnixMilli(now+100), 1000)
	if err != nil || truncated || len(msgs) != 30 {
		t.Errorf("Messages over 100 ms = %d messages, truncated %v, err %v; want 30", len(msgs), truncated, err)
	}
	msgs, truncated, err = svc.Messages(ctx, "g", time.Time{}, time.Time{}, 7000)
	if err != nil || !truncated || len(msgs) != 7000 {
		t.Errorf("Messages limit 7000 = %d messages, truncated %v, err %v", len(msgs), truncated, err)
	}
	_, _, err = svc.FilterEvents(ctx, "nope", logs.Query{})
	wantCode(t, err, "ResourceNotFoundException", "log group")
	_, _, err = svc.FilterEvents(ctx, "g", logs.Query{NextToken: "garbage"})
	wantCode(t, err, "InvalidParameterException", "nextToken")
}

func ptr[T any](v T) *T { return &v }

// TestResources: the ARNs a call is authorized on.
func TestResources(t *testing.T) {
	svc, _ := newService(t, logs.Options{AccountID: "210987654321", Region: "eu-west-3"})
	for _, tc := range []struct {
		action string
		body   string
		want   []string
	}{
		{"CreateLogGroup", `{"logGroupName":"/a/b"}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:/a/b:*"}},
		{"DescribeLogGroups", `{}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:*"}},
		{"DescribeLogStreams", `{"logGroupIdentifier":"arn:aws:logs:eu-west-3:210987654321:log-group:g:*"}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:g:*"}},
		{"PutLogEvents", `{"logGroupName":"g","logStreamName":"eni-1-all","logEvents":[]}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:g:log-stream:eni-1-all"}},
		{"CreateLogStream", `{"logGroupName":"g","logStreamName":"s"}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:g:log-stream:s"}},
		{"FilterLogEvents", `{"logGroupName":"g"}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:g:*"}},
		{"PutRetentionPolicy", `{"logGroupName":"g","retentionInDays":7}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:g:*"}},
		{"TagResource", `{"resourceArn":"arn:aws:logs:eu-west-3:210987654321:log-group:g:*"}`, []string{"arn:aws:logs:eu-west-3:210987654321:log-group:g"}},
	} {
		c := api.NewCall(nil, api.Principal{Root: true}, "logs", tc.action, "req", netip.Addr{}, false, time.Now())
		c.Body = []byte(tc.body)
		got, err := svc.Resources(context.Background(), c)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Resources(%s %s) = %q, %v; want %q", tc.action, tc.body, got, err, tc.want)
		}
	}
}

// FuzzRequest feeds arbitrary bodies to every operation: each answer is a
// success or a client error (4xx with an AWS code), never a panic or an
// internal error.
func FuzzRequest(f *testing.F) {
	actions := []string{"CreateLogGroup", "DeleteLogGroup", "DescribeLogGroups", "PutRetentionPolicy", "DeleteRetentionPolicy",
		"CreateLogStream", "DeleteLogStream", "DescribeLogStreams", "PutLogEvents", "GetLogEvents", "FilterLogEvents",
		"TagLogGroup", "UntagLogGroup", "ListTagsLogGroup", "TagResource", "UntagResource", "ListTagsForResource"}
	seeds := []string{`{"logGroupName":"g"}`, `{"logGroupName":"g","logStreamName":"s"}`,
		`{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"a"}]}`,
		`{"logGroupName":"g","logStreamName":"s","startFromHead":true,"nextToken":"f/00000000000000000000000000000000000001"}`,
		`{"logGroupName":"g","filterPattern":"[a, b = 1 || b = 2]","limit":3,"startTime":0,"endTime":5}`,
		`{"logGroupName":"g","orderBy":"LastEventTime","descending":true,"limit":1}`, `{"logGroupName":"g","retentionInDays":7}`,
		`{"resourceArn":"arn:aws:logs:us-east-1:123456789012:log-group:g","tags":{"a":"b"},"tagKeys":["a"]}`, `{`, `[]`, `null`, ``}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	svc, _ := newService(f, logs.Options{})
	ctx := context.Background()
	if err := svc.CreateGroup(ctx, "g", "", nil); err != nil {
		f.Fatal(err)
	}
	if err := svc.CreateStream(ctx, "g", "s"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, action uint8, body string) {
		c := api.NewCall(nil, api.Principal{Root: true}, "logs", actions[int(action)%len(actions)], "req", netip.Addr{}, false, time.Now())
		c.Body = []byte(body)
		if _, err := svc.Resources(ctx, c); err != nil {
			checkClientError(t, c.Action, body, err)
			return
		}
		out, err := svc.Serve(ctx, c)
		if err != nil {
			checkClientError(t, c.Action, body, err)
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("%s %s: answer does not encode: %v", c.Action, body, err)
		}
	})
}

func checkClientError(t *testing.T, action, body string, err error) {
	var e *api.Error
	if !errors.As(err, &e) || e.Status >= 500 || e.Code == "" {
		t.Fatalf("%s %q: error %v is not a client error", action, body, err)
	}
}
