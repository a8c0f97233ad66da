package firehose_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
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
	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
)

// newRoleEnv is newEnv with the IAM service: the account's root key
// (the CLI's), IAM users and roles, and the deliverer acting as each
// stream's role. buckets nil means the buckets directory.
func newRoleEnv(t *testing.T, buckets firehose.Buckets) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{dir: t.TempDir(), clock: &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}}
	e.buckets = filepath.Join(e.dir, "buckets")
	db, err := api.OpenDB(ctx, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := iam.New(ctx, db, iam.Config{AccountID: apitest.AccountID, DataDir: e.dir})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	opts := firehose.Options{AccountID: apitest.AccountID, Region: apitest.Region, BucketsDir: e.buckets, Buckets: buckets, Roles: im,
		Now: e.clock.Now, Tick: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}
	svc, err := firehose.New(ctx, db, opts)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	svc.Start(ctx)
	t.Cleanup(func() { svc.Stop(); db.Close() })
	e.db, e.svc = db, svc
	root := api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}}
	e.srv = apitest.Start(t, api.Options{Services: []api.Service{im, svc}, Credentials: api.CredentialChain{root, im}, Authorizer: im, Now: time.Now})
	e.cli = e.srv.NewCLI()
	return e
}

const (
	trustFirehose = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	trustEC2      = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
)

// putObjectPolicy allows s3:PutObject on a bucket's objects.
func putObjectPolicy(bucket string) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{{
		"Effect": "Allow", "Action": []string{"s3:PutObject", "s3:GetBucketLocation", "s3:ListBucket"},
		"Resource": []string{"arn:aws:s3:::" + bucket, "arn:aws:s3:::" + bucket + "/*"}}}})
	return string(b)
}

func roleARN(name string) string { return "arn:aws:iam::" + apitest.AccountID + ":role/" + name }

// roleConf is an --extended-s3-destination-configuration with role.
func roleConf(role, bucket, prefix string) string {
	b, _ := json.Marshal(map[string]any{"RoleARN": roleARN(role), "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": prefix,
		"BufferingHints": map[string]int{"SizeInMBs": 1, "IntervalInSeconds": 60}})
	return string(b)
}

// failure waits up to 10 s for DescribeDeliveryStream (through the CLI)
// to show a delivery failure, moving the clock along so that retries
// happen, and returns its description.
func (e *env) failure(t *testing.T, stream string) description {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var d description
		e.cli.JSON(t, &d, "firehose", "describe-delivery-stream", "--delivery-stream-name", stream)
		if d.DeliveryStreamDescription.FailureDescription != nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe-delivery-stream %s: no failure after 10 s: %+v", stream, d.DeliveryStreamDescription)
		}
		e.clock.Add(time.Second)
		time.Sleep(50 * time.Millisecond)
	}
}

// retried moves the clock past the backoff until bucket has n objects.
func (e *env) retried(t *testing.T, bucket string, n int) map[string][]byte {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if got := e.objects(t, bucket, 0); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("bucket %s: fewer than %d objects after 10 s", bucket, n)
		}
		e.clock.Add(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
}

