package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/logs"
)

func TestIsCloudWatch(t *testing.T) {
	for arg, want := range map[string]bool{
		"cloudwatch://vpc-flow-logs":                                   true,
		"cloudwatch:///aws/vpc/flows/eni-0a":                           true,
		"arn:aws:logs:eu-west-1:123456789012:log-group:flows":          true,
		"arn:aws-cn:logs:cn-north-1:123456789012:log-group:/a/b:*":     true,
		"arn:aws:logs:eu-west-1:123456789012:destination:x":            false,
		"arn:aws:s3:::bucket":                                          false,
		"s3://bucket/cloudwatch://x":                                   false,
		"./cloudwatch:/x":                                              false,
		"arn:aws:firehose:eu-west-1:123456789012:deliverystream/flows": false,
	} {
		if got := IsCloudWatch(arg); got != want {
			t.Errorf("IsCloudWatch(%q) = %v", arg, got)
		}
	}
}

func TestCloudWatchTargets(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	cw, err := NewCloudWatch(context.Background(), CloudWatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.parseTarget("cloudwatch://flows"); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("no region: %v", err)
	}
	tg, err := cw.parseTarget("arn:aws:logs:eu-west-1:123456789012:log-group:/a/b:*")
	if err != nil || tg.group != "/a/b" || tg.region != "eu-west-1" || tg.identifier != "arn:aws:logs:eu-west-1:123456789012:log-group:/a/b" {
		t.Errorf("ARN: %+v, %v", tg, err)
	}
	tg, err = cw.parseTarget("arn:aws:logs:eu-west-1:123456789012:log-group:/a/b:log-stream:eni-0a*")
	if err != nil || tg.group != "/a/b" || tg.prefix != "eni-0a" || tg.identifier != "arn:aws:logs:eu-west-1:123456789012:log-group:/a/b" {
		t.Errorf("stream ARN: %+v, %v", tg, err)
	}
	if _, err := cw.parseTarget("arn:aws:logs:eu-west-1:123456789012:log-group:bad name"); err == nil {
		t.Error("a group name with a space is accepted")
	}
	if _, err := cw.parseTarget("cloudwatch://"); err == nil {
		t.Error("cloudwatch:// without a group is accepted")
	}
	cw, err = NewCloudWatch(context.Background(), CloudWatchConfig{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if tg, err := cw.parseTarget("cloudwatch:///aws/flows"); err != nil || tg.group != "/aws/flows" || tg.region != "eu-west-1" {
		t.Errorf("cloudwatch:///aws/flows: %+v, %v", tg, err)
	}
	tr := TimeRange{Since: time.Unix(1_800_000_000, 0), Until: time.Unix(1_800_003_600, 0)}
	in := cw.filterInput(cwTarget{group: "g", prefix: "eni-"}, tr)
	if aws.ToString(in.LogGroupName) != "g" || aws.ToString(in.LogStreamNamePrefix) != "eni-" ||
		aws.ToInt64(in.StartTime) != (1_800_000_000-20*60)*1000 || aws.ToInt64(in.EndTime) != 1_800_003_600*1000+999 {
		t.Errorf("filter input: %+v", in)
	}
}

// TestCloudWatchPages reads a log group of the real CloudWatch Logs API
// whose searches stop after a moment, as AWS's do on large groups:
// pages come short or empty with a token, and every event is read once,
// in time order, a line each.
func TestCloudWatchPages(t *testing.T) {
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := logs.New(ctx, db, logs.Options{AccountID: apitest.AccountID, Region: apitest.Region, FilterScanTime: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.Start(t, api.Options{Services: []api.Service{svc}})
	client := cloudwatchlogs.New(cloudwatchlogs.Options{Region: apitest.Region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, "")})
	if _, err := client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Unix()
	var want bytes.Buffer
	for _, stream := range []string{"eni-0aaa-all", "eni-0bbb-all"} {
		if _, err := client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
	}
	// Interleaved streams: the events of both come in one time order.
	var evA, evB []types.InputLogEvent
	for i := range int64(3500) {
		ts := start + i
		line := fmt.Sprintf("2 123456789012 eni-0%s 10.0.0.1 10.0.0.2 1 2 6 1 40 %d %d ACCEPT OK", map[bool]string{true: "aaa", false: "bbb"}[i%2 == 0], ts, ts+5)
		want.WriteString(line + "\n")
		e := types.InputLogEvent{Timestamp: aws.Int64(ts * 1000), Message: aws.String(line)}
		if i%2 == 0 {
			evA = append(evA, e)
		} else {
			evB = append(evB, e)
		}
	}
	for stream, evs := range map[string][]types.InputLogEvent{"eni-0aaa-all": evA, "eni-0bbb-all": evB} {
		if _, err := client.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(stream), LogEvents: evs}); err != nil {
			t.Fatal(err)
		}
	}
	cw, err := NewCloudWatch(ctx, CloudWatchConfig{EndpointURL: srv.URL, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	cw.awsCfg.Credentials = credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, "")
	var inputs []Input
	if err := (&Lister{CloudWatch: cw}).List(ctx, "cloudwatch://g", func(in Input) error {
		inputs = append(inputs, in)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(inputs) != 1 || inputs[0].Name != "cloudwatch://g" || inputs[0].Size != -1 {
		t.Fatalf("inputs %+v", inputs)
	}
	rc, err := inputs[0].src.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes, want %d", len(got), want.Len())
	}
	if n := cw.prog.items.Load(); n != 3500 {
		t.Errorf("events counted %d", n)
	}

	// The context ending stops a read at once.
	cctx, cancel := context.WithCancel(ctx)
	var in Input
	if err := (&Lister{CloudWatch: cw}).List(cctx, "cloudwatch://g", func(i Input) error { in = i; return nil }); err != nil {
		t.Fatal(err)
	}
	rc, err = in.src.open(cctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); err != context.Canceled {
		t.Errorf("read after cancel: %v", err)
	}
	rc.Close()
}

// followLogs is a real CloudWatch Logs API (the one `flowlog serve`
// runs) with a log group, a client of it, and a follow of the group to
// start.
type followLogs struct {
	url    string
	client *cloudwatchlogs.Client
	group  string
	format *flow.Format
}

func startFollowLogs(t *testing.T, group string, opts logs.Options) *followLogs {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	opts.AccountID, opts.Region = apitest.AccountID, apitest.Region
	svc, err := logs.New(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.Start(t, api.Options{Services: []api.Service{svc}})
	l := &followLogs{url: srv.URL, group: group}
	l.client = cloudwatchlogs.New(cloudwatchlogs.Options{Region: apitest.Region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, "")})
	if _, err := l.client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"eni-0aaa-all", "eni-0bbb-all"} {
		if _, err := l.client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(s)}); err != nil {
			t.Fatal(err)
		}
	}
	l.format, err = flow.ParseHeader("${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// tcp is a v3 record line with tcp-flags: 2 packets, 120 bytes.
func tcp(eni, src, dst string, sport, dport, flags int, start int64) string {
	return fmt.Sprintf("3 123456789012 %s %s %s %d %d 6 %d 2 120 %d %d ACCEPT OK", eni, src, dst, sport, dport, flags, start, start+5)
}

// put puts record lines as events of a stream, each stamped with its
// record's start, as AWS and flowlog's destination do.
func (l *followLogs) put(t *testing.T, stream string, lines ...string) {
	t.Helper()
	var evs []types.InputLogEvent
	for _, line := range lines {
		f := strings.Fields(line)
		start, err := strconv.ParseInt(f[11], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, types.InputLogEvent{Timestamp: aws.Int64(start * 1000), Message: aws.String(line)})
	}
	out, err := l.client.PutLogEvents(context.Background(), &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(l.group), LogStreamName: aws.String(stream), LogEvents: evs})
	if err != nil {
		t.Fatal(err)
	}
	if out.RejectedLogEventsInfo != nil {
		t.Fatalf("events rejected: %+v", out.RejectedLogEventsInfo)
	}
}

// startFollow follows the group at endpoint (the API, or a proxy in
// front of it) with connections --follow --poll 20ms -o json, plus a
// directory when dir is not empty.
func (l *followLogs) startFollow(t *testing.T, endpoint string, rc ReadConfig, dir string) *follow {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", apitest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", apitest.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cw, err := NewCloudWatch(context.Background(), CloudWatchConfig{EndpointURL: endpoint, Region: apitest.Region, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	// Throttling is retried as always, without the seconds of backoff.
	cw.clients[apitest.Region] = cloudwatchlogs.NewFromConfig(cw.awsCfg, func(o *cloudwatchlogs.Options) {
		o.Region = apitest.Region
		o.BaseEndpoint = aws.String(endpoint)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.RateLimiter = ratelimit.None
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})
	if rc.Format == nil {
		rc.Format = l.format
	}
	args := []string{"cloudwatch://" + l.group}
	if dir != "" {
		args = append(args, dir)
	}
	f := runFollow(t, &Lister{CloudWatch: cw, Range: rc.Range}, args, rc)
	f.cw = cw
	return f
}

// polls waits for n polls of the follow from now.
func (f *follow) polls(t *testing.T, n int) {
	t.Helper()
	for len(f.batches) > 0 {
		<-f.batches
	}
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-f.batches:
		case err := <-f.done:
			t.Fatalf("the follow ended: %v", err)
		case <-timeout:
			t.Fatal("no poll within 10 s")
		}
	}
}

// conversations returns the conversations printed so far.
func (f *follow) conversations(t *testing.T) []map[string]any {
	t.Helper()
	var convs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.out.String()), "\n") {
		if l == "" {
			continue
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		convs = append(convs, c)
	}
	return convs
}

