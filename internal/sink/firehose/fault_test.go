package firehose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
	"github.com/flowlog/flowlog/internal/spool"
)

const t0 = 1529511600 // 2018-06-20T16:20:00Z

func window(start int64, n, ifaces int) []flow.Record { return sinktest.Window(7, start, n, ifaces) }

// lines renders recs as the sink sends them: line and "\n".
func lines(recs []flow.Record) []string { return linesIn(flow.DefaultFormat(), recs) }

func linesIn(format *flow.Format, recs []flow.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = string(format.Append(nil, &recs[i])) + "\n"
	}
	return out
}

// faulty is an httptest server answering PutRecordBatch as Firehose does
// (JSON 1.1), shaping faults: refuse decides, per call and record, whether
// a record is refused (ServiceUnavailableException). It keeps the records
// it accepted, in order. Only the faults are shaped here; the sink's
// delivery to a real implementation is tested in server_test.go.
type faulty struct {
	*httptest.Server
	mu       sync.Mutex
	calls    int
	sizes    []int // records per call
	accepted []string
	refuse   func(call, i int) bool
	status   func(call int) int // non-zero: answer the whole call with it
}

func newFaulty(t *testing.T) *faulty {
	f := &faulty{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("X-Amz-Target"); got != "Firehose_20150804.PutRecordBatch" {
			http.Error(w, "unexpected target "+got, http.StatusBadRequest)
			return
		}
		var in struct {
			DeliveryStreamName string
			Records            []struct{ Data []byte }
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		call := f.calls
		f.calls++
		f.sizes = append(f.sizes, len(in.Records))
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if f.status != nil {
			if st := f.status(call); st != 0 {
				w.WriteHeader(st)
				fmt.Fprintf(w, `{"__type":"ServiceUnavailableException","message":"Slow down."}`)
				return
			}
		}
		type result struct {
			RecordId     string `json:",omitempty"`
			ErrorCode    string `json:",omitempty"`
			ErrorMessage string `json:",omitempty"`
		}
		out := struct {
			FailedPutCount   int
			Encrypted        bool
			RequestResponses []result
		}{}
		for i, rec := range in.Records {
			if f.refuse != nil && f.refuse(call, i) {
				out.FailedPutCount++
				out.RequestResponses = append(out.RequestResponses, result{ErrorCode: "ServiceUnavailableException", ErrorMessage: "Slow down."})
				continue
			}
			f.accepted = append(f.accepted, string(rec.Data))
			out.RequestResponses = append(out.RequestResponses, result{RecordId: fmt.Sprintf("r%d-%d", call, i)})
		}
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *faulty) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accepted)
}

// quickRetryer retries a whole call 3 times, 10 ms apart.
func quickRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 10 * time.Millisecond, nil })
		o.RateLimiter = noLimit{}
		o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{"ServiceUnavailableException": {}}})
	})
}

type noLimit struct{}

func (noLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noLimit) AddTokens(uint) error { return nil }