// settled checks that, the deliverer having had time for more
// deliveries, bucket still holds exactly want (object contents, in key
// order), the store holds no record of the stream, and no failure is
// described.
func (e *env) settled(t *testing.T, stream, bucket string, want ...string) {
	t.Helper()
	for range 5 {
		e.clock.Add(time.Minute)
		time.Sleep(40 * time.Millisecond)
	}
	got := e.objects(t, bucket, 0)
	var contents []string
	for _, k := range keys(got) {
		contents = append(contents, string(got[k]))
	}
	if strings.Join(contents, "|") != strings.Join(want, "|") {
		t.Fatalf("bucket %s holds %q (keys %v), want %q", bucket, contents, keys(got), want)
	}
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM firehose_records`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d records left in the store (%v)", n, err)
	}
	var d description
	e.cli.JSON(t, &d, "firehose", "describe-delivery-stream", "--delivery-stream-name", stream)
	if f := d.DeliveryStreamDescription.FailureDescription; f != nil {
		t.Fatalf("failure still described after the delivery: %+v", f)
	}
}

// checkAccessDenied requires the description of a stream whose role is
// refused: ACTIVE, UNKNOWN_ERROR with AWS's S3.AccessDenied error log
// code and message first, then why.
func checkAccessDenied(t *testing.T, d description, why ...string) {
	t.Helper()
	ds := d.DeliveryStreamDescription
	f := ds.FailureDescription
	const aws = "S3.AccessDenied: Access was denied. Ensure that the trust policy for the provided IAM role allows Firehose to assume the role, and the access policy allows access to the S3 bucket."
	if ds.DeliveryStreamStatus != "ACTIVE" || f.Type != "UNKNOWN_ERROR" || !strings.HasPrefix(f.Details, aws) {
		t.Fatalf("describe while the role is refused: status %s, failure %+v", ds.DeliveryStreamStatus, f)
	}
	t.Logf("FailureDescription: %s: %s", f.Type, f.Details)
	for _, w := range why {
		if !strings.Contains(f.Details, w) {
			t.Errorf("failure details %q do not say %q", f.Details, w)
		}
	}
}

// TestRoleWithoutPutObject: a stream whose role trusts Firehose but may
// not s3:PutObject writes nothing; DescribeDeliveryStream shows AWS's
// S3.AccessDenied with IAM's refusal, and the records stay buffered.
// Attaching the policy lets them through at the next retry, once.
func TestRoleWithoutPutObject(t *testing.T) {
	t.Parallel()
	e := newRoleEnv(t, nil)
	e.cli.JSON(t, nil, "iam", "create-role", "--role-name", "fh", "--assume-role-policy-document", trustFirehose)
	e.createStream(t, "denied", "--extended-s3-destination-configuration", roleConf("fh", "denied-b", "p/"))
	e.putBatch(t, "denied", "one\n", "two\n")
	e.putBatch(t, "denied", "three\n")
	e.clock.Add(time.Minute)
	checkAccessDenied(t, e.failure(t, "denied"),
		"User: arn:aws:sts::123456789012:assumed-role/fh/flowlog-delivery is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::denied-b/p/2026/03/04/05/denied-1-2026-03-04-05-06-07-",
		"because no identity-based policy allows the s3:PutObject action")
	if got := e.objects(t, "denied-b", 0); len(got) != 0 {
		t.Fatalf("objects written without s3:PutObject: %v", keys(got))
	}
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM firehose_records`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d buffered calls while refused, want 2 (%v)", n, err)
	}

	e.cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "fh", "--policy-name", "s3", "--policy-document", putObjectPolicy("denied-b"))
	got := e.retried(t, "denied-b", 1)
	if k := keys(got)[0]; !regexp.MustCompile(`^p/2026/03/04/05/denied-1-2026-03-04-05-06-07-` + uuidRE + `$`).MatchString(k) {
		t.Errorf("object key %q", k)
	}
	e.settled(t, "denied", "denied-b", "one\ntwo\nthree\n")
}

// TestRoleTrustAndExistence: a role that does not trust
// firehose.amazonaws.com, and a role that does not exist, get no
// session; fixing the trust policy, or creating the role, delivers the
// buffered records once.
func TestRoleTrustAndExistence(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, why string
		setup     func(t *testing.T, e *env)
		fix       func(t *testing.T, e *env)
	}{
		{
			name: "untrusted", why: "role arn:aws:iam::123456789012:role/untrusted: the role's trust policy does not allow firehose.amazonaws.com to assume it",
			setup: func(t *testing.T, e *env) {
				e.cli.JSON(t, nil, "iam", "create-role", "--role-name", "untrusted", "--assume-role-policy-document", trustEC2)
				e.cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "untrusted", "--policy-name", "s3", "--policy-document", putObjectPolicy("untrusted"))
			},
			fix: func(t *testing.T, e *env) {
				e.cli.JSON(t, nil, "iam", "update-assume-role-policy", "--role-name", "untrusted", "--policy-document", trustFirehose)
			},
		},
		{
			name: "missing", why: "the role arn:aws:iam::123456789012:role/missing does not exist",
			setup: func(*testing.T, *env) {},
			fix: func(t *testing.T, e *env) {
				e.cli.JSON(t, nil, "iam", "create-role", "--role-name", "missing", "--assume-role-policy-document", trustFirehose)
				e.cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "missing", "--policy-name", "s3", "--policy-document", putObjectPolicy("missing"))
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newRoleEnv(t, nil)
			c.setup(t, e)
			e.createStream(t, c.name, "--extended-s3-destination-configuration", roleConf(c.name, c.name, ""))
			e.putBatch(t, c.name, "kept\n")
			e.clock.Add(time.Minute)
			checkAccessDenied(t, e.failure(t, c.name), c.why)
			if got := e.objects(t, c.name, 0); len(got) != 0 {
				t.Fatalf("objects written with a refused role: %v", keys(got))
			}
			c.fix(t, e)
			e.retried(t, c.name, 1)
			e.settled(t, c.name, c.name, "kept\n")
		})
	}
}

