package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Protocol is the wire protocol of a service's API.
type Protocol int

const (
	// ProtocolEC2Query is EC2's Query protocol: form-encoded POST,
	// Action=…, XML answers, errors as <Response><Errors><Error>.
	ProtocolEC2Query Protocol = iota
	// ProtocolAWSQuery is the Query protocol of IAM and STS: errors as
	// <ErrorResponse><Error><Type>…</Type>.
	ProtocolAWSQuery
	// ProtocolJSON11 is the JSON 1.1 protocol of CloudWatch Logs: POST /
	// with X-Amz-Target: PREFIX.Operation, errors as {"__type":…}.
	ProtocolJSON11
	// ProtocolRESTJSON is flowlog's own agent protocol: the operation is
	// the path below the service's PathPrefix, bodies and errors JSON
	// ({"code":…,"message":…}).
	ProtocolRESTJSON
)

// ServiceInfo says how requests reach a service and how its answers look.
type ServiceInfo struct {
	// SigningName is the service of the SigV4 credential scope (ec2,
	// logs, iam, flowlog); it routes a signed request here.
	SigningName string
	// ActionPrefix prefixes the operation in authorization requests
	// (ec2:CreateFlowLogs); "" means SigningName.
	ActionPrefix string
	Protocol     Protocol
	// Version is the Version parameter of Query requests (2016-11-15).
	Version string
	// XMLNamespace is the namespace of Query responses and errors.
	XMLNamespace string
	// TargetPrefix is the X-Amz-Target prefix of JSON requests
	// (Logs_20140328).
	TargetPrefix string
	// PathPrefix is where a REST JSON service's operations live
	// (/flowlog/v1/).
	PathPrefix string
}

// Service implements one API.
type Service interface {
	Info() ServiceInfo
	// Resources returns the ARNs the call acts on, for authorization
	// before Serve; nil means "*". An error (bad parameters) is returned
	// to the client as is.
	Resources(ctx context.Context, call *Call) ([]string, error)
	// Serve performs the call. The answer is marshalled as XML (Query
	// protocols: the service sets the root element and request id) or
	// JSON; nil is an empty JSON object. Errors should be *Error.
	Serve(ctx context.Context, call *Call) (any, error)
}

// Auditor records every call, allowed or refused (err is nil when it
// succeeded). Auditors must not block for long.
type Auditor interface {
	Audit(call *Call, resources []string, err error)
}

// Options are what a Server is made of.
type Options struct {
	Credentials Credentials
	// Authorizer decides every call; nil means AllowRoot.
	Authorizer Authorizer
	Services   []Service
	// Console serves every request that is not an API call (the web
	// console); nil answers 404.
	Console http.Handler
	// Audit, when set, sees every API call.
	Audit Auditor
	// Metrics, when set, count every API call.
	Metrics *Metrics
	// MaxClockSkew bounds how far a request's signing time may be from
	// the server's clock; 0 means 5 minutes, as AWS.
	MaxClockSkew time.Duration
	// MaxBodyBytes bounds request bodies; 0 means 8 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the HTTP handler of `flowlog serve`.
type Server struct {
	opts     Options
	bySigner map[string]Service
	log      *slog.Logger
}

// New checks opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Credentials == nil {
		return nil, errors.New("new api server: no credentials")
	}
	if opts.Authorizer == nil {
		opts.Authorizer = AllowRoot{}
	}
	if opts.MaxClockSkew == 0 {
		opts.MaxClockSkew = 5 * time.Minute
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, bySigner: map[string]Service{}, log: opts.Logger}
	for _, svc := range opts.Services {
		name := svc.Info().SigningName
		if _, dup := s.bySigner[name]; dup {
			return nil, fmt.Errorf("new api server: two services sign as %q", name)
		}
		s.bySigner[name] = svc
	}
	return s, nil
}

