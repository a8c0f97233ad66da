package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api/apitest"
)

// TestServeFirehoseRole: `flowlog serve` delivers a stream's records as
// its role, through the IAM service built after the Firehose part: a
// role without s3:PutObject writes nothing and DescribeDeliveryStream
// says S3.AccessDenied; once the policy is attached the record arrives.
func TestServeFirehoseRole(t *testing.T) {
	apitest.RequireCLI(t)
	dir := t.TempDir()
	cfgPath := writeServeConfig(t, dir, "")
	srv := startServe(t, "--config", cfgPath)
	cli := apitest.CLI{URL: srv.url, AccessKey: apitest.AccessKey, SecretKey: apitest.SecretKey, Region: apitest.Region}
	cli.JSON(t, nil, "iam", "create-role", "--role-name", "fh", "--assume-role-policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	// IntervalInSeconds 0, which this CLI's older model refuses client-side.
	noValidation := cli
	noValidation.Env = []string{"AWS_CONFIG_FILE=" + writeTestFile(t, "[default]\nparameter_validation = false\n")}
	noValidation.JSON(t, nil, "firehose", "create-delivery-stream", "--delivery-stream-name", "s", "--extended-s3-destination-configuration",
		`{"RoleARN":"arn:aws:iam::`+apitest.AccountID+`:role/fh","BucketARN":"arn:aws:s3:::fh-bucket","BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":0}}`)
	cli.JSON(t, nil, "firehose", "put-record", "--delivery-stream-name", "s", "--record", "Data=aGVsbG8K") // "hello\n"

	var d struct {
		DeliveryStreamDescription struct {
			FailureDescription *struct{ Type, Details string }
		}
	}
	for deadline := time.Now().Add(15 * time.Second); d.DeliveryStreamDescription.FailureDescription == nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no delivery failure described for a role without s3:PutObject")
		}
		cli.JSON(t, &d, "firehose", "describe-delivery-stream", "--delivery-stream-name", "s")
	}
	if f := d.DeliveryStreamDescription.FailureDescription; f.Type != "UNKNOWN_ERROR" || !strings.HasPrefix(f.Details, "S3.AccessDenied: ") ||
		!strings.Contains(f.Details, "assumed-role/fh/flowlog-delivery is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::fh-bucket/") {
		t.Fatalf("failure description %+v", f)
	}
	bucket := filepath.Join(dir, "data", "firehose-buckets", "fh-bucket")
	if n := countBucketObjects(t, bucket); n != 0 {
		t.Fatalf("%d objects written without s3:PutObject", n)
	}
	cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "fh", "--policy-name", "s3", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::fh-bucket/*"}]}`)
	// Retries back off from 1 s doubling: the next comes within seconds.
	for deadline := time.Now().Add(20 * time.Second); countBucketObjects(t, bucket) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no object after the policy was attached")
		}
	}
	if n := countBucketObjects(t, bucket); n != 1 {
		t.Fatalf("%d objects, want 1", n)
	}
	srv.stop(t)
}

// countBucketObjects counts the files under dir (none when it does not exist),
// leaving out temporary files.
func countBucketObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