// waitFor polls until n conversations are printed, and returns them.
func (f *follow) waitFor(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		convs := f.conversations(t)
		if len(convs) >= n {
			return convs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d conversations printed within 10 s, want %d:\n%s", len(convs), n, f.out.String())
		}
		select {
		case err := <-f.done:
			t.Fatalf("the follow ended: %v\n%s", err, f.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkConv checks a printed conversation: its client, verdict and packets
// each way (a record read twice doubles them).
func checkConv(t *testing.T, c map[string]any, client, verdict string, c2s, s2c float64) {
	t.Helper()
	packets := func(dir string) any {
		m, _ := c[dir].(map[string]any)
		return m["packets"]
	}
	if c["client"] != client || c["verdict"] != verdict || packets("client_to_server") != c2s || packets("server_to_client") != s2c {
		t.Errorf("conversation %v; want %s %q with %v and %v packets", c, client, verdict, c2s, s2c)
	}
}

// TestCloudWatchFollow follows a log group of the real CloudWatch Logs
// API while events are put into it: records put after the follow began
// are read once each, a record put late with an older timestamp than
// those read is not lost, and cancelling prints what is open at once.
func TestCloudWatchFollow(t *testing.T) {
	l := startFollowLogs(t, "follow", logs.Options{})
	t0 := time.Now().Add(-15 * time.Minute).Unix()
	// Before: A's handshake, and an old conversation --since leaves out.
	l.put(t, "eni-0aaa-all",
		tcp("eni-0aaa", "10.9.9.9", "10.0.0.5", 40000, 22, 2, t0-3600),
		tcp("eni-0aaa", "10.0.0.5", "10.9.9.9", 22, 40000, 4, t0-3600),
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 18, t0))
	f := l.startFollow(t, l.url, ReadConfig{Range: TimeRange{Since: time.Unix(t0-60, 0)}}, "")
	f.polls(t, 3)
	if out := f.out.String(); out != "" {
		t.Fatalf("after the handshake: %q", out)
	}
	// A closes.
	l.put(t, "eni-0aaa-all",
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 17, t0+300),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 17, t0+300))
	convs := f.waitFor(t, 1)
	checkConv(t, convs[0], "10.0.0.9:50001", "closed by FIN by both", 4, 4)
	// Another interface publishes its window late: B's SYN and the RST
	// answering it start 200 s before A's FIN, the newest event read.
	l.put(t, "eni-0bbb-all",
		tcp("eni-0bbb", "10.0.1.7", "10.0.0.6", 50002, 8080, 2, t0+100),
		tcp("eni-0bbb", "10.0.0.6", "10.0.1.7", 8080, 50002, 20, t0+100))
	convs = f.waitFor(t, 2)
	checkConv(t, convs[1], "10.0.1.7:50002", "answered by RST", 2, 2)
	// C's SYN, unanswered; then many polls re-read the same events.
	l.put(t, "eni-0aaa-all", tcp("eni-0aaa", "10.0.0.9", "192.0.2.1", 50003, 443, 2, t0+400))
	f.polls(t, 30)
	if convs := f.conversations(t); len(convs) != 2 {
		t.Fatalf("printed again:\n%s", f.out.String())
	}
	if n := f.cw.prog.items.Load(); n != 7 {
		t.Errorf("%d events read, want the 7 in --since once each", n)
	}
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	convs = f.conversations(t)
	if len(convs) != 3 {
		t.Fatalf("after cancel:\n%s", f.out.String())
	}
	checkConv(t, convs[2], "10.0.0.9:50003", "no answer to SYN", 2, 0)
	t.Logf("the follow ended %v after its context", f.took)
}

