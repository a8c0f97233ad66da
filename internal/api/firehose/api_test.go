package firehose_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/firehose"
	"github.com/flowlog/flowlog/internal/api/iam"
)

// fails runs the CLI and requires it to fail with every one of want in
// its error output.
func fails(t *testing.T, c apitest.CLI, want []string, args ...string) {
	t.Helper()
	r := c.Run(t, args...)
	if r.ExitCode == 0 {
		t.Fatalf("aws %s: succeeded, want %v\n%s", strings.Join(args, " "), want, r.Stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("aws %s: error %q does not contain %q", strings.Join(args, " "), strings.TrimSpace(r.Stderr), w)
		}
	}
}

type description struct {
	DeliveryStreamDescription struct {
		DeliveryStreamName, DeliveryStreamARN, DeliveryStreamStatus, DeliveryStreamType, VersionId string
		CreateTimestamp                                                                            string
		FailureDescription                                                                         *struct{ Type, Details string }
		Destinations                                                                               []struct {
			DestinationId                    string
			ExtendedS3DestinationDescription *struct {
				RoleARN, BucketARN, Prefix, ErrorOutputPrefix, CompressionFormat string
				BufferingHints                                                   struct{ SizeInMBs, IntervalInSeconds int }
			}
			S3DestinationDescription *struct{ BucketARN string }
		}
		HasMoreDestinations bool
	}
}

func TestCLIStreamsLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createStream(t, "b-stream", "--extended-s3-destination-configuration",
		`{"RoleARN":"arn:aws:iam::123456789012:role/fh","BucketARN":"arn:aws:s3:::bkt","Prefix":"p/","ErrorOutputPrefix":"err/","CompressionFormat":"GZIP","BufferingHints":{"SizeInMBs":64,"IntervalInSeconds":120}}`,
		"--tags", "Key=a,Value=1", "Key=b,Value=2")
	e.createStream(t, "a-stream", "--s3-destination-configuration", `{"RoleARN":"arn:aws:iam::123456789012:role/fh","BucketARN":"arn:aws:s3:::bkt"}`)
	e.createStream(t, "c-stream", "--delivery-stream-type", "DirectPut", "--extended-s3-destination-configuration", s3conf("bkt", "", 1, 60, "UNCOMPRESSED"))

	var d description
	e.cli.JSON(t, &d, "firehose", "describe-delivery-stream", "--delivery-stream-name", "b-stream")
	ds := d.DeliveryStreamDescription
	if ds.DeliveryStreamName != "b-stream" || ds.DeliveryStreamARN != "arn:aws:firehose:us-east-1:123456789012:deliverystream/b-stream" ||
		ds.DeliveryStreamStatus != "ACTIVE" || ds.DeliveryStreamType != "DirectPut" || ds.VersionId != "1" || !strings.HasPrefix(ds.CreateTimestamp, "2026-03-04T05:06:07") ||
		ds.HasMoreDestinations || len(ds.Destinations) != 1 || ds.FailureDescription != nil {
		t.Fatalf("describe = %+v", ds)
	}
	x := ds.Destinations[0].ExtendedS3DestinationDescription
	if ds.Destinations[0].DestinationId != "destinationId-000000000001" || x == nil || x.BucketARN != "arn:aws:s3:::bkt" || x.Prefix != "p/" ||
		x.ErrorOutputPrefix != "err/" || x.CompressionFormat != "GZIP" || x.BufferingHints.SizeInMBs != 64 || x.BufferingHints.IntervalInSeconds != 120 ||
		x.RoleARN != "arn:aws:iam::123456789012:role/fh" || ds.Destinations[0].S3DestinationDescription == nil {
		t.Fatalf("destination = %+v", ds.Destinations[0])
	}
	var da description // a fresh value: decoding into d would keep its slice's pointers
	e.cli.JSON(t, &da, "firehose", "describe-delivery-stream", "--delivery-stream-name", "a-stream")
	if dd := da.DeliveryStreamDescription.Destinations[0]; dd.ExtendedS3DestinationDescription != nil || dd.S3DestinationDescription == nil {
		t.Fatalf("S3 destination described as %+v", dd)
	}

	var list struct {
		DeliveryStreamNames    []string
		HasMoreDeliveryStreams bool
	}
	e.cli.JSON(t, &list, "firehose", "list-delivery-streams")
	if strings.Join(list.DeliveryStreamNames, ",") != "a-stream,b-stream,c-stream" || list.HasMoreDeliveryStreams {
		t.Fatalf("list = %+v", list)
	}
	e.cli.JSON(t, &list, "firehose", "list-delivery-streams", "--limit", "1", "--exclusive-start-delivery-stream-name", "a-stream", "--delivery-stream-type", "DirectPut")
	if strings.Join(list.DeliveryStreamNames, ",") != "b-stream" || !list.HasMoreDeliveryStreams {
		t.Fatalf("list page = %+v", list)
	}

	var tags struct {
		Tags        []struct{ Key, Value string }
		HasMoreTags bool
	}
	e.cli.JSON(t, nil, "firehose", "tag-delivery-stream", "--delivery-stream-name", "b-stream", "--tags", "Key=c,Value=3", "Key=a,Value=9")
	e.cli.JSON(t, nil, "firehose", "untag-delivery-stream", "--delivery-stream-name", "b-stream", "--tag-keys", "b")
	e.cli.JSON(t, &tags, "firehose", "list-tags-for-delivery-stream", "--delivery-stream-name", "b-stream")
	if fmt.Sprint(tags.Tags) != "[{a 9} {c 3}]" || tags.HasMoreTags {
		t.Fatalf("tags = %+v", tags)
	}
	// Pages and errors the SDK reads (faster than the CLI).
	c := client(e.srv.URL)
	ctx := context.Background()
	page, err := c.ListTagsForDeliveryStream(ctx, &sdk.ListTagsForDeliveryStreamInput{DeliveryStreamName: aws.String("b-stream"), Limit: aws.Int32(1), ExclusiveStartTagKey: aws.String("a")})
	if err != nil || len(page.Tags) != 1 || aws.ToString(page.Tags[0].Key) != "c" || aws.ToBool(page.HasMoreTags) {
		t.Fatalf("tags page = %+v, %v", page, err)
	}

	fails(t, e.cli, []string{"ResourceInUseException", "b-stream"}, "firehose", "create-delivery-stream", "--delivery-stream-name", "b-stream", "--extended-s3-destination-configuration", s3conf("bkt", "", 1, 60, "UNCOMPRESSED"))
	fails(t, e.cli, []string{"ResourceNotFoundException", "Firehose nope under account 123456789012 not found."}, "firehose", "describe-delivery-stream", "--delivery-stream-name", "nope")

	// Delete drops the stream (and what it buffered).
	e.putBatch(t, "c-stream", "never delivered\n")
	e.cli.JSON(t, nil, "firehose", "delete-delivery-stream", "--delivery-stream-name", "c-stream")
	fails(t, e.cli, []string{"ResourceNotFoundException"}, "firehose", "describe-delivery-stream", "--delivery-stream-name", "c-stream")
	_, err = c.DeleteDeliveryStream(ctx, &sdk.DeleteDeliveryStreamInput{DeliveryStreamName: aws.String("c-stream")})
	apiError(t, err, "ResourceNotFoundException", "c-stream")
	_, err = c.PutRecordBatch(ctx, &sdk.PutRecordBatchInput{DeliveryStreamName: aws.String("c-stream"), Records: []types.Record{{Data: []byte("x")}}})
	apiError(t, err, "ResourceNotFoundException", "c-stream")
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM firehose_records`).Scan(&n)
	if n != 0 {
		t.Errorf("%d buffered rows left after the delete", n)
	}
	// A stream made again with the name starts empty.
	e.createStream(t, "c-stream", "--extended-s3-destination-configuration", s3conf("bkt", "", 1, 60, "UNCOMPRESSED"))
	e.clock.Add(time.Hour)
	time.Sleep(100 * time.Millisecond)
	if got := e.objects(t, "bkt", 0); len(got) != 0 {
		t.Fatalf("a deleted stream's records were delivered: %v", keys(got))
	}
}

func TestCLIPutRecordLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createStream(t, "lim", "--extended-s3-destination-configuration", s3conf("lim", "", 128, 60, "UNCOMPRESSED"))

	// One record over 1,000 KiB fails alone; the others are accepted.
	big := strings.Repeat("x", firehose.MaxRecordBytes+1)
	out := e.putBatch(t, "lim", "first\n", big, "third\n")
	r := out.RequestResponses
	if out.FailedPutCount != 1 || r[0].RecordId == "" || r[0].ErrorCode != "" || r[1].RecordId != "" ||
		r[1].ErrorCode != "InvalidArgumentException" || !strings.Contains(r[1].ErrorMessage, "1024000") || r[2].RecordId == "" || r[0].RecordId == r[2].RecordId {
		t.Fatalf("put-record-batch = %+v", out)
	}
	// A record of exactly 1,000 KiB is accepted.
	out = e.putBatch(t, "lim", strings.Repeat("y", firehose.MaxRecordBytes))
	if out.FailedPutCount != 0 {
		t.Fatalf("a 1,024,000-byte record: %+v", out)
	}
	// 501 records, and more than 4 MiB in one call, are refused whole.
	many := make([]string, 501)
	for i := range many {
		many[i] = "r\n"
	}
	fails(t, e.cli, []string{"InvalidArgumentException", "500"}, "firehose", "put-record-batch", "--delivery-stream-name", "lim", "--records", recordsFile(t, many...))
	five := make([]string, 5)
	for i := range five {
		five[i] = strings.Repeat("z", 900_000)
	}
	fails(t, e.cli, []string{"InvalidArgumentException", "Records size exceeds 4 MB limit"}, "firehose", "put-record-batch", "--delivery-stream-name", "lim", "--records", recordsFile(t, five...))
	// PutRecord: one record, refused when too large.
	var one struct{ RecordId string }
	e.cli.JSON(t, &one, "firehose", "put-record", "--delivery-stream-name", "lim", "--record", "Data=bGFzdAo=") // "last\n"
	if len(one.RecordId) < 16 {
		t.Fatalf("put-record = %+v", one)
	}
	e.clock.Add(time.Minute)
	got := e.objects(t, "lim", 1)
	if len(got) != 1 {
		t.Fatalf("objects %v", keys(got))
	}
	want := "first\nthird\n" + strings.Repeat("y", firehose.MaxRecordBytes) + "last\n"
	if b := got[keys(got)[0]]; string(b) != want {
		t.Fatalf("object: %d bytes, want %d", len(b), len(want))
	}
}

// TestRestartKeepsBuffer: records acknowledged and not yet delivered when
// the service stops are delivered after it starts again on the store.
func TestRestartKeepsBuffer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createStream(t, "keep", "--extended-s3-destination-configuration", s3conf("keep", "", 5, 300, "GZIP"))
	e.putBatch(t, "keep", "before\n", "the stop\n")
	e.svc.Stop()
	e.db.Close()
	if got := e.objects(t, "keep", 0); len(got) != 0 {
		t.Fatalf("delivered at the stop: %v", keys(got))
	}

	e.open(t)
	srv := apitest.Start(t, api.Options{Services: []api.Service{e.svc}})
	e.cli = srv.NewCLI()
	e.putBatch(t, "keep", "after\n")
	e.clock.Add(5 * time.Minute)
	got := e.objects(t, "keep", 1)
	if len(got) != 1 {
		t.Fatalf("objects %v", keys(got))
	}
	if b := gunzip(t, got[keys(got)[0]]); string(b) != "before\nthe stop\nafter\n" {
		t.Fatalf("object = %q", b)
	}
}

// TestDeliveryFailureRetried: a bucket that cannot be written is retried
// with backoff and the error shows in DescribeDeliveryStream (the stream
// staying ACTIVE) until a delivery succeeds.
func TestDeliveryFailureRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createStream(t, "retry", "--extended-s3-destination-configuration", s3conf("blocked", "", 5, 60, "UNCOMPRESSED"))
	// A file where the bucket's directory should be.
	if err := os.MkdirAll(e.buckets, 0o755); err != nil {
		t.Fatal(err)
	}
	block := filepath.Join(e.buckets, "blocked")
	if err := os.WriteFile(block, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.putBatch(t, "retry", "kept\n")
	e.clock.Add(time.Minute)
	var d description
	deadline := time.Now().Add(10 * time.Second)
	for {
		d = description{}
		e.cli.JSON(t, &d, "firehose", "describe-delivery-stream", "--delivery-stream-name", "retry")
		if d.DeliveryStreamDescription.FailureDescription != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f := d.DeliveryStreamDescription.FailureDescription
	if f == nil || f.Type != "UNKNOWN_ERROR" || !strings.Contains(f.Details, "blocked") || d.DeliveryStreamDescription.DeliveryStreamStatus != "ACTIVE" {
		t.Fatalf("describe during failures = %+v", d.DeliveryStreamDescription)
	}
	// Retries go on (the clock moves the backoff along).
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		e.clock.Add(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	got := e.objects(t, "blocked", 1)
	if b := got[keys(got)[0]]; string(b) != "kept\n" {
		t.Fatalf("object = %q", b)
	}
	// The object is renamed into place before its rows are deleted and
	// the error cleared: wait for that.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var after description
		e.cli.JSON(t, &after, "firehose", "describe-delivery-stream", "--delivery-stream-name", "retry")
		if after.DeliveryStreamDescription.FailureDescription == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failure still shown after a delivery: %+v", after.DeliveryStreamDescription.FailureDescription)
		}
	}
}

// TestCLIAuth: unknown keys, bad signatures and IAM users without
// firehose:PutRecordBatch on the stream are refused.
func TestCLIAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	iamsvc, err := iam.New(ctx, db, iam.Config{AccountID: apitest.AccountID, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := firehose.New(ctx, db, firehose.Options{AccountID: apitest.AccountID, Region: apitest.Region, BucketsDir: filepath.Join(dir, "b")})
	if err != nil {
		t.Fatal(err)
	}
	root := api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}}
	srv := apitest.Start(t, api.Options{Services: []api.Service{iamsvc, svc}, Credentials: api.CredentialChain{root, iamsvc}, Authorizer: iamsvc})
	admin := srv.NewCLI()
	admin.JSON(t, nil, "firehose", "create-delivery-stream", "--delivery-stream-name", "s", "--extended-s3-destination-configuration", s3conf("bkt", "", 1, 60, "UNCOMPRESSED"))
	admin.JSON(t, nil, "firehose", "create-delivery-stream", "--delivery-stream-name", "other", "--extended-s3-destination-configuration", s3conf("bkt", "", 1, 60, "UNCOMPRESSED"))

	wrong := srv.NewCLI()
	wrong.AccessKey = "AKIAFLOWLOGUNKNOWN01"
	fails(t, wrong, []string{"UnrecognizedClientException"}, "firehose", "list-delivery-streams")
	wrong = srv.NewCLI()
	wrong.SecretKey = "not-the-secret-key-at-all-000000000000000"
	fails(t, wrong, []string{"SignatureDoesNotMatch"}, "firehose", "list-delivery-streams")

	var k struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	admin.JSON(t, nil, "iam", "create-user", "--user-name", "agent")
	admin.JSON(t, &k, "iam", "create-access-key", "--user-name", "agent")
	policy, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{{
		"Effect": "Allow", "Action": []string{"firehose:PutRecordBatch", "firehose:DescribeDeliveryStream"},
		"Resource": "arn:aws:firehose:us-east-1:123456789012:deliverystream/s"}}})
	admin.JSON(t, nil, "iam", "put-user-policy", "--user-name", "agent", "--policy-name", "put", "--policy-document", string(policy))
	agent := srv.NewCLI()
	agent.AccessKey, agent.SecretKey = k.AccessKey.AccessKeyId, k.AccessKey.SecretAccessKey
	agent.JSON(t, nil, "firehose", "put-record-batch", "--delivery-stream-name", "s", "--records", recordsFile(t, "ok\n"))
	fails(t, agent, []string{"(AccessDeniedException)", "firehose:PutRecordBatch", "deliverystream/other"},
		"firehose", "put-record-batch", "--delivery-stream-name", "other", "--records", recordsFile(t, "no\n"))
	fails(t, agent, []string{"(AccessDeniedException)", "firehose:PutRecord"}, "firehose", "put-record", "--delivery-stream-name", "s", "--record", "Data=bm8K")
	fails(t, agent, []string{"(AccessDeniedException)", "firehose:DeleteDeliveryStream"}, "firehose", "delete-delivery-stream", "--delivery-stream-name", "s")
	fails(t, agent, []string{"(AccessDeniedException)", "firehose:ListDeliveryStreams"}, "firehose", "list-delivery-streams")
}
