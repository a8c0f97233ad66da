package s3

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/parquet"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
)

// t0 is the period of the spec's example key, 2018-06-20 16:20 UTC.
var t0 = time.Date(2018, 6, 20, 16, 20, 0, 0, time.UTC).Unix()

const bucket = "flow-logs"

var okFields = flow.FieldSet(0).With(flow.FieldVersion).With(flow.FieldAccountID).With(flow.FieldInterfaceID).
	With(flow.FieldSrcAddr).With(flow.FieldDstAddr).With(flow.FieldSrcPort).With(flow.FieldDstPort).
	With(flow.FieldProtocol).With(flow.FieldPackets).With(flow.FieldBytes).With(flow.FieldStart).
	With(flow.FieldEnd).With(flow.FieldAction).With(flow.FieldLogStatus)

// windows returns n OK records in each of w consecutive 10-minute windows
// from t0, sorted by start as the flow table emits them, from a fixed seed.
func windows(seed uint64, w, n int) []flow.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	var recs []flow.Record
	for i := range w {
		start := t0 + int64(i)*600
		win := make([]flow.Record, n)
		for j := range win {
			s := start + rng.Int64N(600)
			win[j] = flow.Record{
				Present: okFields, Version: 2, AccountID: "123456789012", InterfaceID: "eni-0123456789abcdef0",
				SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(256)), byte(rng.IntN(256))}),
				DstAddr: netip.AddrFrom4([4]byte{172, 31, byte(rng.IntN(256)), byte(rng.IntN(256))}),
				SrcPort: uint16(rng.IntN(65536)), DstPort: uint16(rng.IntN(1024)), Protocol: 6,
				Packets: 1 + rng.Uint64N(100), Bytes: 40 + rng.Uint64N(150000),
				Start: s, End: s + rng.Int64N(start+600-s), Action: flow.ActionAccept, LogStatus: flow.LogStatusOK,
			}
		}
		slices.SortStableFunc(win, func(a, b flow.Record) int { return int(a.Start - b.Start) })
		recs = append(recs, win...)
	}
	return recs
}

func testLayout(prefix string, pq bool) sink.Layout {
	return sink.Layout{Prefix: prefix, AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-1234abcd", Parquet: pq}
}

// fastRetryer retries like DefaultRetryer but without waiting long, so
// fault tests end quickly.
func fastRetryer(attempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.MaxBackoff = 50 * time.Millisecond
		o.RateLimiter = noLimit{}
	})
}

type noLimit struct{}

func (noLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noLimit) AddTokens(uint) error { return nil }

// deliver writes recs in batches as the pipeline does, advancing the
// watermark as windows close, and closes the destination.
func deliver(t testing.TB, d interface {
	Write([]flow.Record) error
	Advance(int64) error
	Close() error
}, recs []flow.Record) error {
	t.Helper()
	for i := 0; i < len(recs); i += 1000 {
		if err := d.Write(recs[i:min(i+1000, len(recs))]); err != nil {
			return err
		}
		if err := d.Advance(recs[min(i+1000, len(recs)-1)].Start); err != nil {
			return err
		}
	}
	return d.Close()
}

