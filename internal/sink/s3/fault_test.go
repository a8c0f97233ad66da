package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
)

// faultProxy stands between the client and the real server and answers
// some requests itself, to shape faults a real server does not produce on
// demand. Requests it lets through reach versitygw unchanged (the Host
// header stays, so signatures verify).
type faultProxy struct {
	srv   *httptest.Server
	fault func(r *http.Request) (status int, code string) // 0: pass through
	mu    sync.Mutex
	seen  []string // "METHOD query" of every request
}

func newFaultProxy(t *testing.T, target string, fault func(*http.Request) (int, string)) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{fault: fault}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.URL.RawQuery)
		p.mu.Unlock()
		if status, code := p.fault(r); status != 0 {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>shaped by the test</Message></Error>`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// client is a client of the proxy with the server's credentials.
func (p *faultProxy) client(t *testing.T) *awss3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, "")))
	if err != nil {
		t.Fatal(err)
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(p.srv.URL)
		o.UsePathStyle = true
	})
}

func (p *faultProxy) requests(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.seen {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// TestS3ThrottlingRetried: the first PUTs are throttled (503 SlowDown) and
// a server error follows; the retryer waits them out and every object
// arrives once.
func TestS3ThrottlingRetried(t *testing.T) {
	srv := s3test.Start(t)
	direct := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, direct, bucket)
	var puts atomic.Int32
	proxy := newFaultProxy(t, srv.URL, func(r *http.Request) (int, string) {
		if r.Method != http.MethodPut {
			return 0, ""
		}
		switch puts.Add(1) {
		case 1, 2:
			return http.StatusServiceUnavailable, "SlowDown"
		case 3:
			return http.StatusInternalServerError, "InternalError"
		}
		return 0, ""
	})
	s, err := New(Config{Bucket: bucket, Layout: testLayout("throttled", false), Format: flow.DefaultFormat(), Client: proxy.client(t), Retryer: fastRetryer(5)})
	if err != nil {
		t.Fatal(err)
	}
	recs := windows(6, 2, 500)
	if err := deliver(t, s, recs); err != nil {
		t.Fatalf("delivery with throttling: %v", err)
	}
	got := s3test.Objects(t, direct, bucket, "throttled/")
	if len(got) != len(s.Published()) || len(got) < 3 {
		t.Fatalf("%d objects in the bucket, %d published", len(got), len(s.Published()))
	}
	if n := proxy.requests("PUT"); n != len(got)+3 {
		t.Fatalf("%d PUTs for %d objects and 3 refusals", n, len(got))
	}
}

// TestS3MultipartAborted: one part of a multipart upload keeps failing;
// the upload is aborted, so the real server holds neither the object nor
// the parts, and the error names the key.
func TestS3MultipartAborted(t *testing.T) {
	srv := s3test.Start(t)
	direct := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, direct, bucket)
	proxy := newFaultProxy(t, srv.URL, func(r *http.Request) (int, string) {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" {
			return http.StatusInternalServerError, "InternalError"
		}
		return 0, ""
	})
	recs := make([]flow.Record, 12_000)
	raw := make([]byte, 512)
	for i := range recs {
		rand.Read(raw)
		recs[i] = flow.Record{End: t0 + int64(i%300), Extra: []string{hex.EncodeToString(raw)}}
	}
	s, err := New(Config{Bucket: bucket, Layout: testLayout("aborted", false), Format: hexLines{}, Client: proxy.client(t), GzipLevel: 1, PartSize: MinPartSize, Retryer: fastRetryer(3)})
	if err != nil {
		t.Fatal(err)
	}
	err = deliver(t, s, recs)
	if err == nil {
		t.Fatal("delivery succeeded with a part that always fails")
	}
	if !strings.Contains(err.Error(), "s3 PutObject s3://"+bucket+"/aborted/AWSLogs/") {
		t.Errorf("error %q does not name the object", err)
	}
	if proxy.requests("DELETE uploadId=") != 1 {
		t.Errorf("%d AbortMultipartUpload calls, want 1", proxy.requests("DELETE uploadId="))
	}
	if got := s3test.Objects(t, direct, bucket, ""); len(got) != 0 {
		t.Fatalf("%d objects after an aborted upload", len(got))
	}
	if ups := s3test.Uploads(t, direct, bucket); len(ups) != 0 {
		t.Fatalf("multipart uploads left after the abort: %v", ups)
	}
	if st := s.Stats(); st.Aborted != 1 || st.Objects != 0 || st.LostRecords != int64(len(recs)) {
		t.Fatalf("stats %+v", st)
	}
}
