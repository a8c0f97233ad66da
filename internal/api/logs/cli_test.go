package logs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// start serves a logs service on a fresh store.
func start(t testing.TB, opts logs.Options) (*logs.Service, *apitest.Server) {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if opts.AccountID == "" {
		opts.AccountID, opts.Region = apitest.AccountID, apitest.Region
	}
	svc, err := logs.New(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc, apitest.Start(t, api.Options{Services: []api.Service{svc}})
}

// fails runs the CLI and requires it to fail with code in its stderr.
func fails(t *testing.T, cli apitest.CLI, code string, args ...string) string {
	t.Helper()
	r := cli.Run(t, args...)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, code) {
		t.Fatalf("aws %s: exit %d, stderr %q; want an error %s", strings.Join(args, " "), r.ExitCode, r.Stderr, code)
	}
	return r.Stderr
}

type cliEvent struct {
	LogStreamName string
	Timestamp     int64
	Message       string
	IngestionTime int64
	EventID       string
}

// writeEvents writes a put-log-events --log-events file.
func writeEvents(t *testing.T, events []cliEvent) string {
	t.Helper()
	type in struct {
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	var evs []in
	for _, e := range events {
		evs = append(evs, in{e.Timestamp, e.Message})
	}
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + path
}

// TestAWSCLI walks the API with the real AWS CLI: groups, retention,
// streams, events in and out, filters, pagination, tags, deletion and the
// errors the CLI reports.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	svc, srv := start(t, logs.Options{})
	ctx := context.Background()
	cli := srv.NewCLI()
	const group = "/flowlog/vpc-0a1b2c3d"
	// run decodes into a zeroed v: json.Unmarshal would keep what an
	// earlier answer left in maps and slice elements.
	run := func(v any, args ...string) {
		t.Helper()
		if v != nil {
			reflect.ValueOf(v).Elem().SetZero()
		}
		cli.JSON(t, v, args...)
	}

	run(nil, "logs", "create-log-group", "--log-group-name", group, "--tags", "team=net,env=test")
	fails(t, cli, "ResourceAlreadyExistsException", "logs", "create-log-group", "--log-group-name", group)
	fails(t, cli, "InvalidParameterException", "logs", "create-log-group", "--log-group-name", "bad name!")
	run(nil, "logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "7")
	if msg := fails(t, cli, "InvalidParameterException", "logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "4"); !strings.Contains(msg, "enum value set") {
		t.Errorf("retention 4: %s", msg)
	}

	var groups struct {
		LogGroups []struct {
			LogGroupName    string
			CreationTime    int64
			RetentionInDays int
			Arn             string
			StoredBytes     int64
		}
	}
	run(&groups, "logs", "describe-log-groups", "--log-group-name-prefix", "/flowlog/")
	if len(groups.LogGroups) != 1 {
		t.Fatalf("describe-log-groups = %+v", groups)
	}
	g := groups.LogGroups[0]
	if g.LogGroupName != group || g.RetentionInDays != 7 || g.Arn != "arn:aws:logs:us-east-1:123456789012:log-group:"+group+":*" ||
		g.StoredBytes != 0 || time.Since(time.UnixMilli(g.CreationTime)) > time.Minute {
		t.Errorf("describe-log-groups = %+v", g)
	}

	run(nil, "logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "eni-1-all")
	run(nil, "logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "eni-2-all")
	fails(t, cli, "ResourceAlreadyExistsException", "logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "eni-1-all")

	// Events, out of order (AWS no longer requires order), a REJECT
	// every third.
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	var sent []cliEvent
	for i := range 30 {
		action := "ACCEPT"
		if i%3 == 0 {
			action = "REJECT"
		}
		sent = append(sent, cliEvent{Timestamp: base + int64((i*7)%30)*1000,
			Message: fmt.Sprintf("2 123456789012 eni-1 10.0.0.%d 10.0.1.1 4000%d 443 6 1 40 1 2 %s OK", i, i%10, action)})
	}
	var put struct {
		NextSequenceToken     string
		RejectedLogEventsInfo map[string]int
	}
	run(&put, "logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all", "--log-events", writeEvents(t, sent))
	if put.NextSequenceToken == "" || put.RejectedLogEventsInfo != nil {
		t.Errorf("put-log-events = %+v", put)
	}
	// Too old (15 days), then too new (3 hours ahead): reported, not kept.
	old := []cliEvent{
		{Timestamp: time.Now().Add(-15 * 24 * time.Hour).UnixMilli(), Message: "too old"},
		{Timestamp: time.Now().Add(-15*24*time.Hour + time.Hour).UnixMilli(), Message: "too old too"},
	}
	run(&put, "logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "eni-2-all", "--log-events", writeEvents(t, old))
	if put.RejectedLogEventsInfo["tooOldLogEventEndIndex"] != 2 {
		t.Errorf("put-log-events of old events = %+v", put)
	}
	run(&put, "logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "eni-2-all", "--log-events",
		writeEvents(t, []cliEvent{{Timestamp: base, Message: "kept"}, {Timestamp: time.Now().Add(3 * time.Hour).UnixMilli(), Message: "too new"}}))
	if v, ok := put.RejectedLogEventsInfo["tooNewLogEventStartIndex"]; !ok || v != 1 {
		t.Errorf("put-log-events of a future event = %+v", put)
	}
	fails(t, cli, "ResourceNotFoundException", "logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "eni-9-all", "--log-events", writeEvents(t, sent[:1]))
	if msg := fails(t, cli, "InvalidParameterException", "logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all", "--log-events",
		writeEvents(t, []cliEvent{{Timestamp: base, Message: "a"}, {Timestamp: base + 25*3600*1000, Message: "b"}})); !strings.Contains(msg, "24 hours") {
		t.Errorf("a batch over 25 hours: %s", msg)
	}

	// get-log-events: in time order (stable for equal times).
	want := slices.Clone(sent)
	slices.SortStableFunc(want, func(a, b cliEvent) int { return int(a.Timestamp - b.Timestamp) })
	var got struct {
		Events            []cliEvent
		NextForwardToken  string
		NextBackwardToken string
	}
	run(&got, "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all", "--start-from-head")
	if len(got.Events) != len(want) {
		t.Fatalf("get-log-events: %d events, want %d", len(got.Events), len(want))
	}
	for i := range want {
		if got.Events[i].Message != want[i].Message || got.Events[i].Timestamp != want[i].Timestamp || got.Events[i].IngestionTime == 0 {
			t.Errorf("event %d = %+v, want %+v", i, got.Events[i], want[i])
		}
	}
	// The forward token at the end comes back unchanged.
	fwd := got.NextForwardToken
	run(&got, "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all", "--next-token", fwd)
	if len(got.Events) != 0 || got.NextForwardToken != fwd {
		t.Errorf("get-log-events at the end: %d events, token %q (sent %q)", len(got.Events), got.NextForwardToken, fwd)
	}
	// The newest 5, then the 5 before them with the backward token.
	run(&got, "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all", "--limit", "5")
	if len(got.Events) != 5 || got.Events[4].Message != want[29].Message || got.Events[0].Message != want[25].Message {
		t.Errorf("get-log-events --limit 5 = %+v", got.Events)
	}
	run(&got, "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all", "--limit", "5", "--next-token", got.NextBackwardToken)
	if len(got.Events) != 5 || got.Events[0].Message != want[20].Message {
		t.Errorf("get-log-events backward = %+v", got.Events)
	}
	fails(t, cli, "InvalidParameterException", "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all", "--next-token", "f/garbage")
	fails(t, cli, "ResourceNotFoundException", "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "eni-9-all")

	// filter-log-events, paginated by the CLI two events a page.
	var filtered struct{ Events []cliEvent }
	run(&filtered, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "REJECT", "--page-size", "2")
	var rejects []string
	for _, e := range want {
		if strings.Contains(e.Message, "REJECT") {
			rejects = append(rejects, e.Message)
		}
	}
	var gotRejects []string
	for _, e := range filtered.Events {
		gotRejects = append(gotRejects, e.Message)
		if e.LogStreamName != "eni-1-all" || e.EventID == "" {
			t.Errorf("filtered event %+v", e)
		}
	}
	if !slices.Equal(gotRejects, rejects) {
		t.Errorf("filter-log-events REJECT = %q, want %q", gotRejects, rejects)
	}
	run(&filtered, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern",
		"[version, account, eni, source, destination, srcport, destport=443, protocol, packets, bytes, windowstart, windowend, action=REJECT, flowlogstatus]",
		"--log-stream-name-prefix", "eni-1", "--start-time", fmt.Sprint(base), "--end-time", fmt.Sprint(base+15_000))
	for _, e := range filtered.Events {
		if !strings.Contains(e.Message, "REJECT") || e.Timestamp > base+15_000 {
			t.Errorf("space-delimited filter returned %+v", e)
		}
	}
	wantN := 0
	for _, e := range want {
		if strings.Contains(e.Message, "REJECT") && e.Timestamp <= base+15_000 {
			wantN++
		}
	}
	if len(filtered.Events) != wantN || wantN == 0 {
		t.Errorf("space-delimited filter: %d events, want %d", len(filtered.Events), wantN)
	}
	run(&filtered, "logs", "filter-log-events", "--log-group-name", group, "--log-stream-names", "eni-2-all")
	if len(filtered.Events) != 1 || filtered.Events[0].Message != "kept" {
		t.Errorf("filter-log-events --log-stream-names eni-2-all = %+v", filtered.Events)
	}
	if msg := fails(t, cli, "InvalidParameterException", "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", `{ $.a = 1 }`); !strings.Contains(msg, "JSON filter patterns") {
		t.Errorf("JSON pattern: %s", msg)
	}

	// describe-log-streams, by name and by last event time.
	var streams struct {
		LogStreams []struct {
			LogStreamName       string
			FirstEventTimestamp int64
			LastEventTimestamp  int64
			LastIngestionTime   int64
			UploadSequenceToken string
			Arn                 string
		}
	}
	run(&streams, "logs", "describe-log-streams", "--log-group-name", group)
	if len(streams.LogStreams) != 2 || streams.LogStreams[0].LogStreamName != "eni-1-all" || streams.LogStreams[0].FirstEventTimestamp != want[0].Timestamp ||
		streams.LogStreams[0].LastEventTimestamp != want[29].Timestamp || streams.LogStreams[0].Arn != "arn:aws:logs:us-east-1:123456789012:log-group:"+group+":log-stream:eni-1-all" {
		t.Errorf("describe-log-streams = %+v", streams)
	}
	run(&streams, "logs", "describe-log-streams", "--log-group-name", group, "--order-by", "LastEventTime", "--descending", "--page-size", "1")
	if len(streams.LogStreams) != 2 || streams.LogStreams[0].LogStreamName != "eni-1-all" {
		t.Errorf("describe-log-streams by last event time = %+v", streams)
	}
	fails(t, cli, "InvalidParameterException", "logs", "describe-log-streams", "--log-group-name", group, "--order-by", "LastEventTime", "--log-stream-name-prefix", "eni")

	// storedBytes counts the messages kept.
	var stored int64
	for _, e := range sent {
		stored += int64(len(e.Message))
	}
	stored += int64(len("kept"))
	run(&groups, "logs", "describe-log-groups")
	if len(groups.LogGroups) != 1 || groups.LogGroups[0].StoredBytes != stored {
		t.Errorf("storedBytes = %+v, want %d", groups.LogGroups, stored)
	}

	// Deletion.
	run(nil, "logs", "delete-retention-policy", "--log-group-name", group)
	run(nil, "logs", "delete-log-stream", "--log-group-name", group, "--log-stream-name", "eni-2-all")
	run(&groups, "logs", "describe-log-groups", "--log-group-name-prefix", group)
	if len(groups.LogGroups) != 1 || groups.LogGroups[0].RetentionInDays != 0 || groups.LogGroups[0].StoredBytes != stored-4 {
		t.Errorf("after delete-retention-policy and delete-log-stream: %+v", groups.LogGroups)
	}
	run(nil, "logs", "delete-log-group", "--log-group-name", group)
	fails(t, cli, "ResourceNotFoundException", "logs", "delete-log-group", "--log-group-name", group)
	// A new group of the same name starts empty.
	if err := svc.CreateGroup(ctx, group, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := svc.CreateStream(ctx, group, "eni-1-all"); err != nil {
		t.Fatal(err)
	}
	run(&got, "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "eni-1-all")
	if len(got.Events) != 0 {
		t.Errorf("a re-created group shows %d old events", len(got.Events))
	}
}

// TestAWSCLIGroups: tags both ways and pagination of groups, with the
// real AWS CLI.
func TestAWSCLIGroups(t *testing.T) {
	t.Parallel()
	svc, srv := start(t, logs.Options{})
	ctx := context.Background()
	cli := srv.NewCLI()
	const group = "/flowlog/vpc-0a1b2c3d"
	run := func(v any, args ...string) {
		t.Helper()
		if v != nil {
			reflect.ValueOf(v).Elem().SetZero()
		}
		cli.JSON(t, v, args...)
	}
	run(nil, "logs", "create-log-group", "--log-group-name", group, "--tags", "team=net,env=test")
	var groups struct {
		LogGroups []struct{ LogGroupName string }
	}
	// Tags, both APIs.
	var tags struct{ Tags map[string]string }
	run(nil, "logs", "tag-resource", "--resource-arn", "arn:aws:logs:us-east-1:123456789012:log-group:"+group, "--tags", "owner=me")
	run(&tags, "logs", "list-tags-log-group", "--log-group-name", group)
	if len(tags.Tags) != 3 || tags.Tags["team"] != "net" || tags.Tags["owner"] != "me" {
		t.Errorf("tags = %v", tags.Tags)
	}
	run(nil, "logs", "untag-resource", "--resource-arn", "arn:aws:logs:us-east-1:123456789012:log-group:"+group, "--tag-keys", "env")
	run(&tags, "logs", "list-tags-for-resource", "--resource-arn", "arn:aws:logs:us-east-1:123456789012:log-group:"+group+":*")
	if len(tags.Tags) != 2 || tags.Tags["env"] != "" {
		t.Errorf("tags after untag = %v", tags.Tags)
	}

	// Pagination: 7 groups, 2 a page.
	for i := range 6 {
		if err := svc.CreateGroup(ctx, fmt.Sprintf("/other/g%d", i), "", nil); err != nil {
			t.Fatal(err)
		}
	}
	run(&groups, "logs", "describe-log-groups", "--page-size", "2")
	if len(groups.LogGroups) != 7 {
		t.Errorf("describe-log-groups --page-size 2: %d groups, want 7", len(groups.LogGroups))
	}
	run(&groups, "logs", "describe-log-groups", "--log-group-name-pattern", "G3")
	if len(groups.LogGroups) != 1 || groups.LogGroups[0].LogGroupName != "/other/g3" {
		t.Errorf("describe-log-groups --log-group-name-pattern G3 = %+v", groups.LogGroups)
	}

}