// TestRoleS3Endpoint: with an S3 server the role is decided the same way
// before the PUT (sent with the server's own S3 keys): nothing reaches
// the bucket until the role may write, then the object arrives once.
func TestRoleS3Endpoint(t *testing.T) {
	// Not parallel: s3test isolates the AWS configuration with t.Setenv.
	_, s3c, b := s3Bucket(t, "role-bucket")
	ctx := context.Background()
	e := newRoleEnv(t, b)
	e.cli.JSON(t, nil, "iam", "create-role", "--role-name", "s3role", "--assume-role-policy-document", trustFirehose)
	// Allowed on another bucket only.
	e.cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "s3role", "--policy-name", "s3", "--policy-document", putObjectPolicy("other-bucket"))
	c := client(e.srv.URL)
	dest := s3dest("role-bucket", 1, 0)
	dest.RoleARN = aws.String(roleARN("s3role"))
	if _, err := c.CreateDeliveryStream(ctx, &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("to-s3"), ExtendedS3DestinationConfiguration: dest}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, &sdk.PutRecordInput{DeliveryStreamName: aws.String("to-s3"), Record: &types.Record{Data: []byte("via s3\n")}}); err != nil {
		t.Fatal(err)
	}
	checkAccessDenied(t, e.failure(t, "to-s3"), "s3:PutObject on resource: arn:aws:s3:::role-bucket/2026/03/04/05/to-s3-1-")
	if objs := s3test.Objects(t, s3c, "role-bucket", ""); len(objs) != 0 {
		t.Fatalf("objects in S3 while the role is refused: %v", keys(objs))
	}
	e.cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "s3role", "--policy-name", "s3", "--policy-document", putObjectPolicy("role-bucket"))
	var objs map[string][]byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if objs = s3test.Objects(t, s3c, "role-bucket", ""); len(objs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no object in S3 after the policy was attached")
		}
		e.clock.Add(time.Second)
	}
	for range 5 {
		e.clock.Add(time.Minute)
		time.Sleep(40 * time.Millisecond)
	}
	objs = s3test.Objects(t, s3c, "role-bucket", "")
	if len(objs) != 1 || string(objs[keys(objs)[0]]) != "via s3\n" {
		t.Fatalf("S3 holds %v", objs)
	}
}

