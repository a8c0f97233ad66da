package logs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// flowLine is a default-format record line of typical length (~100 B).
func flowLine(i int) string {
	action := "ACCEPT"
	if i%10 == 0 {
		action = "REJECT"
	}
	return fmt.Sprintf("2 123456789012 eni-0a1b2c3d4e5f60718 10.0.%d.%d 172.31.%d.%d %d 443 6 %d %d 1764146400 1764146460 %s OK",
		i>>8&255, i&255, i>>4&255, i>>12&255, 1024+i%60000, 1+i%50, 40+i%150000, action)
}

// shortLine is a custom-format line short enough (~75 B) for 10,000 of
// them to fit one PutLogEvents call (1 MiB counting 26 B an event).
func shortLine(i int) string {
	action := "ACCEPT"
	if i%10 == 0 {
		action = "REJECT"
	}
	return fmt.Sprintf("eni-0a1b2c3d 10.0.%d.%d 172.31.%d.%d %d 443 6 %d %d 1764146400 %s OK",
		i>>8&255, i&255, i>>4&255, i>>12&255, 1024+i%60000, 1+i%50, 40+i%150000, action)
}

func batch(start int64, n, offset int, line func(int) string) []logs.InputEvent {
	evs := make([]logs.InputEvent, n)
	for i := range evs {
		evs[i] = logs.InputEvent{Timestamp: ptr(start + int64(i)/100), Message: ptr(line(offset + i))}
	}
	return evs
}

// BenchmarkPutEvents stores batches of 10,000 events of ~75 bytes (one
// transaction each) through the Go API.
func BenchmarkPutEvents(b *testing.B) {
	svc, _ := newService(b, logs.Options{})
	ctx := context.Background()
	if err := svc.CreateGroup(ctx, "g", "", nil); err != nil {
		b.Fatal(err)
	}
	if err := svc.CreateStream(ctx, "g", "eni-0a1b2c3d4e5f60718-all"); err != nil {
		b.Fatal(err)
	}
	evs := batch(time.Now().Add(-time.Hour).UnixMilli(), 10_000, 0, shortLine)
	n := 0
	for b.Loop() {
		if _, err := svc.PutEvents(ctx, "g", "eni-0a1b2c3d4e5f60718-all", evs); err != nil {
			b.Fatal(err)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPutLogEventsHTTP is the same through the API: aws-sdk-go-v2
// signs and sends 10,000-event PutLogEvents calls to a server on
// loopback, which verifies, decodes and stores them.
func BenchmarkPutLogEventsHTTP(b *testing.B) {
	_, srv := start(b, logs.Options{})
	client := sdkClient(b, srv)
	ctx := context.Background()
	if _, err := client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		b.Fatal(err)
	}
	if _, err := client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")}); err != nil {
		b.Fatal(err)
	}
	in := &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")}
	for _, e := range batch(time.Now().Add(-time.Hour).UnixMilli(), 10_000, 0, shortLine) {
		in.LogEvents = append(in.LogEvents, types.InputLogEvent{Timestamp: e.Timestamp, Message: e.Message})
	}
	n := 0
	for b.Loop() {
		if _, err := client.PutLogEvents(ctx, in); err != nil {
			b.Fatal(err)
		}
		n += len(in.LogEvents)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFilterEvents searches a group of filterEvents events (4
// streams) for REJECT (10% match): the first page (1 MiB of matches),
// and, in the /all case, every page through the whole group.
func BenchmarkFilterEvents(b *testing.B) {
	const filterEvents = 1_000_000
	svc, _ := newService(b, logs.Options{FilterScanTime: time.Minute})
	ctx := context.Background()
	if err := svc.CreateGroup(ctx, "g", "", nil); err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-12 * time.Hour).UnixMilli()
	t0 := time.Now()
	for s := range 4 {
		stream := fmt.Sprintf("eni-%d-all", s)
		if err := svc.CreateStream(ctx, "g", stream); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < filterEvents/4; i += 5000 {
			if _, err := svc.PutEvents(ctx, "g", stream, batch(start+int64(i)*10, 5000, s*filterEvents/4+i, flowLine)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("loaded %d events in %s (%.0f events/s)", filterEvents, time.Since(t0).Round(time.Millisecond), filterEvents/time.Since(t0).Seconds())
	for _, tc := range []struct{ name, pattern string }{
		{"term", "REJECT"},
		{"fields", "[v, a, eni, src, dst, sp, dp, proto, pkts, bytes, start, end, action = REJECT, status]"},
	} {
		b.Run(tc.name+"/first-page", func(b *testing.B) {
			for b.Loop() {
				// A page ends at 1 MiB of messages: ~7,500 events here.
				evs, next, err := svc.FilterEvents(ctx, "g", logs.Query{Pattern: tc.pattern})
				if err != nil || len(evs) < 5000 || next == "" {
					b.Fatalf("%d events, next %q, %v", len(evs), next, err)
				}
			}
		})
		b.Run(tc.name+"/all", func(b *testing.B) {
			for b.Loop() {
				q := logs.Query{Pattern: tc.pattern}
				total := 0
				for {
					evs, next, err := svc.FilterEvents(ctx, "g", q)
					if err != nil {
						b.Fatal(err)
					}
					total += len(evs)
					if next == "" {
						break
					}
					q.NextToken = next
				}
				if total != filterEvents/10 {
					b.Fatalf("%d matches, want %d", total, filterEvents/10)
				}
			}
			b.ReportMetric(float64(filterEvents)*float64(b.N)/b.Elapsed().Seconds(), "scanned-events/s")
		})
	}
}

// BenchmarkPutLogEventsCall runs a 10,000-event PutLogEvents request body
// (~1 MiB of JSON, as the SDK sends it) the way the server does after
// authentication: Resources (the ARN to authorize), then Serve (decode,
// check, store). Its time less BenchmarkPutEvents' (the store alone) is
// what decoding the body costs.
func BenchmarkPutLogEventsCall(b *testing.B) {
	svc, _ := newService(b, logs.Options{})
	ctx := context.Background()
	if err := svc.CreateGroup(ctx, "g", "", nil); err != nil {
		b.Fatal(err)
	}
	if err := svc.CreateStream(ctx, "g", "eni-0a1b2c3d4e5f60718-all"); err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"logGroupName":  "g",
		"logStreamName": "eni-0a1b2c3d4e5f60718-all",
		"logEvents":     batch(time.Now().Add(-time.Hour).UnixMilli(), 10_000, 0, shortLine),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	n := 0
	for b.Loop() {
		c := api.NewCall(nil, api.Principal{Root: true}, "logs", "PutLogEvents", "req", netip.Addr{}, false, time.Now())
		c.Body = body
		if _, err := svc.Resources(ctx, c); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Serve(ctx, c); err != nil {
			b.Fatal(err)
		}
		n += 10_000
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