func newSink(t *testing.T, url string, mod func(*Config)) *Sink {
	t.Helper()
	client := awsfirehose.New(awsfirehose.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	cfg := Config{Stream: "flows", Format: flow.DefaultFormat(), Client: client, Retryer: quickRetryer(), PartialBackoff: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefusedRecordsResent: records Firehose refuses on their own are
// sent again, only they, until accepted; every record arrives once, in
// batches within the limits.
func TestRefusedRecordsResent(t *testing.T) {
	f := newFaulty(t)
	// The first two calls of each batch refuse every third record.
	f.refuse = func(call, i int) bool { return call%3 != 2 && i%3 == 0 }
	s := newSink(t, f.URL, nil)
	recs := window(t0, 1200, 4)
	if err := s.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Advance(t0 + 60); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, want := f.got(), lines(recs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("accepted %d records, want the %d written, each once", len(got), len(want))
	}
	for _, n := range f.sizes {
		if n > MaxBatchRecords {
			t.Fatalf("a call of %d records", n)
		}
	}
	st := s.Stats()
	if st.Records != 1200 || st.RefusedRecords == 0 || st.Skipped != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("calls of %v records; %+v", f.sizes, st)
}

// TestRefusedTooOftenRetriedBySpool: records still refused after
// PartialAttempts fail the delivery; the spool delivers the window again,
// and the records Firehose had accepted are not sent twice.
func TestRefusedTooOftenRetriedBySpool(t *testing.T) {
	t.Run("default format", func(t *testing.T) { retriedBySpool(t, flow.DefaultFormat()) })
	// Few fields: most lines of a window are identical, distinct records
	// all the same; each must arrive as often as it was written.
	few, err := flow.ParseFormat("${action} ${log-status}")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("identical lines", func(t *testing.T) { retriedBySpool(t, few) })
}

func retriedBySpool(t *testing.T, format *flow.Format) {
	f := newFaulty(t)
	var mu sync.Mutex
	refusing := true
	// While refusing: record 0 of every call is refused, the rest taken.
	f.refuse = func(call, i int) bool {
		mu.Lock()
		defer mu.Unlock()
		return refusing && i == 0
	}
	dest := newSink(t, f.URL, func(c *Config) { c.PartialAttempts = 2; c.Format = format })
	sp := sinktest.StartSpool(t, dest, spool.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond})
	var want []string
	for w := int64(t0); w < t0+180; w += 60 {
		recs := window(w, 700, 3) // 2 calls per window: 500 + 200
		if err := sp.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := sp.Advance(w + 60); err != nil {
			t.Fatal(err)
		}
		want = append(want, linesIn(format, recs)...)
	}
	waitUntil(t, "failed deliveries", func() bool { return sp.Stats().Retries >= 3 })
	if st := sp.Stats(); st.LastError == nil || !strings.Contains(st.LastError.Error(), "refused after 2 attempts") {
		t.Fatalf("spool stats while refusing: %+v", st)
	}
	mu.Lock()
	refusing = false
	mu.Unlock()
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	got := f.got()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("accepted %d records, want the %d written, each once (dedup of retried windows)", len(got), len(want))
	}
	t.Logf("%d records once each over %d calls; spool retries %d; sink %+v", len(want), len(f.sizes), sp.Stats().Retries, dest.Stats())
	if dest.Stats().Skipped == 0 {
		t.Fatal("no record of a retried window was left out: the retry path was not exercised")
	}
}

// TestThrottledCallRetried: a whole call answered 503
// ServiceUnavailableException is retried by the retryer; after the last
// attempt the error names the stream.
func TestThrottledCallRetried(t *testing.T) {
	f := newFaulty(t)
	f.status = func(call int) int {
		if call < 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	s := newSink(t, f.URL, nil)
	recs := window(t0, 10, 1)
	if err := s.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Advance(t0 + 60); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	if got := f.got(); len(got) != 10 {
		t.Fatalf("accepted %d records, want 10", len(got))
	}
	f.status = func(int) int { return http.StatusServiceUnavailable }
	if err := s.Write(recs); err != nil {
		t.Fatal(err)
	}
	err := s.Advance(t0 + 120)
	var fe *Error
	if !errors.As(err, &fe) || fe.Stream != "flows" || !strings.Contains(err.Error(), "ServiceUnavailableException") {
		t.Fatalf("always 503: %v", err)
	}
	if errors.Is(err, ErrAccessDenied) {
		t.Fatalf("503 is not an access error: %v", err)
	}
}

// TestAccessDenied: a refusal of the credentials matches ErrAccessDenied
// and says which permission is needed.
func TestAccessDenied(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"AccessDeniedException","message":"User is not authorized to perform: firehose:PutRecordBatch"}`)
	}))
	defer srv.Close()
	s := newSink(t, srv.URL, nil)
	if err := s.Write(window(t0, 3, 1)); err != nil {
		t.Fatal(err)
	}
	err := s.Advance(t0 + 60)
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "firehose:PutRecordBatch") {
		t.Fatalf("Advance = %v, want ErrAccessDenied naming firehose:PutRecordBatch", err)
	}
}

// TestAbortDuringBackoff: Abort ends the wait between resends at once.
func TestAbortDuringBackoff(t *testing.T) {
	f := newFaulty(t)
	f.refuse = func(int, int) bool { return true }
	s := newSink(t, f.URL, func(c *Config) { c.PartialBackoff = time.Hour })
	if err := s.Write(window(t0, 5, 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Advance(t0 + 60) }()
	time.Sleep(100 * time.Millisecond)
	s.Abort()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("aborted Advance succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Advance still waiting 5 s after Abort")
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