// TestUpdateDestination: UpdateDestination merges the update into the
// destination and increments VersionId; objects after it follow the new
// prefix, buffering and compression, and the new role. A stale version
// is ConcurrentModificationException, an unknown destination id
// InvalidArgumentException, an unknown stream ResourceNotFoundException.
func TestUpdateDestination(t *testing.T) {
	t.Parallel()
	e := newRoleEnv(t, nil)
	e.cli.JSON(t, nil, "iam", "create-role", "--role-name", "writer", "--assume-role-policy-document", trustFirehose)
	e.cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "writer", "--policy-name", "s3", "--policy-document", putObjectPolicy("upd-b"))
	e.createStream(t, "upd", "--extended-s3-destination-configuration", roleConf("writer", "upd-b", "old/"))
	e.putBatch(t, "upd", "before\n")
	e.clock.Add(time.Minute)
	if got := e.objects(t, "upd-b", 1); !strings.HasPrefix(keys(got)[0], "old/") {
		t.Fatalf("objects before the update: %v", keys(got))
	}

	update := func(version string, args ...string) []string {
		return append([]string{"firehose", "update-destination", "--delivery-stream-name", "upd",
			"--current-delivery-stream-version-id", version, "--destination-id", "destinationId-000000000001"}, args...)
	}
	e.cli.JSON(t, nil, update("1", "--extended-s3-destination-update",
		`{"Prefix":"new/","CompressionFormat":"GZIP","BufferingHints":{"SizeInMBs":2,"IntervalInSeconds":120}}`)...)
	var d description
	e.cli.JSON(t, &d, "firehose", "describe-delivery-stream", "--delivery-stream-name", "upd")
	x := d.DeliveryStreamDescription.Destinations[0].ExtendedS3DestinationDescription
	if d.DeliveryStreamDescription.VersionId != "2" || x.Prefix != "new/" || x.CompressionFormat != "GZIP" || x.BufferingHints.SizeInMBs != 2 ||
		x.BufferingHints.IntervalInSeconds != 120 || x.RoleARN != roleARN("writer") || x.BucketARN != "arn:aws:s3:::upd-b" {
		t.Fatalf("after the update: version %s, destination %+v", d.DeliveryStreamDescription.VersionId, x)
	}
	var raw struct {
		DeliveryStreamDescription struct{ LastUpdateTimestamp string }
	}
	e.cli.JSON(t, &raw, "firehose", "describe-delivery-stream", "--delivery-stream-name", "upd")
	if !strings.HasPrefix(raw.DeliveryStreamDescription.LastUpdateTimestamp, "2026-03-04T05:07:07") {
		t.Errorf("LastUpdateTimestamp = %q", raw.DeliveryStreamDescription.LastUpdateTimestamp)
	}

	// The new interval: not due after 60 s, due after 120 s.
	e.putBatch(t, "upd", "after\n")
	e.clock.Add(61 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := e.objects(t, "upd-b", 0); len(got) != 1 {
		t.Fatalf("delivered before the new interval: %v", keys(got))
	}
	e.clock.Add(60 * time.Second)
	got := e.objects(t, "upd-b", 2)
	var newKey string
	for _, k := range keys(got) {
		if strings.HasPrefix(k, "new/") {
			newKey = k
		}
	}
	if !regexp.MustCompile(`^new/2026/03/04/05/upd-1-2026-03-04-05-07-07-`+uuidRE+`\.gz$`).MatchString(newKey) || string(gunzip(t, got[newKey])) != "after\n" {
		t.Fatalf("objects after the update: %v", keys(got))
	}

	// Errors, as the model names them.
	fails(t, e.cli, []string{"ConcurrentModificationException", "current version id: 2", "specified version id: 1"},
		update("1", "--extended-s3-destination-update", `{"Prefix":"stale/"}`)...)
	fails(t, e.cli, []string{"InvalidArgumentException", "Destination Id destinationId-000000000002 not found"},
		"firehose", "update-destination", "--delivery-stream-name", "upd", "--current-delivery-stream-version-id", "2",
		"--destination-id", "destinationId-000000000002", "--extended-s3-destination-update", `{"Prefix":"x/"}`)
	fails(t, e.cli, []string{"ResourceNotFoundException", "Firehose nope under account 123456789012 not found."},
		"firehose", "update-destination", "--delivery-stream-name", "nope", "--current-delivery-stream-version-id", "1",
		"--destination-id", "destinationId-000000000001", "--extended-s3-destination-update", `{"Prefix":"x/"}`)

	// The SDK: a bad member leaves the stream as it was; then a new role
	// and bucket (the role lacks s3:PutObject on it: refused, kept).
	c := client(e.srv.URL)
	ctx := context.Background()
	_, err := c.UpdateDestination(ctx, &sdk.UpdateDestinationInput{DeliveryStreamName: aws.String("upd"), CurrentDeliveryStreamVersionId: aws.String("2"),
		DestinationId: aws.String(firehose.DestinationID), ExtendedS3DestinationUpdate: &types.ExtendedS3DestinationUpdate{BucketARN: aws.String("arn:aws:s3:::Bad_Bucket")}})
	apiError(t, err, "InvalidArgumentException", "Bad_Bucket")
	_, err = c.UpdateDestination(ctx, &sdk.UpdateDestinationInput{DeliveryStreamName: aws.String("upd"), CurrentDeliveryStreamVersionId: aws.String("2"),
		DestinationId: aws.String(firehose.DestinationID), ExtendedS3DestinationUpdate: &types.ExtendedS3DestinationUpdate{
			RoleARN: aws.String(roleARN("writer")), BucketARN: aws.String("arn:aws:s3:::new-b"), CompressionFormat: types.CompressionFormatUncompressed,
			BufferingHints: &types.BufferingHints{SizeInMBs: aws.Int32(1), IntervalInSeconds: aws.Int32(60)}}})
	if err != nil {
		t.Fatal(err)
	}
	e.putBatch(t, "upd", "to nb\n")
	e.clock.Add(time.Minute)
	checkAccessDenied(t, e.failure(t, "upd"), "s3:PutObject on resource: arn:aws:s3:::new-b/new/2026/03/04/05/upd-1-")
	e.cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "writer", "--policy-name", "s3newb", "--policy-document", putObjectPolicy("new-b"))
	e.retried(t, "new-b", 1)
	e.settled(t, "upd", "new-b", "to nb\n")
	out, err := c.DescribeDeliveryStream(ctx, &sdk.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("upd")})
	if err != nil || aws.ToString(out.DeliveryStreamDescription.VersionId) != "3" {
		t.Fatalf("describe after the second update: %v, %v", out, err)
	}
}

