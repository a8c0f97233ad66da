package analyze

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
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