// dirObjects returns the files a directory destination wrote, by key.
func dirObjects(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestS3MatchesDir writes the same records to the directory destination
// and to a bucket on a real S3 server, as text, gzip'd Parquet and zstd'd
// Parquet, with a prefix and cut objects: the bucket holds exactly the
// directory's objects under the prefix, byte for byte.
func TestS3MatchesDir(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, client, bucket)
	recs := windows(1, 3, 3000)
	for _, tc := range []struct {
		name   string
		prefix string
		pq     bool
		codec  parquet.Codec
		hive   bool
	}{
		{"text", "flows/text", false, "", false},
		{"parquet gzip", "flows/parquet-gzip", true, parquet.Gzip, false},
		{"parquet zstd hive", "flows/parquet-zstd", true, parquet.Zstd, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layout := testLayout(tc.prefix, tc.pq)
			layout.Hive, layout.PerHour = tc.hive, tc.hive
			root := t.TempDir()
			dirLayout := layout
			dirLayout.Prefix = ""
			dir, err := sink.NewDir(sink.DirConfig{Root: root, Layout: dirLayout, Format: flow.DefaultFormat(), MaxObjectBytes: 100_000, ParquetCompression: tc.codec})
			if err != nil {
				t.Fatal(err)
			}
			if err := deliver(t, dir, recs); err != nil {
				t.Fatal(err)
			}
			s, err := New(Config{Bucket: bucket, Layout: layout, Format: flow.DefaultFormat(), Client: client, MaxObjectBytes: 100_000, ParquetCompression: tc.codec})
			if err != nil {
				t.Fatal(err)
			}
			if err := deliver(t, s, recs); err != nil {
				t.Fatal(err)
			}
			want := dirObjects(t, root)
			got := s3test.Objects(t, client, bucket, tc.prefix+"/")
			if len(want) < 8 {
				t.Fatalf("the directory has %d objects: the test wants several periods and cuts", len(want))
			}
			if len(got) != len(want) {
				t.Fatalf("bucket has %d objects under %s/, the directory %d", len(got), tc.prefix, len(want))
			}
			for key, b := range want {
				if !bytes.Equal(got[tc.prefix+"/"+key], b) {
					t.Fatalf("s3://%s/%s/%s differs from the directory's object (%d and %d bytes)", bucket, tc.prefix, key, len(got[tc.prefix+"/"+key]), len(b))
				}
			}
			pub := s.Published()
			if len(pub) != len(want) || !strings.HasPrefix(pub[0], tc.prefix+"/AWSLogs/") {
				t.Fatalf("Published() = %d keys starting %q", len(pub), pub[0])
			}
			st := s.Stats()
			if st.Objects != int64(len(want)) || st.Records != int64(len(recs)) || st.LostObjects != 0 || st.Multipart != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
	if ups := s3test.Uploads(t, client, bucket); len(ups) != 0 {
		t.Fatalf("multipart uploads left: %v", ups)
	}
}

// hexLines renders each record as its Extra[0]: incompressible-ish text
// makes a large compressed object from few records.
type hexLines struct{}

func (hexLines) Header() string                         { return "line" }
func (hexLines) Append(b []byte, r *flow.Record) []byte { return append(b, r.Extra[0]...) }

// TestS3Multipart uploads an object larger than two parts: it arrives in
// one piece (the ETag of a multipart upload, the directory's bytes).
func TestS3Multipart(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, client, bucket)
	recs := make([]flow.Record, 12_000)
	raw := make([]byte, 512)
	for i := range recs {
		crand.Read(raw)
		recs[i] = flow.Record{End: t0 + int64(i%300), Extra: []string{hex.EncodeToString(raw)}}
	}
	root := t.TempDir()
	dir, err := sink.NewDir(sink.DirConfig{Root: root, Layout: testLayout("", false), Format: hexLines{}, GzipLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, dir, recs); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Bucket: bucket, Layout: testLayout("big", false), Format: hexLines{}, Client: client, GzipLevel: 1, PartSize: MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, s, recs); err != nil {
		t.Fatal(err)
	}
	want := dirObjects(t, root)
	if len(want) != 1 {
		t.Fatalf("%d objects, want 1", len(want))
	}
	for key, b := range want {
		if int64(len(b)) < 2*MinPartSize {
			t.Fatalf("object of %d bytes: the test wants more than two parts", len(b))
		}
		got := s3test.Objects(t, client, bucket, "big/")
		if !bytes.Equal(got["big/"+key], b) {
			t.Fatalf("s3 object of %d bytes, directory's %d", len(got["big/"+key]), len(b))
		}
		head, err := client.HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("big/" + key)})
		if err != nil {
			t.Fatal(err)
		}
		if etag := aws.ToString(head.ETag); !strings.Contains(etag, "-") {
			t.Fatalf("ETag %s: not that of a multipart upload", etag)
		}
	}
	if st := s.Stats(); st.Multipart != 1 || st.Aborted != 0 {
		t.Fatalf("stats %+v, want one multipart upload", st)
	}
	if ups := s3test.Uploads(t, client, bucket); len(ups) != 0 {
		t.Fatalf("multipart uploads left: %v", ups)
	}
}

// TestS3ServerDown stops the server before the objects are uploaded: Close
// reports which object could not be written and why, and once the server
// is back, the bucket holds nothing partial.
func TestS3ServerDown(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, client, bucket)
	s, err := New(Config{Bucket: bucket, Layout: testLayout("down", false), Format: flow.DefaultFormat(), Client: client, Retryer: fastRetryer(3)})
	if err != nil {
		t.Fatal(err)
	}
	recs := windows(2, 1, 2000)
	if err := s.Write(recs); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err = s.Close()
	if err == nil {
		t.Fatal("Close succeeded with the server down")
	}
	for _, want := range []string{"s3 PutObject s3://" + bucket + "/down/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if errors.Is(err, ErrAccessDenied) {
		t.Errorf("a refused connection reads as access denied: %v", err)
	}
	if st := s.Stats(); st.Objects != 0 || st.LostObjects == 0 || st.LostRecords != int64(len(recs)) {
		t.Errorf("stats %+v: want the objects counted as lost", st)
	}
	srv.Restart(t)
	if got := s3test.Objects(t, client, bucket, ""); len(got) != 0 {
		t.Fatalf("objects after a failed upload: %v", slices.Collect(mapsKeys(got)))
	}
}

