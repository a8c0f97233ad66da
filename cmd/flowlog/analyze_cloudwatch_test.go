package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// cwServer is a `flowlog serve` with its first administrator's key.
type cwServer struct {
	url, key, secret string
	client           *cloudwatchlogs.Client
}

// startLogsServer starts `flowlog serve --init` and returns its URL, key
// and an SDK client of its CloudWatch Logs API.
func startLogsServer(t *testing.T) *cwServer {
	t.Helper()
	dir := t.TempDir()
	srv := startServe(t, "--config", writeServerConfig(t, dir), "--init")
	s := &cwServer{url: srv.url}
	for line := range srv.stdout {
		if v, ok := strings.CutPrefix(line, "aws_access_key_id = "); ok {
			s.key = v
		}
		if v, ok := strings.CutPrefix(line, "aws_secret_access_key = "); ok {
			s.secret = v
			break
		}
	}
	if s.key == "" || s.secret == "" {
		t.Fatal("serve --init printed no key")
	}
	s.client = cloudwatchlogs.New(cloudwatchlogs.Options{Region: apitest.Region, BaseEndpoint: aws.String(s.url),
		Credentials: credentials.NewStaticCredentialsProvider(s.key, s.secret, "")})
	return s
}

// analyzeEnv gives the in-process flowlog the key and nothing configured
// on the machine.
func analyzeEnv(t *testing.T, key, secret string) {
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// putRecords writes record lines (default format) to a stream, each
// event timestamped by its record's start, in batches within
// PutLogEvents' limits.
func (s *cwServer) putRecords(t testing.TB, group, stream string, lines []string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}); err != nil {
		t.Fatal(err)
	}
	for len(lines) > 0 {
		n := min(len(lines), 5000)
		events := make([]types.InputLogEvent, n)
		for i, l := range lines[:n] {
			start, err := strconv.ParseInt(strings.Fields(l)[10], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			events[i] = types.InputLogEvent{Timestamp: aws.Int64(start * 1000), Message: aws.String(l)}
		}
		out, err := s.client.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: events})
		if err != nil {
			t.Fatal(err)
		}
		if out.RejectedLogEventsInfo != nil {
			t.Fatalf("events rejected: %+v", out.RejectedLogEventsInfo)
		}
		lines = lines[n:]
	}
}

// cwRecords returns n default-format record lines of an interface from
// src to 10.0.9.9:443, bytes each, starting at start, ten a second.
func cwRecords(n int, eni, src string, bytes int, start time.Time, action string) []string {
	lines := make([]string, n)
	for i := range lines {
		s := start.Unix() + int64(i/10)
		lines[i] = fmt.Sprintf("2 123456789012 %s %s 10.0.9.9 %d 443 6 1 %d %d %d %s OK", eni, src, 40000+i%20000, bytes, s, s+50, action)
	}
	return lines
}

func textBytes(lines []string) int64 {
	var n int64
	for _, l := range lines {
		n += int64(len(l)) + 1
	}
	return n
}

type cwSummary struct {
	Inputs     int   `json:"inputs"`
	BytesRead  int64 `json:"bytes_read"`
	Records    int64 `json:"records"`
	Rejected   int64 `json:"rejected_records"`
	Bytes      int64 `json:"bytes"`
	Interfaces []struct {
		Interface string `json:"interface"`
		Records   int64  `json:"records"`
	} `json:"interfaces"`
}

