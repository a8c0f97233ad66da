package s3

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
	"github.com/flowlog/flowlog/internal/spool"
)

// TestS3BehindSpoolOutage puts the S3 destination behind the spool, as the
// agent does, and takes the server away for a while in the middle of the
// records: once it is back, the bucket holds exactly the objects the
// directory destination writes from the same records, byte for byte:
// nothing lost, and the retried uploads overwrote rather than duplicated.
func TestS3BehindSpoolOutage(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, client, bucket)
	recs := windows(7, 6, 1500)

	root := t.TempDir()
	dir, err := sink.NewDir(sink.DirConfig{Root: root, Layout: testLayout("", true), Format: flow.DefaultFormat()})
	if err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, dir, recs); err != nil {
		t.Fatal(err)
	}
	want := dirObjects(t, root)

	s, err := New(Config{Bucket: bucket, Layout: testLayout("spooled", true), Format: flow.DefaultFormat(), Client: client, Retryer: fastRetryer(2)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := spool.DefaultConfig(t.TempDir())
	cfg.Durable = spool.ObjectDurable
	cfg.Retry = spool.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	sp, err := spool.New(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	third := len(recs) / 3
	write := func(part []flow.Record) {
		for i := 0; i < len(part); i += 500 {
			if err := sp.Write(part[i:min(i+500, len(part))]); err != nil {
				t.Fatal(err)
			}
			if err := sp.Advance(part[min(i+500, len(part)-1)].Start); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(recs[:third])
	srv.Stop()
	write(recs[third : 2*third])
	deadline := time.Now().Add(20 * time.Second)
	for sp.Stats().Retries < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery while the server was down: %+v", sp.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Restart(t)
	write(recs[2*third:])
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	got := s3test.Objects(t, client, bucket, "spooled/")
	if len(got) != len(want) {
		t.Fatalf("%d objects in the bucket, the directory destination wrote %d", len(got), len(want))
	}
	for key, b := range want {
		if !bytes.Equal(got["spooled/"+key], b) {
			t.Fatalf("s3 object %s differs from the directory's", key)
		}
	}
	if st := sp.Stats(); st.DroppedRecords != 0 || st.Retries == 0 {
		t.Fatalf("spool stats %+v", st)
	}
	if ups := s3test.Uploads(t, client, bucket); len(ups) != 0 {
		t.Fatalf("multipart uploads left: %v", ups)
	}
}
