package main

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	fhapi "github.com/flowlog/flowlog/internal/api/firehose"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink/firehose"
)

// firehoseServer serves `flowlog serve`'s Firehose API with a delivery
// stream named stream (bucket "flows", delivered at the deliverer's next
// tick) and points the AWS SDK's environment at it; it returns the
// bucket's directory.
func firehoseServer(t *testing.T, stream string) (url, bucketDir string) {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	buckets := t.TempDir()
	svc, err := fhapi.New(ctx, db, fhapi.Options{AccountID: apitest.AccountID, Region: apitest.Region, BucketsDir: buckets, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc.Start(ctx)
	t.Cleanup(func() { svc.Stop(); db.Close() })
	srv := apitest.Start(t, api.Options{Services: []api.Service{svc}})
	client := awsfirehose.New(awsfirehose.Options{Region: apitest.Region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, "")})
	_, err = client.CreateDeliveryStream(ctx, &awsfirehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String(stream),
		ExtendedS3DestinationConfiguration: &types.ExtendedS3DestinationConfiguration{
			BucketARN:      aws.String("arn:aws:s3:::flows"),
			RoleARN:        aws.String("arn:aws:iam::" + apitest.AccountID + ":role/firehose"),
			BufferingHints: &types.BufferingHints{SizeInMBs: aws.Int32(1), IntervalInSeconds: aws.Int32(0)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_FIREHOSE", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", apitest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", apitest.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return srv.URL, filepath.Join(buckets, "flows")
}

// firehoseLines waits until the bucket's objects hold want lines and
// returns them (without their line ends), sorted; every object must end
// in a line end.
func firehoseLines(t *testing.T, dir string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) > 0 && data[len(data)-1] != '\n' {
				t.Fatalf("object %s does not end in a line end", p)
			}
			got = append(got, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")...)
			return nil
		})
		if len(got) >= want || time.Now().After(deadline) {
			slices.Sort(got)
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadToFirehose: `flowlog read --dest firehose://…` on the bundled
// capture puts every record line, once, into the delivery stream's
// objects, one line each; the ARN form and --spool do the same.
func TestReadToFirehose(t *testing.T) {
	for _, tt := range []struct {
		name  string
		dest  string
		spool bool
	}{
		{"url", "firehose://vpc-flows?region=" + apitest.Region, false},
		{"arn with spool", "arn:aws:firehose:" + apitest.Region + ":" + apitest.AccountID + ":deliverystream/vpc-flows", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := recordLines(t, samplePath)
			_, dir := firehoseServer(t, "vpc-flows")
			args := []string{"read", "--dest", tt.dest}
			if tt.spool {
				args = append(args, "--spool", t.TempDir())
			}
			code, _, stderr := flowlog(t, nil, append(args, samplePath)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := firehoseLines(t, dir, len(want))
			if w := slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
				t.Fatalf("objects hold %d lines, want the %d record lines once each", len(got), len(w))
			}
			t.Logf("%d records delivered; %s", len(got), strings.TrimSpace(stderr))
		})
	}
}

// TestReadToFirehoseNoRegion: without a region anywhere, the usage error
// says how to give one.
func TestReadToFirehoseNoRegion(t *testing.T) {
	firehoseServer(t, "vpc-flows")
	code, _, stderr := flowlog(t, nil, "read", "--dest", "firehose://vpc-flows", samplePath)
	if code == 0 || !strings.Contains(stderr, "firehose://NAME?region=REGION") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// TestServerFirehoseOpener: a kinesis-data-firehose flow log of a server,
// mapped by the agent and opened as the agent opens it (the server's own
// Firehose API, the agent's keys), against a server with IAM: keys
// without firehose:PutRecordBatch fail with an access error naming the
// permission (the flow log's deliverLogsErrorMessage), a stream that does
// not exist with ResourceNotFoundException; allowed, the records are in
// the stream's object.
func TestServerFirehoseOpener(t *testing.T) {
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	buckets := t.TempDir()
	fh, err := fhapi.New(ctx, db, fhapi.Options{AccountID: apitest.AccountID, Region: apitest.Region, BucketsDir: buckets, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fh.Start(ctx)
	t.Cleanup(func() { fh.Stop(); db.Close() })
	im, err := iam.New(ctx, db, iam.Config{AccountID: apitest.AccountID, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.Start(t, api.Options{
		Services: []api.Service{fh, im},
		Credentials: api.CredentialChain{
			api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}},
			im,
		},
		Authorizer: im,
	})
	admin := srv.NewCLI()
	noValidation := admin
	noValidation.Env = []string{"AWS_CONFIG_FILE=" + writeTestFile(t, "[default]\nparameter_validation = false\n")}
	noValidation.JSON(t, nil, "firehose", "create-delivery-stream", "--delivery-stream-name", "vpc-flows",
		"--extended-s3-destination-configuration", `{"RoleARN":"arn:aws:iam::`+apitest.AccountID+`:role/x","BucketARN":"arn:aws:s3:::flows","BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":0}}`)
	streamARN := "arn:aws:firehose:" + apitest.Region + ":" + apitest.AccountID + ":deliverystream/vpc-flows"
	admin.JSON(t, nil, "iam", "create-user", "--user-name", "agent-1")
	var key struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	admin.JSON(t, &key, "iam", "create-access-key", "--user-name", "agent-1")
	agentSrv := &agent.Server{URL: srv.URL, AccessKeyID: key.AccessKey.AccessKeyId, SecretAccessKey: key.AccessKey.SecretAccessKey, Region: apitest.Region}

	open := func(dest string) pipeline.Sink {
		t.Helper()
		def, err := agent.ServerFlowLog(control.FlowLog{FlowLogID: "fl-0123456789abcdef0", ResourceID: "vpc-0123456789abcdef0", TrafficType: "ALL",
			MaxAggregationInterval: 60, LogDestinationType: "kinesis-data-firehose", LogDestination: dest}, agentSrv)
		if err != nil {
			t.Fatal(err)
		}
		d, err := serverFirehoseOpener(agentSrv)(ctx, def, def.ID, flow.DefaultFormat(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return d.Sink
	}
	now := time.Now().Unix() / 60 * 60
	rec := flow.Record{Present: flow.DefaultFormat().Set(), Version: 2, AccountID: apitest.AccountID, InterfaceID: "eni-0123456789abcdef0",
		SrcAddr: netip.MustParseAddr("10.1.2.3"), DstAddr: netip.MustParseAddr("10.1.2.4"), SrcPort: 40000, DstPort: 443, Protocol: 6,
		Packets: 3, Bytes: 180, Start: now - 60, End: now, Action: flow.ActionAccept, LogStatus: flow.LogStatusOK}
	deliver := func(s pipeline.Sink) error {
		if err := s.Write([]flow.Record{rec}); err != nil {
			return err
		}
		return s.Advance(now)
	}

	err = deliver(open(streamARN))
	if !errors.Is(err, firehose.ErrAccessDenied) || !strings.Contains(err.Error(), "need firehose:PutRecordBatch") {
		t.Fatalf("keys without firehose:PutRecordBatch: %v", err)
	}
	t.Logf("without the permission: %v", err)
	admin.JSON(t, nil, "iam", "put-user-policy", "--user-name", "agent-1", "--policy-name", "put", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"firehose:PutRecordBatch","Resource":"arn:aws:firehose:*:*:deliverystream/*"}]}`)
	err = deliver(open("arn:aws:firehose:" + apitest.Region + ":" + apitest.AccountID + ":deliverystream/missing"))
	if err == nil || errors.Is(err, firehose.ErrAccessDenied) || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("a stream that does not exist: %v", err)
	}
	s := open(streamARN)
	if err := deliver(s); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := firehoseLines(t, filepath.Join(buckets, "flows"), 1)
	if want := string(flow.DefaultFormat().Append(nil, &rec)); len(got) != 1 || got[0] != want {
		t.Fatalf("the stream's objects: %q, want %q", got, want)
	}
}

func writeTestFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