// TestCloudWatchFollowSweeps follows a group with many events in the
// lookback (as a busy group, forced): polls between sweeps search the
// last moments only, so an event stamped before them is found by the
// next sweep of the whole lookback, once; the ids kept stay within the
// lookback.
func TestCloudWatchFollowSweeps(t *testing.T) {
	l := startFollowLogs(t, "sweeps", logs.Options{})
	t0 := time.Now().Add(-40 * time.Minute).Unix()
	l.put(t, "eni-0aaa-all",
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 18, t0),
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 17, t0+1500),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 17, t0+1500))
	f := l.startFollow(t, l.url, ReadConfig{}, "")
	checkConv(t, f.waitFor(t, 1)[0], "10.0.0.9:50001", "closed by FIN by both", 4, 4)
	fl := f.cw.follows["cloudwatch://sweeps"]
	fl.mu.Lock()
	// The handshake is more than the lookback older than the FIN: its
	// ids are forgotten.
	if n := fl.ids.len(); n != 2 {
		t.Errorf("%d ids kept, want the 2 of the last 20 minutes", n)
	}
	fl.small, fl.recent, fl.sweepEvery = 0, 10*time.Second, time.Hour
	fl.mu.Unlock()
	f.polls(t, 3) // a sweep that began before is over
	// B's records start 300 s before the newest event read.
	l.put(t, "eni-0bbb-all",
		tcp("eni-0bbb", "10.0.1.7", "10.0.0.6", 50002, 8080, 2, t0+1200),
		tcp("eni-0bbb", "10.0.0.6", "10.0.1.7", 8080, 50002, 20, t0+1200))
	f.polls(t, 10)
	if n := len(f.conversations(t)); n != 1 {
		t.Fatalf("a poll between sweeps searched further back than 10 s:\n%s", f.out.String())
	}
	fl.mu.Lock()
	fl.sweepEvery = 0
	fl.mu.Unlock()
	checkConv(t, f.waitFor(t, 2)[1], "10.0.1.7:50002", "answered by RST", 2, 2)
	f.polls(t, 10)
	if n := len(f.conversations(t)); n != 2 {
		t.Fatalf("printed again:\n%s", f.out.String())
	}
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
}

