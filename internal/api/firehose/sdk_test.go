package firehose_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/firehose"
	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
)

// childEnv names the store directory when the test binary runs as a
// server for TestKillDuringPuts.
const childEnv = "FLOWLOG_FIREHOSE_TEST_SERVER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := apitest.ServeChild(dir, func(ctx context.Context, db *sql.DB) ([]api.Service, error) {
			svc, err := firehose.New(ctx, db, firehose.Options{AccountID: apitest.AccountID, Region: apitest.Region, BucketsDir: filepath.Join(dir, "buckets")})
			if err != nil {
				return nil, err
			}
			svc.Start(ctx)
			return []api.Service{svc}, nil
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// client is the AWS SDK's Firehose client of a server, as the firehose
// sink makes it.
func client(url string) *sdk.Client {
	return sdk.NewFromConfig(aws.Config{
		Region:      apitest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *sdk.Options) { o.BaseEndpoint = aws.String(url) })
}

func s3dest(bucket string, sizeMB, interval int32) *types.ExtendedS3DestinationConfiguration {
	return &types.ExtendedS3DestinationConfiguration{RoleARN: aws.String("arn:aws:iam::123456789012:role/fh"), BucketARN: aws.String("arn:aws:s3:::" + bucket),
		BufferingHints: &types.BufferingHints{SizeInMBs: aws.Int32(sizeMB), IntervalInSeconds: aws.Int32(interval)}}
}

func withPrefix(d *types.ExtendedS3DestinationConfiguration, prefix string) *types.ExtendedS3DestinationConfiguration {
	d.Prefix = aws.String(prefix)
	return d
}

// apiError requires err to be an API error with code and a message
// containing msg.
func apiError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want %s", err, code)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		t.Errorf("error %s: %s, want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

func TestSDKCreateErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := client(e.srv.URL)
	ctx := context.Background()
	withDest := func(name string, d *types.ExtendedS3DestinationConfiguration) *sdk.CreateDeliveryStreamInput {
		return &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String(name), ExtendedS3DestinationConfiguration: d}
	}
	zip := s3dest("bkt", 1, 60)
	zip.CompressionFormat = types.CompressionFormatZip
	lambda := s3dest("bkt", 1, 60)
	lambda.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true)}
	noRole := s3dest("bkt", 1, 60)
	noRole.RoleARN = nil
	for _, tc := range []struct {
		in        *sdk.CreateDeliveryStreamInput
		code, msg string
	}{
		{withDest("z", zip), "InvalidArgumentException", "CompressionFormat ZIP"},
		{withDest("z", s3dest("bkt", 129, 60)), "InvalidArgumentException", "sizeInMBs"},
		{withDest("z", s3dest("bkt", 0, 60)), "InvalidArgumentException", "sizeInMBs"},
		{withDest("z", s3dest("bkt", 1, 901)), "InvalidArgumentException", "intervalInSeconds"},
		{withDest("z", s3dest("../etc", 1, 60)), "InvalidArgumentException", "BucketARN"},
		{withDest("z", s3dest("Upper", 1, 60)), "InvalidArgumentException", "BucketARN"},
		{withDest("z", lambda), "InvalidArgumentException", "ProcessingConfiguration"},
		{withDest("z", withPrefix(s3dest("bkt", 1, 60), "../up/")), "InvalidArgumentException", "not clean paths"},
		{withDest("z", withPrefix(s3dest("bkt", 1, 60), "a//b/")), "InvalidArgumentException", "not clean paths"},
		{withDest("bad/name", s3dest("bkt", 1, 60)), "InvalidArgumentException", "deliveryStreamName"},
		{withDest(strings.Repeat("n", 65), s3dest("bkt", 1, 60)), "InvalidArgumentException", "deliveryStreamName"},
		{&sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("z")}, "InvalidArgumentException", "destination"},
		{&sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("z"), DeliveryStreamType: types.DeliveryStreamTypeKinesisStreamAsSource, ExtendedS3DestinationConfiguration: s3dest("bkt", 1, 60)}, "InvalidArgumentException", "KinesisStreamAsSource"},
		{&sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("z"), ExtendedS3DestinationConfiguration: s3dest("bkt", 1, 60),
			S3DestinationConfiguration: &types.S3DestinationConfiguration{RoleARN: aws.String("arn:aws:iam::1:role/r"), BucketARN: aws.String("arn:aws:s3:::bkt")}}, "InvalidArgumentException", "Only one destination"},
		{&sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("z"), ExtendedS3DestinationConfiguration: s3dest("bkt", 1, 60),
			Tags: []types.Tag{{Key: aws.String("aws:reserved")}}}, "InvalidArgumentException", "tags.1.member.key"},
	} {
		_, err := c.CreateDeliveryStream(ctx, tc.in)
		apiError(t, err, tc.code, tc.msg)
	}
	// The SDK refuses a missing RoleARN itself; the server does too.
	_, err := c.CreateDeliveryStream(ctx, withDest("z", noRole))
	if err == nil {
		t.Fatal("created a stream without RoleARN")
	}

	// The quota.
	small, err := firehose.New(ctx, e.db, firehose.Options{BucketsDir: e.buckets, MaxStreams: 1})
	if err != nil {
		t.Fatal(err)
	}
	sc := client(apitest.Start(t, api.Options{Services: []api.Service{small}}).URL)
	if _, err := sc.CreateDeliveryStream(ctx, withDest("one", s3dest("bkt", 1, 60))); err != nil {
		t.Fatal(err)
	}
	_, err = sc.CreateDeliveryStream(ctx, withDest("two", s3dest("bkt", 1, 60)))
	apiError(t, err, "LimitExceededException", "quota of 1")
	var lee *types.LimitExceededException
	if !errors.As(err, &lee) {
		t.Errorf("the SDK does not read %v as its LimitExceededException", err)
	}
	_, err = sc.PutRecordBatch(ctx, &sdk.PutRecordBatchInput{DeliveryStreamName: aws.String("two"), Records: []types.Record{{Data: []byte("x")}}})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("put to a missing stream: %v, want the SDK's ResourceNotFoundException", err)
	}
}