// TestStoreBeforeUpdateDestination: a store made before UpdateDestination
// (firehose_streams without version and updated) gains the columns; its
// streams are at VersionId 1 and can be updated.
func TestStoreBeforeUpdateDestination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE firehose_streams (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,
		extended INTEGER NOT NULL, role_arn TEXT NOT NULL, bucket_arn TEXT NOT NULL, prefix TEXT NOT NULL, error_prefix TEXT NOT NULL,
		size_mb INTEGER NOT NULL, interval_s INTEGER NOT NULL, compression TEXT NOT NULL);
		INSERT INTO firehose_streams (name, created, extended, role_arn, bucket_arn, prefix, error_prefix, size_mb, interval_s, compression)
		VALUES ('old', 0, 1, 'arn:aws:iam::123456789012:role/r', 'arn:aws:s3:::bkt', 'p/', '', 5, 300, 'UNCOMPRESSED')`); err != nil {
		t.Fatal(err)
	}
	svc, err := firehose.New(ctx, db, firehose.Options{BucketsDir: filepath.Join(dir, "b")})
	if err != nil {
		t.Fatal(err)
	}
	type desc struct {
		DeliveryStreamDescription struct {
			VersionId    string
			Destinations []struct {
				ExtendedS3DestinationDescription struct{ Prefix, BucketARN string }
			}
		}
	}
	describe := func() desc {
		t.Helper()
		out, err := svc.Serve(ctx, &api.Call{Action: "DescribeDeliveryStream", Body: []byte(`{"DeliveryStreamName":"old"}`)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out)
		var d desc
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if v := describe().DeliveryStreamDescription.VersionId; v != "1" {
		t.Fatalf("VersionId %s of a stream of an old store, want 1", v)
	}
	if _, err := svc.Serve(ctx, &api.Call{Action: "UpdateDestination", Body: []byte(`{"DeliveryStreamName":"old","CurrentDeliveryStreamVersionId":"1",
		"DestinationId":"destinationId-000000000001","S3DestinationUpdate":{"Prefix":"q/"}}`)}); err != nil {
		t.Fatal(err)
	}
	d := describe().DeliveryStreamDescription
	if x := d.Destinations[0].ExtendedS3DestinationDescription; d.VersionId != "2" || x.Prefix != "q/" || x.BucketARN != "arn:aws:s3:::bkt" {
		t.Fatalf("after the update: %+v", d)
	}
}