// TestCloudWatchFollowWithDirectory follows a log group and a directory
// at once, with --where: conversations from both as they end.
func TestCloudWatchFollowWithDirectory(t *testing.T) {
	l := startFollowLogs(t, "both", logs.Options{})
	dir := t.TempDir()
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	where, err := ParseExpr("dstport = 443 or srcport = 443")
	if err != nil {
		t.Fatal(err)
	}
	f := l.startFollow(t, l.url, ReadConfig{Where: where}, dir)
	f.polls(t, 2)
	l.put(t, "eni-0aaa-all",
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 20, t0),
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50009, 80, 2, t0),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 80, 50009, 20, t0))
	checkConv(t, f.waitFor(t, 1)[0], "10.0.0.9:50001", "answered by RST", 2, 2)
	publish(t, dir, l.format,
		tcp("eni-0ccc", "10.0.2.9", "10.0.2.5", 50004, 443, 2, t0+10),
		tcp("eni-0ccc", "10.0.2.5", "10.0.2.9", 443, 50004, 20, t0+10),
		tcp("eni-0ccc", "10.0.2.9", "10.0.2.5", 50005, 80, 2, t0+10),
		tcp("eni-0ccc", "10.0.2.5", "10.0.2.9", 80, 50005, 20, t0+10))
	checkConv(t, f.waitFor(t, 2)[1], "10.0.2.9:50004", "answered by RST", 2, 2)
	f.polls(t, 10)
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	if n := len(f.conversations(t)); n != 2 {
		t.Fatalf("--where: port 80 printed, or a conversation twice:\n%s", f.out.String())
	}
}

