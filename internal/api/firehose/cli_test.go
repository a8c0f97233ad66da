package firehose_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/firehose"
)

// clock is a test clock the deliverer's intervals follow.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a server with the Firehose API on a store in dir.
type env struct {
	dir     string // the store
	buckets string // the buckets directory
	db      *sql.DB
	svc     *firehose.Service
	srv     *apitest.Server
	cli     apitest.CLI
	clock   *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), clock: &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}}
	e.buckets = filepath.Join(e.dir, "buckets")
	e.open(t)
	e.srv = apitest.Start(t, api.Options{Services: []api.Service{e.svc}, Now: time.Now})
	e.cli = e.srv.NewCLI()
	return e
}

// open opens the store and starts the service on it.
func (e *env) open(t *testing.T) {
	t.Helper()
	e.db, e.svc = startService(t, e.dir, firehose.Options{AccountID: apitest.AccountID, Region: apitest.Region,
		BucketsDir: e.buckets, Now: e.clock.Now, Tick: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
}

// startService opens the store in dir and starts the Firehose service
// (its deliverer too) on it with opts; both close when t ends.
func startService(t testing.TB, dir string, opts firehose.Options) (*sql.DB, *firehose.Service) {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := firehose.New(ctx, db, opts)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	svc.Start(ctx)
	t.Cleanup(func() { svc.Stop(); db.Close() })
	return db, svc
}

func (e *env) createStream(t *testing.T, name string, extra ...string) {
	t.Helper()
	args := append([]string{"firehose", "create-delivery-stream", "--delivery-stream-name", name}, extra...)
	var out struct{ DeliveryStreamARN string }
	e.cli.JSON(t, &out, args...)
	if want := "arn:aws:firehose:us-east-1:123456789012:deliverystream/" + name; out.DeliveryStreamARN != want {
		t.Fatalf("DeliveryStreamARN = %q, want %q", out.DeliveryStreamARN, want)
	}
}

// s3conf is an --extended-s3-destination-configuration.
func s3conf(bucket, prefix string, sizeMB, interval int, compression string) string {
	b, _ := json.Marshal(map[string]any{
		"RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": prefix,
		"BufferingHints": map[string]int{"SizeInMBs": sizeMB, "IntervalInSeconds": interval}, "CompressionFormat": compression,
	})
	return string(b)
}

// recordsFile writes a --records file of the given data and returns its file:// argument.
func recordsFile(t *testing.T, data ...string) string {
	t.Helper()
	recs := make([]map[string]string, len(data))
	for i, d := range data {
		// This CLI reads blobs as base64, as AWS CLI v2 does.
		recs[i] = map[string]string{"Data": base64.StdEncoding.EncodeToString([]byte(d))}
	}
	b, _ := json.Marshal(recs)
	p := filepath.Join(t.TempDir(), "records.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + p
}

type batchOut struct {
	FailedPutCount   int
	RequestResponses []struct{ RecordId, ErrorCode, ErrorMessage string }
}

func (e *env) putBatch(t *testing.T, stream string, data ...string) batchOut {
	t.Helper()
	var out batchOut
	e.cli.JSON(t, &out, "firehose", "put-record-batch", "--delivery-stream-name", stream, "--records", recordsFile(t, data...))
	if len(out.RequestResponses) != len(data) {
		t.Fatalf("put-record-batch: %d responses for %d records", len(out.RequestResponses), len(data))
	}
	return out
}

// objects returns the objects of a bucket by key, waiting up to 10 s for
// at least n.
func (e *env) objects(t *testing.T, bucket string, n int) map[string][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := map[string][]byte{}
		root := filepath.Join(e.buckets, bucket)
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, p)
			got[filepath.ToSlash(rel)] = b
			return nil
		})
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				t.Fatalf("bucket %s: %d objects after 10 s, want %d", bucket, len(got), n)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var uuidRE = `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`

func TestCLIDeliveryByInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createStream(t, "flows", "--extended-s3-destination-configuration", s3conf("flow-bucket", "vpc/", 5, 60, "UNCOMPRESSED"),
		"--tags", "Key=team,Value=net")
	e.putBatch(t, "flows", "line one\n", "line two\n")
	e.clock.Add(30 * time.Second)
	e.putBatch(t, "flows", "line three\n")
	// The interval runs from the oldest record: nothing is due yet.
	time.Sleep(100 * time.Millisecond)
	if got := e.objects(t, "flow-bucket", 0); len(got) != 0 {
		t.Fatalf("delivered before the interval: %v", keys(got))
	}
	e.clock.Add(30 * time.Second)
	got := e.objects(t, "flow-bucket", 1)
	if len(got) != 1 {
		t.Fatalf("objects = %v, want one", keys(got))
	}
	k := keys(got)[0]
	if !regexp.MustCompile(`^vpc/2026/03/04/05/flows-1-2026-03-04-05-06-07-` + uuidRE + `$`).MatchString(k) {
		t.Errorf("object key %q is not Firehose's", k)
	}
	if want := "line one\nline two\nline three\n"; string(got[k]) != want {
		t.Errorf("object = %q, want %q", got[k], want)
	}
}

func TestCLIGzipAndSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createStream(t, "gz", "--extended-s3-destination-configuration", s3conf("gz-bucket", "", 1, 900, "GZIP"))
	// Three calls of 400 KiB each: the first two are one MiB or less, the
	// third fills the buffer past 1 MiB and triggers a delivery.
	var want []byte
	for i := range 3 {
		rec := strings.Repeat(string(rune('a'+i)), 400<<10)
		e.putBatch(t, "gz", rec)
		want = append(want, rec...)
	}
	got := e.objects(t, "gz-bucket", 1)
	var all []byte
	for _, k := range keys(got) {
		if !strings.HasSuffix(k, ".gz") || !regexp.MustCompile(`^2026/03/04/05/gz-1-2026-03-04-05-06-07-`+uuidRE+`\.gz$`).MatchString(k) {
			t.Errorf("object key %q", k)
		}
		all = append(all, gunzip(t, got[k])...)
	}
	if len(got) != 1 || len(all) != 800<<10 || !bytes.Equal(all, want[:800<<10]) {
		t.Fatalf("%d objects with %d bytes, want one of the first two calls (%d bytes)", len(got), len(all), 800<<10)
	}
}
