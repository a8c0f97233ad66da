package firehose

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
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
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	fhapi "github.com/flowlog/flowlog/internal/api/firehose"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
	"github.com/flowlog/flowlog/internal/spool"
)

// server is `flowlog serve`'s Firehose API on loopback, whose HTTP side
// can be stopped and started again on the same address (the service and
// its store stay).
type server struct {
	t       testing.TB
	svc     *fhapi.Service
	handler http.Handler
	addr    string
	URL     string
	buckets string
	stop    func()
}

// startServer starts the Firehose service (deliverer not started unless
// deliver) and serves it on a free port.
func startServer(t testing.TB, deliver bool) *server {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, buckets: t.TempDir()}
	s.svc, err = fhapi.New(ctx, db, fhapi.Options{AccountID: apitest.AccountID, Region: apitest.Region, BucketsDir: s.buckets, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.svc.Stop(); db.Close() })
	if deliver {
		s.svc.Start(ctx)
	}
	s.handler, err = api.New(api.Options{
		Credentials: api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}},
		Services:    []api.Service{s.svc},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.listen("127.0.0.1:0")
	t.Cleanup(func() { s.down() })
	return s
}

func (s *server) listen(addr string) {
	s.t.Helper()
	var ln net.Listener
	var err error
	// The port of a server just stopped may take a moment to be free.
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.URL = "http://" + s.addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.ListenAndServe(ctx, ln, s.handler, time.Second, "", "") }()
	s.stop = func() { cancel(); <-done }
}

// down stops serving HTTP (connections are refused).
func (s *server) down() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// up serves again on the same address.
func (s *server) up() { s.listen(s.addr) }

func (s *server) client(secret string) *awsfirehose.Client {
	return awsfirehose.New(awsfirehose.Options{
		Region: apitest.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, secret, ""),
	})
}