// TestAnalyzeCloudWatch reads a log group of a real `flowlog serve`, its
// events put with the AWS SDK, with every report: records counted once
// each, top talkers, --since pruned by the server (fewer bytes read), a
// stream prefix, the ARN form, and the errors of a missing group and of
// an unknown key.
func TestAnalyzeCloudWatch(t *testing.T) {
	s := startLogsServer(t)
	analyzeEnv(t, s.key, s.secret)
	const group = "/flowlog/analyze-test"
	if _, err := s.client.CreateLogGroup(context.Background(), &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	old := cwRecords(100, "eni-0aaa", "10.0.0.9", 1000, now.Add(-3*time.Hour), "ACCEPT")
	recentA := cwRecords(12000, "eni-0aaa", "10.0.0.1", 5000, now.Add(-50*time.Minute), "ACCEPT")
	recentB := cwRecords(8000, "eni-0bbb", "10.0.0.2", 3000, now.Add(-50*time.Minute), "ACCEPT")
	rejected := cwRecords(1, "eni-0bbb", "198.51.100.7", 40, now.Add(-10*time.Minute), "REJECT")
	s.putRecords(t, group, "eni-0aaa-all", append(append([]string{}, old...), recentA...))
	s.putRecords(t, group, "eni-0bbb-all", append(append([]string{}, recentB...), rejected...))
	total := int64(len(old) + len(recentA) + len(recentB) + len(rejected))
	allBytes := textBytes(old) + textBytes(recentA) + textBytes(recentB) + textBytes(rejected)

	cw := "cloudwatch://" + group
	base := []string{"--endpoint-url", s.url, "--region", apitest.Region}
	analyze := func(args ...string) (int, string, string) {
		return flowlog(t, nil, append(append([]string{"analyze"}, args...), base...)...)
	}
	summary := func(args ...string) cwSummary {
		t.Helper()
		code, out, stderr := analyze(append([]string{"summary", "--output", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("summary %v: exit %d: %s", args, code, stderr)
		}
		var sum cwSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("summary %v: %v\n%s", args, err, out)
		}
		return sum
	}

	t.Run("summary", func(t *testing.T) {
		began := time.Now()
		code, out, stderr := analyze("summary", "--output", "json", "--progress", "always", cw)
		took := time.Since(began)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var sum cwSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Inputs != 1 || sum.Records != total || sum.BytesRead != allBytes || sum.Rejected != 1 || len(sum.Interfaces) != 2 ||
			sum.Interfaces[0].Interface != "eni-0aaa" || sum.Interfaces[0].Records != int64(len(old)+len(recentA)) {
			t.Fatalf("summary = %+v; want %d records, %d bytes read", sum, total, allBytes)
		}
		if !strings.Contains(stderr, "reading log events") {
			t.Errorf("--progress always: stderr %q", stderr)
		}
		t.Logf("read %d events (%d bytes) from the server in %v: %.0f events/s", total, allBytes, took, float64(total)/took.Seconds())
	})

	t.Run("top", func(t *testing.T) {
		code, out, stderr := analyze("top", "--by", "srcaddr", "--metric", "bytes", cw)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		rows := strings.Split(strings.TrimSpace(out), "\n")
		if len(rows) != 5 || !strings.HasPrefix(rows[0], "srcaddr\trecords\tpackets\tbytes\t") ||
			!strings.HasPrefix(rows[1], "10.0.0.1\t12000\t12000\t60000000\t") ||
			!strings.HasPrefix(rows[2], "10.0.0.2\t8000\t8000\t24000000\t") ||
			!strings.HasPrefix(rows[3], "10.0.0.9\t100\t100\t100000\t") {
			t.Fatalf("top:\n%s", out)
		}
	})

	t.Run("since", func(t *testing.T) {
		// The old events are not even fetched: the server prunes them
		// by their timestamps.
		sum := summary("--since", "1h", cw)
		want := textBytes(recentA) + textBytes(recentB) + textBytes(rejected)
		if sum.Records != total-int64(len(old)) || sum.BytesRead != want {
			t.Fatalf("--since 1h: %+v; want %d records, %d bytes read", sum, total-int64(len(old)), want)
		}
		// Records that start up to 20 minutes before --since may end
		// after it: they are fetched, then left out by their end.
		sum = summary("--since", "15m", "--until", "5m", cw)
		if sum.Records != 1 || sum.Rejected != 1 || sum.BytesRead > textBytes(rejected)+textBytes(recentA[len(recentA)-3100:]) {
			t.Fatalf("--since 15m --until 5m: %+v", sum)
		}
	})

	t.Run("stream prefix", func(t *testing.T) {
		sum := summary(cw + "/eni-0bbb")
		if sum.Records != int64(len(recentB)+1) || len(sum.Interfaces) != 1 || sum.Interfaces[0].Interface != "eni-0bbb" {
			t.Fatalf("stream prefix eni-0bbb: %+v", sum)
		}
	})

	t.Run("arn", func(t *testing.T) {
		arn := "arn:aws:logs:" + apitest.Region + ":" + apitest.AccountID + ":log-group:" + group + ":*"
		if sum := summary(arn); sum.Records != total {
			t.Fatalf("%s: %+v", arn, sum)
		}
		stream := "arn:aws:logs:" + apitest.Region + ":" + apitest.AccountID + ":log-group:" + group + ":log-stream:eni-0bbb-all"
		if sum := summary(stream); sum.Records != int64(len(recentB)+1) {
			t.Fatalf("%s: %+v", stream, sum)
		}
	})

	t.Run("rejected connections filter", func(t *testing.T) {
		code, out, stderr := analyze("rejected", cw)
		if code != 0 || !strings.Contains(out, "198.51.100.7\t10.0.9.9\t443\t") || strings.Count(strings.TrimSpace(out), "\n") != 1 {
			t.Fatalf("rejected: exit %d: %s\n%s", code, stderr, out)
		}
		code, out, stderr = analyze("filter", "--where", "action = REJECT", cw)
		if code != 0 || strings.TrimSpace(out) != "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"+rejected[0] {
			t.Fatalf("filter: exit %d: %s\n%s", code, stderr, out)
		}
		code, out, stderr = analyze("connections", "--host", "198.51.100.7", cw)
		if code != 0 || !strings.Contains(out, "rejected") {
			t.Fatalf("connections: exit %d: %s\n%s", code, stderr, out)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		// What `flowlog read --dest cloudwatch://…` delivers reads back
		// as the same records: the same reports as from a file.
		capture := filepath.Join(t.TempDir(), "recent.pcap")
		writeCapture(t, capture, time.Now().Add(-2*time.Hour).Truncate(time.Minute), 30, 20)
		t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", s.url)
		t.Setenv("AWS_REGION", apitest.Region)
		if code, _, stderr := flowlog(t, nil, "read", "--interval", "60", "--dest", "cloudwatch://round-trip", capture); code != 0 {
			t.Fatalf("read --dest cloudwatch: exit %d: %s", code, stderr)
		}
		code, out, stderr := flowlog(t, nil, "read", "--interval", "60", capture)
		if code != 0 {
			t.Fatalf("read: exit %d: %s", code, stderr)
		}
		file := filepath.Join(t.TempDir(), "records.log")
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, report := range [][]string{{"top", "--by", "srcaddr,dstport", "--limit", "0"}, {"connections", "--protocol", "all"}} {
			code, fromFile, stderr := flowlog(t, nil, append(append([]string{"analyze"}, report...), file)...)
			if code != 0 {
				t.Fatalf("%v on the file: exit %d: %s", report, code, stderr)
			}
			// No --endpoint-url: the SDK's AWS_ENDPOINT_URL_CLOUDWATCH_LOGS.
			code, fromGroup, stderr := flowlog(t, nil, append(append([]string{"analyze"}, report...), "cloudwatch://round-trip")...)
			if code != 0 {
				t.Fatalf("%v on the group: exit %d: %s", report, code, stderr)
			}
			if fromGroup != fromFile || strings.Count(fromFile, "\n") < 10 {
				t.Fatalf("%v: the group gives\n%s\nthe file\n%s", report, fromGroup, fromFile)
			}
		}
	})

	t.Run("missing group", func(t *testing.T) {
		code, out, stderr := analyze("top", "cloudwatch://no-such-group")
		if code != exitError || out != "" || !strings.Contains(stderr, "log group no-such-group does not exist in "+apitest.Region) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		t.Logf("missing group: %s", stderr)
		code, _, stderr = analyze("top", cw+"/no/such")
		if code != exitError || !strings.Contains(stderr, "log group "+group+"/no/such does not exist") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		code, _, stderr = flowlog(t, nil, "analyze", "top", "--endpoint-url", s.url, cw)
		if code != exitError || !strings.Contains(stderr, "no AWS region") {
			t.Fatalf("no region: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("bad credentials", func(t *testing.T) {
		analyzeEnv(t, "AKIAFLOWLOGUNKNOWN01", "nope")
		code, out, stderr := analyze("top", cw)
		if code != exitError || out != "" || !strings.Contains(stderr, "read log group "+group+" in "+apitest.Region+": UnrecognizedClientException") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		t.Logf("unknown key: %s", stderr)
		analyzeEnv(t, s.key, s.secret+"x")
		code, _, stderr = analyze("top", cw)
		if code != exitError || !strings.Contains(stderr, "read log group "+group) || !strings.Contains(stderr, "Signature") {
			t.Fatalf("wrong secret: exit %d, stderr %q", code, stderr)
		}
		t.Logf("wrong secret: %s", stderr)
	})
}

// TestAnalyzeCloudWatchInterrupt sends SIGINT to a real flowlog process
// whose second FilterLogEvents page never comes (a proxy in front of
// the real server holds it): it prints the top talkers of the first page
// and exits 1.
func TestAnalyzeCloudWatchInterrupt(t *testing.T) {
	s := startLogsServer(t)
	const group = "interrupt"
	if _, err := s.client.CreateLogGroup(context.Background(), &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	// More than a page: the server answers at most 10,000 events a call.
	s.putRecords(t, group, "eni-0aaa-all", cwRecords(15000, "eni-0aaa", "10.0.0.1", 100, time.Now().Add(-time.Hour), "ACCEPT"))

	target, _ := url.Parse(s.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var calls atomic.Int32
	held := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "Logs_20140328.FilterLogEvents" && calls.Add(1) > 1 {
			select {
			case <-held:
			case <-r.Context().Done():
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	defer close(held)

	cmd := exec.Command(flowlogBinary(t), "analyze", "top", "--metric", "records", "--endpoint-url", front.URL, "--region", apitest.Region, "cloudwatch://"+group)
	cmd.Env = []string{"AWS_ACCESS_KEY_ID=" + s.key, "AWS_SECRET_ACCESS_KEY=" + s.secret, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "HOME=" + t.TempDir()}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for calls.Load() < 2 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no second FilterLogEvents call: %s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the first page parsed
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("flowlog did not stop on SIGINT")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError {
		t.Fatalf("exit %v, stderr %q", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "interrupted: the results above cover only what was read before") {
		t.Errorf("stderr %q", errOut.String())
	}
	// The first page was read, and only it: the server cuts pages at
	// 10,000 events or 1 MB.
	rows := strings.Split(strings.TrimSpace(out.String()), "\n")
	var n int
	if len(rows) == 2 {
		f := strings.Split(rows[1], "\t")
		n, _ = strconv.Atoi(f[1])
		if f[0] != "10.0.0.1" {
			n = 0
		}
	}
	if n == 0 || n >= 15000 {
		t.Fatalf("partial results (the first page):\n%s", out.String())
	}
}

// BenchmarkAnalyzeCloudWatch reads a log group of BENCH_CW_EVENTS
// (default 100,000) events in two streams from the CloudWatch Logs API
// of flowlog serve (in-process, on loopback) with analyze summary, and
// reports events per second: FilterLogEvents pages, the SDK's decoding
// and the report together.
func BenchmarkAnalyzeCloudWatch(b *testing.B) {
	n := 100000
	if v := os.Getenv("BENCH_CW_EVENTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	db, err := api.OpenDB(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc, err := logs.New(ctx, db, logs.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		b.Fatal(err)
	}
	srv := apitest.Start(b, api.Options{Services: []api.Service{svc}})
	s := &cwServer{url: srv.URL, key: apitest.AccessKey, secret: apitest.SecretKey}
	s.client = cloudwatchlogs.New(cloudwatchlogs.Options{Region: apitest.Region, BaseEndpoint: aws.String(s.url),
		Credentials: credentials.NewStaticCredentialsProvider(s.key, s.secret, "")})
	if _, err := s.client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	// n/2 records a stream, ten a second: within CloudWatch Logs' 14 days.
	start := time.Now().Add(-time.Duration(n/20+60) * time.Second)
	s.putRecords(b, "bench", "eni-0aaa-all", cwRecords(n/2, "eni-0aaa", "10.0.0.1", 500, start, "ACCEPT"))
	s.putRecords(b, "bench", "eni-0bbb-all", cwRecords(n-n/2, "eni-0bbb", "10.0.0.2", 500, start, "ACCEPT"))
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", s.key}, {"AWS_SECRET_ACCESS_KEY", s.secret}, {"AWS_EC2_METADATA_DISABLED", "true"},
		{"AWS_CONFIG_FILE", "/nonexistent"}, {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}} {
		b.Setenv(kv[0], kv[1])
	}
	b.ResetTimer()
	for range b.N {
		var out, errOut bytes.Buffer
		code := run([]string{"analyze", "summary", "--output", "json", "--endpoint-url", s.url, "--region", apitest.Region, "cloudwatch://bench"}, strings.NewReader(""), &out, &errOut)
		var sum cwSummary
		if code != 0 || json.Unmarshal(out.Bytes(), &sum) != nil || sum.Records != int64(n) {
			b.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestAnalyzeFollowCloudWatch runs connections --follow on a log group of
// a real `flowlog serve` and a directory at once, as a real process,
// while events are put with the AWS SDK: conversations appear as their
// records close (also those another interface publishes late, with
// older timestamps), each once; Ctrl-C prints what is still open and
// exits 0, also while a search is awaited.
func TestAnalyzeFollowCloudWatch(t *testing.T) {
	s := startLogsServer(t)
	ctx := context.Background()
	const group = "follow"
	if _, err := s.client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-15 * time.Minute).Unix()
	rec := func(eni, src, dst string, sport, dport int, start int64) string {
		return fmt.Sprintf("2 123456789012 %s %s %s %d %d 6 2 120 %d %d ACCEPT OK", eni, src, dst, sport, dport, start, start+5)
	}
	// The default format has no tcp-flags: conversations end by --idle
	// of record time, the newest record end seen.
	s.putRecords(t, group, "eni-0aaa-all", []string{
		rec("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, t0),
		rec("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, t0)})
	dir := t.TempDir()

	// A proxy in front of the server, to hold a search at the end.
	target, _ := url.Parse(s.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var hold atomic.Bool
	var held atomic.Int32
	release := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() && r.Header.Get("X-Amz-Target") == "Logs_20140328.FilterLogEvents" {
			held.Add(1)
			_, _ = io.Copy(io.Discard, r.Body) // then a closed connection ends the context
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	defer close(release)

	p := startFollowProc(t, []string{"AWS_ACCESS_KEY_ID=" + s.key, "AWS_SECRET_ACCESS_KEY=" + s.secret, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"},
		"--poll", "50ms", "--idle", "60s", "--since", "30m", "--endpoint-url", front.URL, "--region", apitest.Region, "cloudwatch://"+group, dir)
	// B starts 120 s after A: A is quiet for more than --idle.
	s.putRecords(t, group, "eni-0bbb-all", []string{
		rec("eni-0bbb", "10.0.1.7", "10.0.0.6", 50002, 443, t0+120),
		rec("eni-0bbb", "10.0.0.6", "10.0.1.7", 443, 50002, t0+120)})
	p.next(t, "10.0.0.9:50001", 2)
	// Late: eni-0aaa's next records start before B's, the newest read,
	// quiet for more than --idle before them; then records of a directory.
	s.putRecords(t, group, "eni-0aaa-next", []string{rec("eni-0aaa", "10.0.0.9", "10.0.0.7", 50003, 443, t0+30)})
	p.next(t, "10.0.0.9:50003", 2)
	publishDir(t, dir, rec("eni-0ccc", "10.0.2.9", "10.0.2.5", 50004, 443, t0+240))
	p.next(t, "10.0.1.7:50002", 2)
	// Ctrl-C while a search is awaited: D, from the directory, was
	// read, and is printed as it stands.
	hold.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for held.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no search held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.interrupt(t, "10.0.2.9:50004", 2)
}

// publishDir writes default-format record lines as a file under dir,
// written aside and renamed, as objects are published.
func publishDir(t *testing.T, dir string, lines ...string) {
	t.Helper()
	data := "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n" + strings.Join(lines, "\n") + "\n"
	name := fmt.Sprintf("records-%d.log", time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(dir, ".tmp-"+name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, ".tmp-"+name), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