// TestCloudWatchFollowGroupDeleted deletes the followed group: the follow
// prints the conversations still open and ends with an error naming it.
func TestCloudWatchFollowGroupDeleted(t *testing.T) {
	l := startFollowLogs(t, "deleted", logs.Options{})
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	l.put(t, "eni-0aaa-all", tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0))
	f := l.startFollow(t, l.url, ReadConfig{}, "")
	f.polls(t, 2)
	if _, err := l.client.DeleteLogGroup(context.Background(), &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("deleted")}); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the follow went on after the group was deleted")
	}
	if err == nil || err.Error() != "log group deleted in "+apitest.Region+" no longer exists (deleted while followed)" {
		t.Fatalf("error %v", err)
	}
	convs := f.conversations(t)
	if len(convs) != 1 {
		t.Fatalf("the open conversation is not printed:\n%s", f.out.String())
	}
	checkConv(t, convs[0], "10.0.0.9:50001", "no answer to SYN", 2, 0)
}

// faultyLogs is a proxy in front of the API that answers FilterLogEvents
// with an AWS error while code is set, counting the calls it refused.
type faultyLogs struct {
	url      string
	code     atomic.Value // string; "" passes
	onlyNext atomic.Bool  // refuse only the calls for a next page
	refused  atomic.Int32
}

func (l *followLogs) faulty(t *testing.T) *faultyLogs {
	target, err := url.Parse(l.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	p := &faultyLogs{}
	p.code.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := p.code.Load().(string)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if code != "" && r.Header.Get("X-Amz-Target") == "Logs_20140328.FilterLogEvents" && (!p.onlyNext.Load() || bytes.Contains(body, []byte(`"nextToken"`))) {
			p.refused.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":%q,"message":"refused by the test"}`, code)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// TestCloudWatchFollowFaults: throttling mid-follow delays the events
// (none lost, none twice) and ends the follow only when it lasts; an
// access denied mid-follow ends it, naming the group.
func TestCloudWatchFollowFaults(t *testing.T) {
	l := startFollowLogs(t, "faults", logs.Options{})
	p := l.faulty(t)
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	l.put(t, "eni-0aaa-all",
		tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 2, t0),
		tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 18, t0))

	t.Run("throttled for a while", func(t *testing.T) {
		f := l.startFollow(t, p.url, ReadConfig{}, "")
		f.polls(t, 2)
		p.code.Store("ThrottlingException")
		l.put(t, "eni-0aaa-all",
			tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, 17, t0+60),
			tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, 17, t0+60))
		for p.refused.Load() < 15 { // 3 polls, each tried 5 times
			f.polls(t, 1)
		}
		if out := f.out.String(); out != "" {
			t.Fatalf("printed while throttled: %s", out)
		}
		p.code.Store("")
		checkConv(t, f.waitFor(t, 1)[0], "10.0.0.9:50001", "closed by FIN by both", 4, 4)
		f.polls(t, 10)
		f.cancel()
		if err := <-f.done; err != nil || len(f.conversations(t)) != 1 {
			t.Fatalf("err %v, output\n%s", err, f.out.String())
		}
	})

	t.Run("throttled on and on", func(t *testing.T) {
		p.refused.Store(0)
		f := l.startFollow(t, p.url, ReadConfig{}, "")
		f.polls(t, 2)
		p.code.Store("ThrottlingException")
		defer p.code.Store("")
		var err error
		select {
		case err = <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the follow goes on throttled")
		}
		if err == nil || !strings.Contains(err.Error(), "read log group faults in "+apitest.Region+": ThrottlingException: refused by the test") ||
			!strings.Contains(err.Error(), "throttled at 10 polls in a row") {
			t.Fatalf("error %v", err)
		}
		if n := p.refused.Load(); n != 50 {
			t.Errorf("%d calls refused, want 10 polls of 5 attempts", n)
		}
		// The open conversation was printed before the error.
		checkConv(t, f.conversations(t)[0], "10.0.0.9:50001", "closed by FIN by both", 4, 4)
		t.Logf("%v", err)
	})

	t.Run("access denied", func(t *testing.T) {
		f := l.startFollow(t, p.url, ReadConfig{}, "")
		f.polls(t, 2)
		p.code.Store("AccessDeniedException")
		defer p.code.Store("")
		var err error
		select {
		case err = <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the follow goes on denied")
		}
		if err == nil || err.Error() != "read log group faults in "+apitest.Region+": AccessDeniedException: refused by the test (reading a log group needs logs:FilterLogEvents on it)" {
			t.Fatalf("error %v", err)
		}
	})
}

