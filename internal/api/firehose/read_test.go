package firehose_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/firehose"
)

// readBack reads what stream delivered through the service's read-only
// API (Destination, Objects), as the web console does: key -> content.
func readBack(t *testing.T, svc *firehose.Service, stream, prefix string) (firehose.Destination, map[string]string) {
	t.Helper()
	ctx := context.Background()
	d, err := svc.Destination(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	objs := svc.Objects()
	if objs == nil {
		t.Fatal("Objects() = nil")
	}
	out := map[string]string{}
	err = objs.List(ctx, d.Bucket, prefix, func(o firehose.Object) error {
		rc, err := objs.Open(ctx, o.Bucket, o.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if int64(len(b)) != o.Size || !strings.HasSuffix(o.Name, o.Key) {
			t.Errorf("object %+v: %d bytes read", o, len(b))
		}
		out[o.Key] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, out
}

// TestReadBackDir: Destination says where a stream delivers, and the
// buckets directory lists (by any key prefix, also one that ends inside a
// folder name) and opens what it delivered; a missing stream is
// ResourceNotFoundException, a key leaving the bucket is refused.
func TestReadBackDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := client(e.srv.URL)
	ctx := context.Background()
	dest := s3dest("read-bucket", 1, 0)
	dest.Prefix = aws.String("logs/a-")
	if _, err := c.CreateDeliveryStream(ctx, &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("back"), ExtendedS3DestinationConfiguration: dest}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, &sdk.PutRecordInput{DeliveryStreamName: aws.String("back"), Record: &types.Record{Data: []byte("one\n")}}); err != nil {
		t.Fatal(err)
	}
	e.objects(t, "read-bucket", 1)
	for _, prefix := range []string{"", "logs/", "logs/a", "logs/a-", "logs/a-2"} {
		d, got := readBack(t, e.svc, "back", prefix)
		if d.Bucket != "read-bucket" || d.Prefix != "logs/a-" || d.GZIP || d.Stream != "back" || !strings.HasSuffix(d.StreamARN, ":deliverystream/back") {
			t.Fatalf("destination %+v", d)
		}
		if len(got) != 1 {
			t.Fatalf("prefix %q: %d objects", prefix, len(got))
		}
		for k, v := range got {
			if !strings.HasPrefix(k, "logs/a-") || !strings.Contains(k, "/back-1-") || v != "one\n" {
				t.Errorf("prefix %q: %s = %q", prefix, k, v)
			}
		}
	}
	for _, prefix := range []string{"logs/b", "other/", "logs/a-1999/"} {
		if _, got := readBack(t, e.svc, "back", prefix); len(got) != 0 {
			t.Errorf("prefix %q: %d objects, want none", prefix, len(got))
		}
	}
	if _, err := e.svc.Destination(ctx, "missing"); api.AsError(err).Code != "ResourceNotFoundException" {
		t.Errorf("Destination of a missing stream: %v", err)
	}
	if _, err := e.svc.Objects().Open(ctx, "read-bucket", "../../etc/passwd"); err == nil || !strings.Contains(err.Error(), "not a clean relative path") {
		t.Errorf("open a key leaving the bucket: %v", err)
	}
	if err := e.svc.Objects().List(ctx, "read-bucket", "../x", func(firehose.Object) error { return errors.New("listed") }); err == nil || !strings.Contains(err.Error(), "not a clean relative path") {
		t.Errorf("list a prefix leaving the bucket: %v", err)
	}
}
