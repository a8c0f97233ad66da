package cloudwatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// The test server speaks the CloudWatch Logs wire protocol (AWS JSON 1.1)
// for the calls the sink makes, and checks every request the SDK sends as
// the service would: the protocol headers, a SigV4 signature recomputed
// from the request with the test's secret key, and PutLogEvents' limits.
// It stands in for the logs API of `flowlog serve`, which does not exist
// yet, and shapes faults (throttling, outages, denied calls) on demand.

const (
	testRegion = "eu-west-3"
	testKey    = "AKIDFLOWLOGTEST"
	testSecret = "flowlog-test-secret"
)

var authHeader = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/logs/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

type storedEvent struct {
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

type logsServer struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	groups     map[string]map[string][]storedEvent // group → stream → events
	ops        []string                            // "Op group stream" of every valid request
	violations []string
	throttle   int             // PutLogEvents calls to answer with ThrottlingException
	down       bool            // answer everything with ServiceUnavailableException
	deny       map[string]bool // operations to answer with AccessDeniedException
	puts       int             // PutLogEvents requests accepted
	now        func() time.Time
}

func newLogsServer(t testing.TB) *logsServer {
	s := &logsServer{t: t, groups: map[string]map[string][]storedEvent{}, deny: map[string]bool{}, now: time.Now}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, v := range s.violations {
			t.Errorf("request violates the CloudWatch Logs API: %s", v)
		}
	})
	return s
}

// client returns a real SDK client configured for the server.
func (s *logsServer) client() *cloudwatchlogs.Client {
	cfg := aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
	}
	return cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) {
		o.BaseEndpoint = aws.String(s.srv.URL)
	})
}