// TestSDKIntervalZero: a stream with IntervalInSeconds 0 (the SDK sends
// what the CLI refuses) delivers at the deliverer's next look.
func TestSDKIntervalZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := client(e.srv.URL)
	ctx := context.Background()
	if _, err := c.CreateDeliveryStream(ctx, &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("now"), ExtendedS3DestinationConfiguration: s3dest("now-bucket", 1, 0)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.PutRecordBatch(ctx, &sdk.PutRecordBatchInput{DeliveryStreamName: aws.String("now"), Records: []types.Record{{Data: []byte("a\n")}, {Data: []byte("b\n")}}})
	if err != nil || aws.ToInt32(out.FailedPutCount) != 0 || len(out.RequestResponses) != 2 {
		t.Fatalf("put-record-batch = %+v, %v", out, err)
	}
	got := e.objects(t, "now-bucket", 1)
	if b := got[keys(got)[0]]; string(b) != "a\nb\n" {
		t.Fatalf("object = %q", b)
	}
}

// s3Bucket starts a real S3 server (versitygw) with bucket, and returns
// it, a client of it and the Firehose deliverer's buckets there.
func s3Bucket(t *testing.T, bucket string) (*s3test.Server, *awss3.Client, firehose.S3Buckets) {
	t.Helper()
	gw := s3test.Start(t)
	s3c := gw.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, s3c, bucket)
	b, err := firehose.NewS3Buckets(context.Background(), gw.URL, "", credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, ""))
	if err != nil {
		t.Fatal(err)
	}
	return gw, s3c, b
}

