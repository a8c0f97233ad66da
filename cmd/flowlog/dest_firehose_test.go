package main

import (
	"context"
	"io/fs"
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

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	fhapi "github.com/flowlog/flowlog/internal/api/firehose"
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