func (s *logsServer) violation(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func (s *logsServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		s.violation("%s %s: want POST /", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		s.violation("Content-Type %q: want application/x-amz-json-1.1", ct)
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "Logs_20140328.")
	if !ok {
		s.violation("X-Amz-Target %q: want Logs_20140328.<operation>", r.Header.Get("X-Amz-Target"))
	}
	if err := checkSignature(r, body); err != nil {
		s.violation("%s: %v", op, err)
		writeErr(w, 403, "InvalidSignatureException", err.Error())
		return
	}
	if s.down {
		writeErr(w, 503, "ServiceUnavailableException", "the service is unavailable")
		return
	}
	if s.deny[op] {
		writeErr(w, 400, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/test is not authorized to perform: logs:"+op)
		return
	}
	var in struct {
		LogGroupName  string        `json:"logGroupName"`
		LogStreamName string        `json:"logStreamName"`
		LogEvents     []storedEvent `json:"logEvents"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		s.violation("%s: body %q: %v", op, body, err)
		writeErr(w, 400, "SerializationException", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "CreateLogGroup":
		s.ops = append(s.ops, op+" "+in.LogGroupName)
		if _, ok := s.groups[in.LogGroupName]; ok {
			writeErr(w, 400, "ResourceAlreadyExistsException", "The specified log group already exists")
			return
		}
		s.groups[in.LogGroupName] = map[string][]storedEvent{}
		io.WriteString(w, "{}")
	case "CreateLogStream":
		s.ops = append(s.ops, op+" "+in.LogGroupName+" "+in.LogStreamName)
		g, ok := s.groups[in.LogGroupName]
		if !ok {
			writeErr(w, 400, "ResourceNotFoundException", "The specified log group does not exist.")
			return
		}
		if _, ok := g[in.LogStreamName]; ok {
			writeErr(w, 400, "ResourceAlreadyExistsException", "The specified log stream already exists")
			return
		}
		g[in.LogStreamName] = []storedEvent{}
		io.WriteString(w, "{}")
	case "PutLogEvents":
		if s.throttle > 0 {
			s.throttle--
			writeErr(w, 400, "ThrottlingException", "Rate exceeded")
			return
		}
		s.ops = append(s.ops, op+" "+in.LogGroupName+" "+in.LogStreamName)
		if msg := checkBatch(in.LogEvents); msg != "" {
			s.violation("PutLogEvents to %s: %s", in.LogStreamName, msg)
			writeErr(w, 400, "InvalidParameterException", msg)
			return
		}
		stream, ok := s.groups[in.LogGroupName][in.LogStreamName]
		if !ok {
			writeErr(w, 400, "ResourceNotFoundException", "The specified log stream does not exist.")
			return
		}
		// Events more than 14 days old or 2 hours ahead are refused, as the
		// service does; the rest are stored.
		now := s.now().UnixMilli()
		tooOld, tooNew := 0, len(in.LogEvents)
		for i, e := range in.LogEvents {
			if e.Timestamp < now-14*24*3600*1000 {
				tooOld = i + 1
			}
			if e.Timestamp > now+2*3600*1000 && tooNew == len(in.LogEvents) {
				tooNew = i
			}
		}
		s.groups[in.LogGroupName][in.LogStreamName] = append(stream, in.LogEvents[tooOld:max(tooOld, tooNew)]...)
		s.puts++
		out := map[string]any{"nextSequenceToken": fmt.Sprint(s.puts)}
		rej := map[string]int{}
		if tooOld > 0 {
			rej["tooOldLogEventEndIndex"] = tooOld
		}
		if tooNew < len(in.LogEvents) {
			rej["tooNewLogEventStartIndex"] = tooNew
		}
		if len(rej) > 0 {
			out["rejectedLogEventsInfo"] = rej
		}
		json.NewEncoder(w).Encode(out)
	default:
		s.violation("unexpected operation %q", op)
		writeErr(w, 400, "UnknownOperationException", op)
	}
}

// checkBatch applies PutLogEvents' limits to a batch.
func checkBatch(events []storedEvent) string {
	if len(events) == 0 || len(events) > MaxBatchEvents {
		return fmt.Sprintf("%d events, want 1 to %d", len(events), MaxBatchEvents)
	}
	size := 0
	for i, e := range events {
		size += len(e.Message) + EventOverheadBytes
		if e.Message == "" {
			return fmt.Sprintf("event %d: empty message", i)
		}
		if i > 0 && e.Timestamp < events[i-1].Timestamp {
			return fmt.Sprintf("event %d at %d before event %d at %d: not in chronological order", i, e.Timestamp, i-1, events[i-1].Timestamp)
		}
	}
	if size > MaxBatchBytes {
		return fmt.Sprintf("batch of %d bytes, want at most %d", size, MaxBatchBytes)
	}
	if span := events[len(events)-1].Timestamp - events[0].Timestamp; span > MaxBatchSpan.Milliseconds() {
		return fmt.Sprintf("batch spans %d ms, want at most 24 h", span)
	}
	return ""
}

// checkSignature recomputes the request's SigV4 signature with the test
// secret, over the headers the request says it signed, and compares.
func checkSignature(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	m := authHeader.FindStringSubmatch(auth)
	if m == nil {
		return fmt.Errorf("Authorization %q is not a SigV4 signature for logs", auth)
	}
	if m[1] != testKey || m[3] != testRegion {
		return fmt.Errorf("signed with key %s in region %s, want %s in %s", m[1], m[3], testKey, testRegion)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date %q: %v", r.Header.Get("X-Amz-Date"), err)
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(m[4], ";") {
		if h == "host" {
			continue
		}
		req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	req.Header.Del("X-Amz-Date")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, hex.EncodeToString(sum[:]), "logs", testRegion, when)
	if err != nil {
		return err
	}
	if got := req.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature does not verify:\n got  %s\n want %s", auth, got)
	}
	return nil
}

// events returns the events stored in a stream.
func (s *logsServer) events(group, stream string) []storedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]storedEvent(nil), s.groups[group][stream]...)
}

func (s *logsServer) streams(group string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for st := range s.groups[group] {
		out = append(out, st)
	}
	return out
}

func (s *logsServer) opLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ops...)
}

func (s *logsServer) set(fn func(*logsServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}