// IsAPIRequest reports whether r is meant for an API rather than the
// console: it is signed, names an X-Amz-Target, is a Query protocol form
// post, or asks for a REST service's path.
func (s *Server) IsAPIRequest(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-") || r.URL.Query().Has("X-Amz-Signature") || r.Header.Get("X-Amz-Target") != "" {
		return true
	}
	for _, svc := range s.bySigner {
		if p := svc.Info().PathPrefix; p != "" && strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	return r.Method == http.MethodPost && r.URL.Path == "/" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.IsAPIRequest(r) {
		if s.opts.Console != nil {
			s.opts.Console.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	call := &Call{RequestID: newRequestID(), Time: s.opts.Now(), Secure: r.TLS != nil, authz: s.opts.Authorizer, started: time.Now()}
	if m := s.opts.Metrics; m != nil {
		m.inFlight.Inc()
		defer m.inFlight.Dec()
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		call.SourceIP = ap.Addr().Unmap()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		s.fail(w, s.guessService(r, nil), call, nil, Errorf("RequestEntityTooLarge", "request body larger than %d bytes", s.opts.MaxBodyBytes))
		return
	}
	sr, signed, err := parseSignature(r)
	svc := s.guessService(r, body)
	if signed && err == nil {
		if byScope, ok := s.bySigner[sr.Service]; ok {
			svc = byScope
		}
	}
	if err != nil {
		s.fail(w, svc, call, nil, err)
		return
	}
	if !signed {
		s.fail(w, svc, call, nil, &Error{Status: http.StatusUnauthorized, Code: authFailureCode(svc), Message: "Request is not signed: an AWS Signature Version 4 Authorization header or presigned query is required"})
		return
	}
	if err := s.authenticate(r, body, sr, call); err != nil {
		s.fail(w, svc, call, nil, err)
		return
	}
	if svc == nil || svc.Info().SigningName != sr.Service {
		s.fail(w, svc, call, nil, Errorf("InvalidAction", "no service signs as %q here", sr.Service))
		return
	}
	info := svc.Info()
	call.Service, call.Region = info.SigningName, sr.Region
	if err := parseCall(r, body, info, call); err != nil {
		s.fail(w, svc, call, nil, err)
		return
	}
	ctx := r.Context()
	resources, err := svc.Resources(ctx, call)
	if err == nil {
		prefix := info.ActionPrefix
		if prefix == "" {
			prefix = info.SigningName
		}
		err = call.Authorize(ctx, prefix+":"+call.Action, resources...)
	}
	if err != nil {
		s.fail(w, svc, call, resources, err)
		return
	}
	out, err := svc.Serve(ctx, call)
	if err != nil {
		s.fail(w, svc, call, resources, err)
		return
	}
	if s.opts.Audit != nil {
		s.opts.Audit.Audit(call, resources, nil)
	}
	if s.write(w, info, call, out) {
		s.opts.Metrics.observe(call.Service, call.Action, "OK", time.Since(call.started))
	}
}

func (s *Server) authenticate(r *http.Request, body []byte, sr signedRequest, call *Call) error {
	now := s.opts.Now()
	if sr.Presigned {
		if now.After(sr.AmzDate.Add(sr.Expires)) {
			return &Error{Status: http.StatusForbidden, Code: "AuthFailure", Message: "Signature expired: the presigned request was valid until " + sr.AmzDate.Add(sr.Expires).Format(amzDateLayout)}
		}
	} else if d := now.Sub(sr.AmzDate); d > s.opts.MaxClockSkew || -d > s.opts.MaxClockSkew {
		return &Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: fmt.Sprintf("Signature expired: %s is now earlier than %s or later than %s (the clocks differ by more than %s)",
			sr.AmzDate.Format(amzDateLayout), now.Add(-s.opts.MaxClockSkew).UTC().Format(amzDateLayout), now.Add(s.opts.MaxClockSkew).UTC().Format(amzDateLayout), s.opts.MaxClockSkew)}
	}
	// The key id is known before it is verified: the audit trail records
	// which key a refused request claimed.
	call.Principal.AccessKeyID = sr.AccessKeyID
	secret, p, err := s.opts.Credentials.Lookup(r.Context(), sr.AccessKeyID, sr.SecurityToken)
	if err != nil {
		if r.Context().Err() != nil {
			// The client left while its key was looked up (an agent
			// cancels a long poll it replaces): nothing was refused, so
			// the audit trail must not say so.
			return errRequestCanceled
		}
		return unknownKeyError(sr.Service)
	}
	want := expectedSignature(r, body, sr, secret)
	if !hmac.Equal([]byte(want), []byte(sr.Signature)) {
		return &Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	call.Principal = p
	return nil
}

// unknownKeyError refuses an unknown, inactive or deleted access key (or
// a wrong session token) in the code of the API it was signed for.
func unknownKeyError(service string) *Error {
	switch service {
	case "iam", "sts":
		return &Error{Status: http.StatusForbidden, Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."}
	case "logs", "firehose":
		return &Error{Status: http.StatusBadRequest, Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}
	}
	return &Error{Status: http.StatusUnauthorized, Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials"}
}

// parseCall fills the call's action and parameters from the request.
func parseCall(r *http.Request, body []byte, info ServiceInfo, call *Call) error {
	switch info.Protocol {
	case ProtocolEC2Query, ProtocolAWSQuery:
		params, err := url.ParseQuery(string(body))
		if err != nil {
			return Errorf("MalformedQueryString", "form body: %v", err)
		}
		for k, vs := range r.URL.Query() {
			if !strings.HasPrefix(k, "X-Amz-") {
				params[k] = append(params[k], vs...)
			}
		}
		call.Params = params
		call.Action = params.Get("Action")
		if call.Action == "" {
			return Errorf("MissingAction", "The request must contain the parameter Action")
		}
		if v := params.Get("Version"); info.Version != "" && v != "" && v != info.Version {
			return Errorf("InvalidParameterValue", "Version %q is not supported; this endpoint serves %s", v, info.Version)
		}
	case ProtocolJSON11:
		target := r.Header.Get("X-Amz-Target")
		op, ok := strings.CutPrefix(target, info.TargetPrefix+".")
		if !ok || op == "" {
			return &Error{Status: http.StatusBadRequest, Code: "UnknownOperationException", Message: fmt.Sprintf("X-Amz-Target %q is not an operation of %s", target, info.TargetPrefix)}
		}
		call.Action, call.Body = op, body
	case ProtocolRESTJSON:
		op, ok := strings.CutPrefix(r.URL.Path, info.PathPrefix)
		if !ok || op == "" {
			return &Error{Status: http.StatusNotFound, Code: "UnknownOperation", Message: "no operation at " + r.URL.Path}
		}
		call.Action, call.Body = op, body
		call.Params = r.URL.Query()
	}
	return nil
}

// guessService names the service an unsigned or badly signed request was
// meant for, so its error comes back in the protocol the client expects.
func (s *Server) guessService(r *http.Request, body []byte) Service {
	target := r.Header.Get("X-Amz-Target")
	version := r.URL.Query().Get("Version")
	if version == "" && len(body) > 0 && target == "" {
		if q, err := url.ParseQuery(string(body)); err == nil {
			version = q.Get("Version")
		}
	}
	var fallback Service
	for _, svc := range s.bySigner {
		info := svc.Info()
		switch {
		case target != "" && info.TargetPrefix != "" && strings.HasPrefix(target, info.TargetPrefix+"."):
			return svc
		case info.PathPrefix != "" && strings.HasPrefix(r.URL.Path, info.PathPrefix):
			return svc
		case version != "" && info.Version == version:
			return svc
		case info.Protocol == ProtocolEC2Query:
			fallback = svc
		}
	}
	return fallback
}

func authFailureCode(svc Service) string {
	if svc != nil && svc.Info().Protocol == ProtocolJSON11 {
		return "MissingAuthenticationTokenException"
	}
	return "AuthFailure"
}

func (s *Server) fail(w http.ResponseWriter, svc Service, call *Call, resources []string, err error) {
	e := AsError(err)
	if e.Status >= 500 {
		s.log.Error("api call failed", "request-id", call.RequestID, "service", call.Service, "action", call.Action, "err", err)
	}
	if s.opts.Audit != nil {
		s.opts.Audit.Audit(call, resources, e)
	}
	var info ServiceInfo
	if svc != nil {
		info = svc.Info()
	}
	service := call.Service
	if service == "" {
		service = info.SigningName
	}
	s.opts.Metrics.observe(service, "", e.Code, time.Since(call.started))
	WriteError(w, info, call.RequestID, e)
}

// write answers out; false when it could not be encoded (and an
// internal error was answered instead).
func (s *Server) write(w http.ResponseWriter, info ServiceInfo, call *Call, out any) bool {
	switch info.Protocol {
	case ProtocolEC2Query, ProtocolAWSQuery:
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		if err := xml.NewEncoder(&buf).Encode(out); err != nil {
			s.fail(w, nil, call, nil, fmt.Errorf("encode %s response: %w", call.Action, err))
			return false
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.Header().Set("X-Amzn-RequestId", call.RequestID)
		w.Write(buf.Bytes())
	default:
		if out == nil {
			out = struct{}{}
		}
		buf, err := json.Marshal(out)
		if err != nil {
			s.fail(w, nil, call, nil, fmt.Errorf("encode %s response: %w", call.Action, err))
			return false
		}
		if info.Protocol == ProtocolJSON11 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("X-Amzn-RequestId", call.RequestID)
		w.Write(buf)
	}
	return true
}

// WriteError renders e in the protocol of info (EC2 Query when info is
// the zero value).
func WriteError(w http.ResponseWriter, info ServiceInfo, requestID string, e *Error) {
	w.Header().Set("X-Amzn-RequestId", requestID)
	switch info.Protocol {
	case ProtocolJSON11, ProtocolRESTJSON:
		key := "__type"
		if info.Protocol == ProtocolRESTJSON {
			key = "code"
		}
		buf, _ := json.Marshal(map[string]string{key: e.Code, "message": e.Message})
		if info.Protocol == ProtocolJSON11 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("X-Amzn-ErrorType", e.Code)
		w.WriteHeader(e.Status)
		w.Write(buf)
	case ProtocolAWSQuery:
		type errorDetail struct {
			Type    string
			Code    string
			Message string
		}
		v := struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Xmlns     string   `xml:"xmlns,attr,omitempty"`
			Error     errorDetail
			RequestID string `xml:"RequestId"`
		}{Xmlns: info.XMLNamespace, Error: errorDetail{Type: senderOrReceiver(e), Code: e.Code, Message: e.Message}, RequestID: requestID}
		writeXML(w, e.Status, v)
	default:
		type ec2Error struct {
			Code    string
			Message string
		}
		v := struct {
			XMLName   xml.Name   `xml:"Response"`
			Errors    []ec2Error `xml:"Errors>Error"`
			RequestID string     `xml:"RequestID"`
		}{Errors: []ec2Error{{e.Code, e.Message}}, RequestID: requestID}
		writeXML(w, e.Status, v)
	}
}

func senderOrReceiver(e *Error) string {
	if e.Status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

func writeXML(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type drainingKey struct{}

// Draining returns a channel closed when the server serving the request
// of ctx starts shutting down (nil, never closed, outside ListenAndServe).
func Draining(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(drainingKey{}).(<-chan struct{})
	return ch
}

// ListenAndServe serves h on ln until ctx ends, then shuts down, letting
// calls in flight finish for up to grace and closing what is left.
//
// Requests' contexts do not end with ctx: a call in flight when the
// server is asked to stop completes (its transaction commits, its answer
// is sent). Handlers that wait for something (agents' long polls) watch
// Draining and answer at once when the server starts stopping.
func ListenAndServe(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration, certFile, keyFile string) error {
	drain := make(chan struct{})
	base := context.WithValue(context.WithoutCancel(ctx), drainingKey{}, (<-chan struct{})(drain))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
	srv.RegisterOnShutdown(func() { close(drain) })
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		// Connections still open after the grace period are closed: a
		// client that dialed ahead and never sent a request counts as
		// busy for net/http's first 5 s, and must not hold the server.
		return errors.Join(fmt.Errorf("shut down api server: %w", err), srv.Close())
	}
	return nil
}