// TestS3WrongCredentials: an unknown access key and a wrong secret are
// reported as access denied, naming the bucket and the key.
func TestS3WrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	good := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, good, bucket)
	for _, creds := range [][2]string{{"nosuchkey", s3test.SecretKey}, {s3test.AccessKey, "wrongsecret"}} {
		client := srv.Client(t, creds[0], creds[1])
		s, err := New(Config{Bucket: bucket, Layout: testLayout("", false), Format: flow.DefaultFormat(), Client: client, Retryer: fastRetryer(3)})
		if err != nil {
			t.Fatal(err)
		}
		err = deliver(t, s, windows(3, 1, 100))
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("credentials %v: error %v, want access denied", creds, err)
		}
		for _, want := range []string{"s3 PutObject s3://" + bucket + "/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_2018062", "access denied", "s3:PutObject on bucket " + bucket} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	}
	if got := s3test.Objects(t, good, bucket, ""); len(got) != 0 {
		t.Fatalf("objects written with wrong credentials: %d", len(got))
	}
}

// TestS3NoSuchBucket: a missing bucket is named as such.
func TestS3NoSuchBucket(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s, err := New(Config{Bucket: "no-such-bucket", Layout: testLayout("", false), Format: flow.DefaultFormat(), Client: client, Retryer: fastRetryer(2)})
	if err != nil {
		t.Fatal(err)
	}
	err = deliver(t, s, windows(4, 1, 10))
	if err == nil || !strings.Contains(err.Error(), "bucket no-such-bucket does not exist") {
		t.Fatalf("error %v, want one naming the missing bucket", err)
	}
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	client := awss3.New(awss3.Options{Region: "us-east-1"})
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Bucket: "Bad_Bucket", Client: client}, `s3 bucket "Bad_Bucket"`},
		{Config{Bucket: "ab", Client: client}, `s3 bucket "ab"`},
		{Config{Bucket: "b-", Client: client}, `s3 bucket "b-"`},
		{Config{Bucket: "bucket"}, "s3 client: missing"},
		{Config{Bucket: "bucket", Client: client, PartSize: 1 << 20}, "s3 part size 1048576: want at least 5242880"},
		{Config{Bucket: "bucket", Client: client, Concurrency: -1}, "s3 concurrency -1"},
		{Config{Bucket: "bucket", Client: client, Layout: testLayout("AWSLogs", false), Format: flow.DefaultFormat()}, "AWSLogs may not be used"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, loc := range []struct{ in, bucket, prefix string }{
		{"bucket", "bucket", ""},
		{"bucket/a/b", "bucket", "a/b"},
		{"my.bucket-1/x/", "my.bucket-1", "x"},
	} {
		got, err := ParseLocation(loc.in)
		if err != nil || got.Bucket != loc.bucket || got.Prefix != loc.prefix {
			t.Errorf("ParseLocation(%q) = %+v, %v", loc.in, got, err)
		}
	}
	if _, err := ParseLocation("UPPER/x"); err == nil {
		t.Error("ParseLocation accepted an uppercase bucket")
	}
	for _, bad := range []string{"ftp://host", "127.0.0.1:7070", "http://"} {
		if err := (ClientConfig{EndpointURL: bad}).Validate(); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
}

// TestNewClientRegion: without a region and without an endpoint there is
// nothing to sign for; with an endpoint, us-east-1.
func TestNewClientRegion(t *testing.T) {
	s3test.Isolate(t)
	if _, err := NewClient(context.Background(), ClientConfig{}); err == nil || !strings.Contains(err.Error(), "s3 region: not set") {
		t.Fatalf("NewClient without a region: %v", err)
	}
	c, err := NewClient(context.Background(), ClientConfig{EndpointURL: "http://127.0.0.1:1"})
	if err != nil || c.Options().Region != DefaultEndpointRegion {
		t.Fatalf("NewClient with an endpoint: %v", err)
	}
	t.Setenv("AWS_REGION", "eu-west-3")
	if c, err := NewClient(context.Background(), ClientConfig{}); err != nil || c.Options().Region != "eu-west-3" {
		t.Fatalf("NewClient with AWS_REGION: %v", err)
	}
}
