package logs_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// TestPutLogEventsDecodeErrors pins which step of a PutLogEvents call
// refuses a body it cannot read, and with what: Resources (before
// authorization) for a syntax error or a bad type in a field naming the
// log group or stream, Serve (after it) for a bad type elsewhere. The
// body is decoded once, in Resources, for both; these answers are the
// ones decoding it in each step gave.
func TestPutLogEventsDecodeErrors(t *testing.T) {
	svc, _ := newService(t, logs.Options{})
	ctx := context.Background()
	if err := svc.CreateGroup(ctx, "g", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := svc.CreateStream(ctx, "g", "s"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	ts := func(ms int64) string { return strconv.FormatInt(ms, 10) }
	for _, tc := range []struct {
		name, body, step, code, message string
	}{
		{"syntax", `{"logGroupName":"g",`, "Resources", "SerializationException",
			"request body: unexpected end of JSON input"},
		{"group type", `{"logGroupName":5,"logStreamName":"s","logEvents":[]}`, "Resources", "SerializationException",
			"field logGroupName: want string, found JSON number"},
		// The events' bad type comes first in the body: the group's is
		// still the one Resources answers.
		{"group type after events type", `{"logEvents":"x","logStreamName":"s","logGroupName":true}`, "Resources", "SerializationException",
			"field logGroupName: want string, found JSON bool"},
		{"events type", `{"logGroupName":"g","logStreamName":"s","logEvents":"x"}`, "Serve", "SerializationException",
			"field logEvents: want []logs.InputEvent, found JSON string"},
		{"timestamp type", `{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":"1","message":"m"}]}`, "Serve", "SerializationException",
			"field logEvents.timestamp: want int64, found JSON string"},
		{"sequence token type", `{"logGroupName":"g","logStreamName":"s","sequenceToken":1,"logEvents":[{"timestamp":` + ts(now) + `,"message":"m"}]}`, "Serve", "SerializationException",
			"field sequenceToken: want string, found JSON number"},
		{"no stream", `{"logGroupName":"g","logEvents":[{"timestamp":` + ts(now) + `,"message":"m"}]}`, "Serve", "InvalidParameterException",
			"1 validation error detected: Value null at 'logStreamName' failed to satisfy constraint: Member must not be null"},
		{"empty body", ``, "Serve", "InvalidParameterException",
			"1 validation error detected: Value null at 'logGroupName' failed to satisfy constraint: Member must not be null"},
		{"ok", `{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":` + ts(now) + `,"message":"m"}]}`, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := api.NewCall(nil, api.Principal{Root: true}, "logs", "PutLogEvents", "req", netip.Addr{}, false, time.Now())
			c.Body = []byte(tc.body)
			step := "Resources"
			arns, err := svc.Resources(ctx, c)
			if err == nil {
				if tc.step == "Serve" || tc.step == "" {
					if want := []string{svc.StreamARN("g", "s")}; tc.code == "SerializationException" && (len(arns) != 1 || arns[0] != want[0]) {
						t.Errorf("resources %v, want %v", arns, want)
					}
				}
				step = "Serve"
				_, err = svc.Serve(ctx, c)
			}
			if tc.step == "" {
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				return
			}
			var e *api.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: error %v, want %s from %s", step, err, tc.code, tc.step)
			}
			if step != tc.step || e.Code != tc.code || e.Message != tc.message {
				t.Errorf("%s: %s %q\nwant %s: %s %q", step, e.Code, e.Message, tc.step, tc.code, tc.message)
			}
		})
	}
}
