package main

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/sink/cloudwatch/logstest"
)

// awsEnv points the AWS SDK at the test server with its credentials, and
// away from anything configured on the machine.
func awsEnv(t *testing.T, srv *logstest.Server) {
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", srv.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", logstest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", logstest.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestReadToCloudWatch: `flowlog read --dest arn:aws:logs:…` creates the
// log group and a stream "<interface-id>-all", whose events are the
// record lines, timestamped by their start, in time order. The server
// checks the wire requests (JSON 1.1, SigV4 signature, limits).
func TestReadToCloudWatch(t *testing.T) {
	srv := logstest.New(t)
	awsEnv(t, srv)
	capture := filepath.Join(t.TempDir(), "recent.pcap")
	// CloudWatch Logs keeps events of the last 14 days only.
	writeCapture(t, capture, time.Now().Add(-2*time.Hour).Truncate(time.Minute), 30, 20)
	want := recordLines(t, "--interval", "60", capture)

	arn := "arn:aws:logs:" + logstest.Region + ":123456789012:log-group:/flowlog/test"
	code, _, stderr := flowlog(t, nil, "read", "--interval", "60", "--dest", arn, capture)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	streams := srv.Streams("/flowlog/test")
	if len(streams) != 1 || !strings.HasPrefix(streams[0], "eni-") || !strings.HasSuffix(streams[0], "-all") {
		t.Fatalf("streams %v, want one <interface-id>-all", streams)
	}
	events := srv.Events("/flowlog/test", streams[0])
	var got []string
	for i, e := range events {
		f := strings.Fields(e.Message)
		start, _ := strconv.ParseInt(f[10], 10, 64)
		if e.Timestamp != start*1000 || f[2]+"-all" != streams[0] {
			t.Fatalf("event %d: %+v: want the record's start in ms, in its interface's stream", i, e)
		}
		if i > 0 && e.Timestamp < events[i-1].Timestamp {
			t.Fatalf("event %d out of time order", i)
		}
		got = append(got, e.Message)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("%d events, want the %d record lines once each", len(got), len(want))
	}
}

// TestReadToCloudWatchAccessDenied: a permission error stops the read with
// a message that names the log group and says what is missing.
func TestReadToCloudWatchAccessDenied(t *testing.T) {
	srv := logstest.New(t)
	awsEnv(t, srv)
	t.Setenv("AWS_REGION", logstest.Region)
	srv.SetFaults(func(f *logstest.Faults) { f.Deny["PutLogEvents"] = true })
	capture := filepath.Join(t.TempDir(), "recent.pcap")
	writeCapture(t, capture, time.Now().Add(-time.Hour).Truncate(time.Minute), 2, 3)
	code, _, stderr := flowlog(t, nil, "read", "--dest", "cloudwatch://flows", capture)
	if code != exitError {
		t.Fatalf("exit %d, want %d: %s", code, exitError, stderr)
	}
	for _, want := range []string{"access denied", "log group flows", "logs:PutLogEvents"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}
}

// TestReadToCloudWatchNoRegion: without an ARN or AWS_REGION, the error
// says how to give the region.
func TestReadToCloudWatchNoRegion(t *testing.T) {
	srv := logstest.New(t)
	awsEnv(t, srv)
	code, _, stderr := flowlog(t, nil, "read", "--dest", "cloudwatch://flows", samplePath)
	if code != exitUsage || !strings.Contains(stderr, "AWS_REGION") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestReadToCloudWatchTooOld: events CloudWatch Logs refuses (records
// older than 14 days, like the bundled 2015 capture's) are an error, not a
// silent success.
func TestReadToCloudWatchTooOld(t *testing.T) {
	srv := logstest.New(t)
	awsEnv(t, srv)
	t.Setenv("AWS_REGION", logstest.Region)
	code, _, stderr := flowlog(t, nil, "read", "--dest", "cloudwatch://flows", samplePath)
	if code != exitError || !strings.Contains(stderr, "refused") {
		t.Fatalf("exit %d, stderr %q; want an error about refused events", code, stderr)
	}
}