// TestS3Endpoint: objects go to a real S3 server (versitygw) with one PUT
// each; while the server is down deliveries are retried, and the records
// arrive once it is back.
func TestS3Endpoint(t *testing.T) {
	// Not parallel: s3test isolates the AWS configuration with t.Setenv.
	gw, s3c, b := s3Bucket(t, "fh-bucket")
	ctx := context.Background()
	_, svc := startService(t, t.TempDir(), firehose.Options{Buckets: b, Tick: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	c := client(apitest.Start(t, api.Options{Services: []api.Service{svc}}).URL)
	dest := s3dest("fh-bucket", 1, 0)
	dest.Prefix = aws.String("flows/")
	dest.CompressionFormat = types.CompressionFormatGzip
	if _, err := c.CreateDeliveryStream(ctx, &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("to-s3"), ExtendedS3DestinationConfiguration: dest}); err != nil {
		t.Fatal(err)
	}
	put := func(data string) {
		t.Helper()
		if _, err := c.PutRecord(ctx, &sdk.PutRecordInput{DeliveryStreamName: aws.String("to-s3"), Record: &types.Record{Data: []byte(data)}}); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(n int) map[string][]byte {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			objs := s3test.Objects(t, s3c, "fh-bucket", "flows/")
			if len(objs) >= n {
				return objs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d objects in s3://fh-bucket/flows/, want %d", len(objs), n)
			}
		}
	}
	put("first\n")
	objs := wait(1)
	gw.Stop()
	put("while down\n")
	// Deliveries fail, and DescribeDeliveryStream says so.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d, err := c.DescribeDeliveryStream(ctx, &sdk.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("to-s3")})
		if err != nil {
			t.Fatal(err)
		}
		if f := d.DeliveryStreamDescription.FailureDescription; f != nil {
			if f.Type != types.DeliveryStreamFailureTypeUnknownError || !strings.Contains(aws.ToString(f.Details), "put s3://fh-bucket/flows/") {
				t.Fatalf("failure description %+v", f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failure described while S3 is down")
		}
	}
	gw.Restart(t)
	objs = wait(2)
	var all []string
	for _, k := range keys(objs) {
		if !strings.HasPrefix(k, "flows/") || !strings.HasSuffix(k, ".gz") || !strings.Contains(k, "/to-s3-1-") {
			t.Errorf("key %q", k)
		}
		all = append(all, string(gunzip(t, objs[k])))
	}
	sort.Strings(all) // the two keys may share their second
	if strings.Join(all, "") != "first\nwhile down\n" {
		t.Fatalf("objects hold %q", all)
	}
	// Read back through the service, as the web console reads them.
	d, back := readBack(t, svc, "to-s3", "flows/")
	if !d.GZIP || len(back) != len(objs) {
		t.Fatalf("read back %d objects of %d (destination %+v)", len(back), len(objs), d)
	}
	for k, v := range back {
		if v != string(objs[k]) {
			t.Errorf("read back %s: differs from the object in S3", k)
		}
	}
}

// TestKillDuringPuts: a server killed (SIGKILL) while four clients put
// 100-record batches keeps every batch it acknowledged, and delivers
// them after it starts again; a batch is kept whole or not at all.
func TestKillDuringPuts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, url := apitest.StartChild(t, childEnv, dir)
	c := client(url)
	ctx := context.Background()
	if _, err := c.CreateDeliveryStream(ctx, &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("crash"), ExtendedS3DestinationConfiguration: s3dest("crash", 128, 900)}); err != nil {
		t.Fatal(err)
	}
	const writers, batch = 4, 100
	acked := apitest.PutUntilKilled(t, cmd, writers, func(w, n int) error {
		in := &sdk.PutRecordBatchInput{DeliveryStreamName: aws.String("crash")}
		for r := range batch {
			in.Records = append(in.Records, types.Record{Data: fmt.Appendf(nil, "%d/%d/%d\n", w, n, r)})
		}
		_, err := c.PutRecordBatch(ctx, in)
		return err
	})

	// Start again on the store, an hour later: everything is due.
	later := time.Now().Add(time.Hour)
	db, _ := startService(t, dir, firehose.Options{BucketsDir: filepath.Join(dir, "buckets"), Tick: 20 * time.Millisecond, Now: func() time.Time { return later }})
	e := &env{buckets: filepath.Join(dir, "buckets")}
	var stored map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var left int
		db.QueryRow(`SELECT COUNT(*) FROM firehose_records`).Scan(&left)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still buffered", left)
		}
	}
	stored = map[string]int{}
	for _, b := range e.objects(t, "crash", 1) {
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			stored[l[:strings.LastIndexByte(l, '/')]]++
		}
	}
	for call, n := range stored {
		if n != batch {
			t.Errorf("call %s: %d of its %d records delivered", call, n, batch)
		}
	}
	for call := range acked {
		if stored[call] != batch {
			t.Errorf("acknowledged call %s: %d records delivered", call, stored[call])
		}
	}
	t.Logf("%d calls acknowledged, %d delivered after the restart (%d in flight at the kill)", len(acked), len(stored), len(stored)-len(acked))
}