// createStream creates a DirectPut stream writing bucket "flows" with the
// given buffering, uncompressed.
func (s *server) createStream(name string, sizeMB, intervalS int32) {
	s.t.Helper()
	_, err := s.client(apitest.SecretKey).CreateDeliveryStream(context.Background(), &awsfirehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String(name),
		DeliveryStreamType: types.DeliveryStreamTypeDirectPut,
		ExtendedS3DestinationConfiguration: &types.ExtendedS3DestinationConfiguration{
			BucketARN:      aws.String("arn:aws:s3:::flows"),
			RoleARN:        aws.String("arn:aws:iam::" + apitest.AccountID + ":role/firehose"),
			BufferingHints: &types.BufferingHints{SizeInMBs: aws.Int32(sizeMB), IntervalInSeconds: aws.Int32(intervalS)},
		},
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// objects returns the delivered objects of bucket "flows", by key.
func (s *server) objects() map[string][]byte {
	s.t.Helper()
	out := map[string][]byte{}
	root := filepath.Join(s.buckets, "flows")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = data
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// delivered waits until the objects hold want lines (or more) and
// returns their lines, sorted.
func (s *server) delivered(want int) []string {
	s.t.Helper()
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = got[:0]
		for key, data := range s.objects() {
			if len(data) > 0 && data[len(data)-1] != '\n' {
				s.t.Fatalf("object %s does not end in a line end", key)
			}
			for l := range strings.SplitAfterSeq(string(data), "\n") {
				if l != "" {
					got = append(got, l)
				}
			}
		}
		if len(got) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(got)
	return got
}

// TestDeliversToServer: a window's records arrive in the delivered object
// byte for byte, in order, one line each.
func TestDeliversToServer(t *testing.T) {
	srv := startServer(t, false)
	srv.createStream("vpc-flows", 128, 0)
	s, err := New(Config{Stream: "vpc-flows", Format: flow.DefaultFormat(), Client: srv.client(apitest.SecretKey)})
	if err != nil {
		t.Fatal(err)
	}
	recs := window(t0, 1200, 4)
	if err := s.Write(recs[:700]); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(recs[700:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != 1200 || st.Requests != 3 {
		t.Fatalf("stats %+v, want 1200 records in 3 calls (500, 500, 200)", st)
	}
	// Delivered once the deliverer runs: the buffer is then one object.
	srv.svc.Start(context.Background())
	srv.delivered(1200)
	objs := srv.objects()
	if len(objs) != 1 {
		t.Fatalf("%d objects, want 1", len(objs))
	}
	want := []byte(strings.Join(lines(recs), ""))
	for key, data := range objs {
		if !bytes.Equal(data, want) {
			t.Fatalf("object %s: %d bytes, want the %d bytes of the records' lines in order", key, len(data), len(want))
		}
		if !strings.HasPrefix(filepath.Base(key), "vpc-flows-1-") {
			t.Fatalf("object key %s: not named after the stream", key)
		}
		t.Logf("object %s: %d records, %d bytes, byte-exact", key, len(recs), len(data))
	}
}

// TestLargeWindowSplits: a window of more than 4 MiB of lines goes in
// several calls within the limits, all of it delivered once.
func TestLargeWindowSplits(t *testing.T) {
	srv := startServer(t, true)
	srv.createStream("big", 1, 0)
	s, err := New(Config{Stream: "big", Format: flow.DefaultFormat(), Client: srv.client(apitest.SecretKey)})
	if err != nil {
		t.Fatal(err)
	}
	recs := window(t0, 40_000, 50)
	want := lines(recs)
	total := 0
	for _, l := range want {
		total += len(l)
	}
	if total <= MaxBatchBytes {
		t.Fatalf("window of %d bytes: want more than 4 MiB", total)
	}
	began := time.Now()
	if err := s.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	st := s.Stats()
	if st.Records != 40_000 || st.Requests != 80 || st.Bytes != uint64(total) {
		t.Fatalf("stats %+v, want 40,000 records, %d bytes in 80 calls", st, total)
	}
	got := srv.delivered(len(want))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d lines, want the %d records once each", len(got), len(want))
	}
	t.Logf("%d records, %.1f MiB in %d calls: %v (%.0f records/s); %d objects", st.Records, float64(total)/(1<<20), st.Requests, took.Round(time.Millisecond),
		float64(st.Records)/took.Seconds(), len(srv.objects()))
}

// TestServerDownRetriedBySpool: with the server down, delivery fails and
// the spool retries; once it is back every record is in the objects
// exactly once.
func TestServerDownRetriedBySpool(t *testing.T) {
	srv := startServer(t, true)
	srv.createStream("flows", 1, 0)
	dest, err := New(Config{Stream: "flows", Format: flow.DefaultFormat(), Client: srv.client(apitest.SecretKey), Retryer: quickRetryer(), CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sp := sinktest.StartSpool(t, dest, spool.Retry{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond})
	var want []string
	w := int64(t0)
	produce := func(n int) {
		for range n {
			recs := window(w, 800, 5)
			if err := sp.Write(recs); err != nil {
				t.Fatal(err)
			}
			if err := sp.Advance(w + 60); err != nil {
				t.Fatal(err)
			}
			want = append(want, lines(recs)...)
			w += 60
		}
	}
	produce(3)
	waitUntil(t, "the first windows delivered", func() bool { return sp.Stats().BacklogBytes == 0 })
	srv.down()
	produce(4)
	waitUntil(t, "failed deliveries", func() bool { return sp.Stats().Retries >= 3 })
	if st := sp.Stats(); st.BacklogBytes == 0 || st.LastError == nil || !strings.Contains(st.LastError.Error(), "firehose PutRecordBatch to delivery stream flows") {
		t.Fatalf("while the server is down: spool %+v", st)
	}
	t.Logf("server down: %v", sp.Stats().LastError)
	srv.up()
	produce(2)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	got := srv.delivered(len(want))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d lines, want the %d records once each", len(got), len(want))
	}
	t.Logf("%d records once each; spool retries %d; sink %+v", len(want), sp.Stats().Retries, dest.Stats())
}

// TestWrongKeyDenied: the server refusing the signature is an access
// error naming the permission.
func TestWrongKeyDenied(t *testing.T) {
	srv := startServer(t, false)
	srv.createStream("flows", 1, 60)
	s, err := New(Config{Stream: "flows", Format: flow.DefaultFormat(), Client: srv.client("not-the-secret"), Retryer: quickRetryer()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(window(t0, 5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Advance(t0 + 60); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("Advance with a wrong secret = %v, want ErrAccessDenied", err)
	}
	// A stream that does not exist is not an access error.
	s2, _ := New(Config{Stream: "nope", Format: flow.DefaultFormat(), Client: srv.client(apitest.SecretKey), Retryer: quickRetryer()})
	s2.Write(window(t0, 5, 1))
	if err := s2.Advance(t0 + 60); err == nil || errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("Advance to a missing stream = %v, want ResourceNotFoundException", err)
	}
}
