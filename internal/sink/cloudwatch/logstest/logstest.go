// Package logstest serves the CloudWatch Logs wire protocol (AWS JSON 1.1)
// for the calls flowlog's CloudWatch Logs destination makes, for tests. It
// checks every request the SDK sends as the service would: the protocol
// headers, a SigV4 signature recomputed from the request with the test's
// secret key, and PutLogEvents' limits; requests that break them are
// refused and reported as test errors. It stores events like the service
// (refusing those more than 14 days old or 2 hours ahead) and shapes
// faults on demand: throttling, outages, denied calls. It stands in for
// the logs API of `flowlog serve` until that exists.
package logstest

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

// The credentials and region the server accepts.
const (
	Region    = "eu-west-3"
	AccessKey = "AKIDFLOWLOGTEST"
	SecretKey = "flowlog-test-secret"
)

// PutLogEvents limits the server enforces.
const (
	maxBatchEvents     = 10_000
	maxBatchBytes      = 1_048_576
	eventOverheadBytes = 26
	maxBatchSpan       = 24 * time.Hour
)

var authHeader = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/logs/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// Event is a stored log event.
type Event struct {
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// Server is a CloudWatch Logs server for one test.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	groups     map[string]map[string][]Event // group → stream → events
	ops        []string                      // "Op group [stream]" of every valid request
	violations []string
	faults     Faults
	puts       int // PutLogEvents requests accepted
}

// Faults shape the server's answers.
type Faults struct {
	Throttle int             // PutLogEvents calls to answer with ThrottlingException
	Down     bool            // answer every call with ServiceUnavailableException
	Deny     map[string]bool // operations to answer with AccessDeniedException
	Latency  time.Duration   // wait before answering, like a distant region
}

// New starts a server, stopped when the test ends; at the end, each
// request that broke the API is a test error.
func New(t testing.TB) *Server {
	s := &Server{groups: map[string]map[string][]Event{}, faults: Faults{Deny: map[string]bool{}}}
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

// URL is the server's endpoint (for AWS_ENDPOINT_URL_CLOUDWATCH_LOGS).
func (s *Server) URL() string { return s.srv.URL }

// Client returns a real SDK client configured for the server.
func (s *Server) Client() *cloudwatchlogs.Client {
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	}
	return cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) {
		o.BaseEndpoint = aws.String(s.srv.URL)
	})
}

func (s *Server) violation(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	latency := s.faults.Latency
	s.mu.Unlock()
	time.Sleep(latency)
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
	if s.faults.Down {
		writeErr(w, 503, "ServiceUnavailableException", "the service is unavailable")
		return
	}
	if s.faults.Deny[op] {
		writeErr(w, 400, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/test is not authorized to perform: logs:"+op)
		return
	}
	var in struct {
		LogGroupName  string  `json:"logGroupName"`
		LogStreamName string  `json:"logStreamName"`
		LogEvents     []Event `json:"logEvents"`
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
		s.groups[in.LogGroupName] = map[string][]Event{}
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
		g[in.LogStreamName] = []Event{}
		io.WriteString(w, "{}")
	case "PutLogEvents":
		if s.faults.Throttle > 0 {
			s.faults.Throttle--
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
		now := time.Now().UnixMilli()
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
func checkBatch(events []Event) string {
	if len(events) == 0 || len(events) > maxBatchEvents {
		return fmt.Sprintf("%d events, want 1 to %d", len(events), maxBatchEvents)
	}
	size := 0
	for i, e := range events {
		size += len(e.Message) + eventOverheadBytes
		if e.Message == "" {
			return fmt.Sprintf("event %d: empty message", i)
		}
		if i > 0 && e.Timestamp < events[i-1].Timestamp {
			return fmt.Sprintf("event %d at %d before event %d at %d: not in chronological order", i, e.Timestamp, i-1, events[i-1].Timestamp)
		}
	}
	if size > maxBatchBytes {
		return fmt.Sprintf("batch of %d bytes, want at most %d", size, maxBatchBytes)
	}
	if span := events[len(events)-1].Timestamp - events[0].Timestamp; span > maxBatchSpan.Milliseconds() {
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
		return fmt.Errorf("authorization header %q is not a SigV4 signature for logs", auth)
	}
	if m[1] != AccessKey || m[3] != Region {
		return fmt.Errorf("signed with key %s in region %s, want %s in %s", m[1], m[3], AccessKey, Region)
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
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}, req, hex.EncodeToString(sum[:]), "logs", Region, when)
	if err != nil {
		return err
	}
	if got := req.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature does not verify:\n got  %s\n want %s", auth, got)
	}
	return nil
}

// Events returns the events stored in a stream.
func (s *Server) Events(group, stream string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.groups[group][stream]...)
}

// Streams returns the streams of a group.
func (s *Server) Streams(group string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for st := range s.groups[group] {
		out = append(out, st)
	}
	return out
}

// Ops returns "Operation group [stream]" of every request served, in order.
func (s *Server) Ops() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ops...)
}

// SetFaults changes how the server answers from now on.
func (s *Server) SetFaults(fn func(*Faults)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.faults)
}