// TestCloudWatchFollowPageThrottled follows a group whose searches stop
// after a moment (pages short, with a token, as AWS's on large groups)
// while the calls for next pages are throttled: a poll cut short leaves
// the rest to the next, and every record is read once, none reported as
// an input that failed.
func TestCloudWatchFollowPageThrottled(t *testing.T) {
	l := startFollowLogs(t, "pages", logs.Options{FilterScanTime: time.Nanosecond})
	p := l.faulty(t)
	t0 := time.Now().Add(-10 * time.Minute).Unix()
	f := l.startFollow(t, p.url, ReadConfig{}, "")
	f.polls(t, 2)
	p.onlyNext.Store(true)
	p.code.Store("ThrottlingException")
	// The server searches 1,000 events at a time: more make a next page.
	const n = 600
	var lines []string
	for i := range n {
		lines = append(lines,
			tcp("eni-0aaa", "10.0.0.9", "10.0.0.5", 50000+i, 443, 2, t0+int64(i)),
			tcp("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50000+i, 20, t0+int64(i)))
	}
	l.put(t, "eni-0aaa-all", lines...)
	deadline := time.Now().Add(10 * time.Second)
	for p.refused.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls for a next page within 10 s", p.refused.Load())
		}
		f.polls(t, 1)
	}
	if len(f.conversations(t)) == 0 {
		t.Fatal("nothing of the first pages printed")
	}
	p.code.Store("")
	convs := f.waitFor(t, n)
	for i, c := range convs {
		checkConv(t, c, "10.0.0.9:"+strconv.Itoa(50000+i), "answered by RST", 2, 2)
	}
	f.polls(t, 5)
	f.cancel()
	if err := <-f.done; err != nil || len(f.conversations(t)) != n || len(f.st.Failed) != 0 {
		t.Fatalf("err %v, failed %v, %d conversations", err, f.st.Failed, len(f.conversations(t)))
	}
	if got := f.cw.prog.items.Load(); got != 2*n {
		t.Errorf("%d events read, want %d", got, 2*n)
	}
}

func TestEventIDs(t *testing.T) {
	var s eventIDs
	s.init(maphash.MakeSeed())
	for i := range int64(100) {
		if !s.add("e"+strconv.FormatInt(i, 10), i*500) || s.add("e"+strconv.FormatInt(i, 10), i*500) {
			t.Fatalf("event %d: new twice, or not new", i)
		}
	}
	s.forget(10_500) // seconds 0…9 go: events 0…19
	if s.len() != 80 || s.floor != 10_000 || !s.add("e19", 9_500) || s.add("e20", 10_000) {
		t.Fatalf("after forget: %d ids, floor %d", s.len(), s.floor)
	}
	s.shrink(30) // whole seconds go, the oldest first: 15 seconds of 2
	if s.len() != 30 || s.floor != 35_000 || s.add("e70", 35_000) || !s.add("e69", 34_500) {
		t.Fatalf("after shrink: %d ids, floor %d", s.len(), s.floor)
	}
	s.forget(-5000) // before the floor: nothing
	if s.floor != 35_000 {
		t.Fatalf("floor went back to %d", s.floor)
	}
}
