package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
	"github.com/flowlog/flowlog/internal/sink/firehose"
	"github.com/flowlog/flowlog/internal/spool"
)

// Server is the `server:` section of the agent's configuration: the
// control plane the agent follows. With it, the server's flow logs are
// the agent's: it registers the interfaces it discovers, runs the flow
// logs whose resource is one of them, and reports their delivery status.
type Server struct {
	// URL is the server's address (http://127.0.0.1:8080).
	URL string `yaml:"url"`
	// CAFile is a PEM file of the certificates that sign an https
	// server's certificate, when not a public authority (a self-signed
	// server); "" trusts the system's authorities.
	CAFile string `yaml:"ca-file,omitempty"`
	// AccessKeyID and the secret sign the agent's calls (SigV4). The
	// secret is given inline, or in a file only its owner may read.
	AccessKeyID         string `yaml:"access-key-id"`
	SecretAccessKey     string `yaml:"secret-access-key,omitempty"`
	SecretAccessKeyFile string `yaml:"secret-access-key-file,omitempty"`
	// AgentID names the agent at the server; "" is the host's instance id.
	AgentID string `yaml:"agent-id,omitempty"`
	// Region is the region of the signatures (and of log group ARNs);
	// "" is us-east-1.
	Region string `yaml:"region,omitempty"`
	// S3EndpointURL and S3PathStyle point the s3 destinations the server
	// defines at an S3-compatible server instead of AWS.
	S3EndpointURL string `yaml:"s3-endpoint-url,omitempty"`
	S3PathStyle   bool   `yaml:"s3-path-style,omitempty"`
	// StateFile keeps the last flow logs the server sent, so that an
	// agent restarted while the server is unreachable runs them again.
	// Default: server-flow-logs.json in the spool directory; with the
	// spool off and no state-file, nothing is kept.
	StateFile string `yaml:"state-file,omitempty"`
	// StatusInterval is how often delivery status is reported when it
	// does not change (a change is reported at once).
	StatusInterval time.Duration `yaml:"status-interval"`
	// PollWait is how long the agent lets the server hold a watch
	// request (the server may answer sooner).
	PollWait time.Duration `yaml:"poll-wait"`

	// secret is the secret read from SecretAccessKeyFile (never dumped).
	secret string
}

// Defaults of the server section.
const (
	DefaultStatusInterval = 10 * time.Second
	DefaultPollWait       = 30 * time.Second
	stateFileName         = "server-flow-logs.json"
)

func (s Server) defaults(spoolDir string) Server {
	if s.Region == "" {
		s.Region = control.DefaultRegion
	}
	if s.StateFile == "" && spoolDir != "none" && spoolDir != "" {
		s.StateFile = filepath.Join(spoolDir, stateFileName)
	}
	if s.StatusInterval == 0 {
		s.StatusInterval = DefaultStatusInterval
	}
	if s.PollWait == 0 {
		s.PollWait = DefaultPollWait
	}
	return s
}

func (s Server) validate() []error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, &KeyError{Key: "server." + key, Err: fmt.Errorf(format, args...)})
	}
	if u, err := url.Parse(s.URL); s.URL == "" {
		bad("url", "not set: want the server's http://host:port")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		bad("url", "%q: want http://host:port or https://host:port", s.URL)
	}
	if s.CAFile != "" && !strings.HasPrefix(s.URL, "https://") {
		bad("ca-file", "only for an https:// url")
	}
	if s.AccessKeyID == "" {
		bad("access-key-id", "not set")
	}
	switch {
	case s.SecretAccessKey != "" && s.SecretAccessKeyFile != "":
		bad("secret-access-key", "give secret-access-key or secret-access-key-file, not both")
	case s.SecretAccessKey == "" && s.SecretAccessKeyFile == "":
		bad("secret-access-key", "not set: give secret-access-key or secret-access-key-file")
	}
	if s.AgentID != "" && (len(s.AgentID) > 128 || strings.ContainsAny(s.AgentID, " \t\n/")) {
		bad("agent-id", "%q: want up to 128 characters without spaces or slashes", s.AgentID)
	}
	if s.S3EndpointURL != "" {
		if u, err := url.Parse(s.S3EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("s3-endpoint-url", "%q: want http://host:port or https://host:port", s.S3EndpointURL)
		}
	}
	if s.StatusInterval < time.Second || s.StatusInterval > time.Hour {
		bad("status-interval", "%s: want 1s to 1h", s.StatusInterval)
	}
	if s.PollWait < time.Second || s.PollWait > 5*time.Minute {
		bad("poll-wait", "%s: want 1s to 5m", s.PollWait)
	}
	return errs
}

// Secret is the secret access key: inline, or read by ReadSecret from
// the secret file.
func (s *Server) Secret() string {
	if s.SecretAccessKey != "" {
		return s.SecretAccessKey
	}
	return s.secret
}

// ReadSecrets reads the server section's secret-access-key-file, refusing
// a file that other users may read, and refuses a configuration file
// (configPath, "" when none) that holds the secret inline and that other
// users may read. Load calls it; callers of Decode call it themselves.
func (c *Config) ReadSecrets(configPath string) error {
	s := c.Server
	if s == nil {
		return nil
	}
	if s.SecretAccessKey != "" && configPath != "" {
		if err := privateFile(configPath); err != nil {
			return fmt.Errorf("config %s: server.secret-access-key: %w", configPath, err)
		}
	}
	if s.SecretAccessKeyFile == "" {
		return nil
	}
	if err := privateFile(s.SecretAccessKeyFile); err != nil {
		return fmt.Errorf("server.secret-access-key-file %s: %w", s.SecretAccessKeyFile, err)
	}
	data, err := os.ReadFile(s.SecretAccessKeyFile)
	if err != nil {
		return fmt.Errorf("server.secret-access-key-file: %w", err)
	}
	s.secret = strings.TrimSpace(string(data))
	if s.secret == "" {
		return fmt.Errorf("server.secret-access-key-file %s: empty", s.SecretAccessKeyFile)
	}
	return nil
}

// HTTPClient is the HTTP client of calls to the server (the agent
// protocol, and its CloudWatch Logs API): it trusts ca-file when set.
func (s *Server) HTTPClient() (*http.Client, error) {
	if s.CAFile == "" {
		return &http.Client{}, nil
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("server.ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("server.ca-file %s: no PEM certificate in it", s.CAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// privateFile refuses a file that users other than its owner may read:
// it holds a secret.
func privateFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("the file holds a secret access key but its mode is %#o: other users can read it; run chmod 600 %s", m, path)
	}
	return nil
}

// Destination types of control.FlowLog.LogDestinationType.
const (
	DestTypeFile       = "file"
	DestTypeS3         = "s3"
	DestTypeCloudWatch = "cloud-watch-logs"
	DestTypeKafka      = "kafka"
	DestTypeFirehose   = "kinesis-data-firehose"
)

// ServerFlowLog maps a flow log the server defines onto the agent's: the
// server's id, resource, traffic type, format and interval, and the
// destination by its type (file: the path; s3: the bucket ARN at srv's S3
// endpoint; cloud-watch-logs: the log group, which the agent writes to
// at the server's own Logs API, with the sessions of its delivery role
// when it has one; kinesis-data-firehose: the stream ARN, which the agent
// writes to at the server's own Firehose API; kafka: the kafka:// URL). A destination
// type the agent cannot write to is an error, which the agent reports as
// the flow log's FAILED status.
func ServerFlowLog(in control.FlowLog, srv *Server) (FlowLog, error) {
	fl := FlowLog{
		ID:               in.FlowLogID,
		Resource:         in.ResourceID,
		TrafficType:      in.TrafficType,
		Format:           in.LogFormat,
		Interval:         in.MaxAggregationInterval,
		FileFormat:       in.FileFormat,
		HivePartitions:   in.HiveCompatiblePartitions,
		PerHourPartition: in.PerHourPartition,
	}
	switch in.LogDestinationType {
	case DestTypeFile:
		if !filepath.IsAbs(in.LogDestination) {
			return fl, fmt.Errorf("file destination %q: want an absolute path", in.LogDestination)
		}
		fl.Destination = in.LogDestination
	case DestTypeS3:
		if !strings.HasPrefix(in.LogDestination, "arn:aws:s3:::") && !strings.HasPrefix(in.LogDestination, "s3://") {
			return fl, fmt.Errorf("s3 destination %q: want arn:aws:s3:::bucket[/prefix]", in.LogDestination)
		}
		fl.Destination = in.LogDestination
		if srv != nil {
			fl.EndpointURL, fl.S3PathStyle = srv.S3EndpointURL, srv.S3PathStyle
		}
	case DestTypeCloudWatch:
		group := in.LogGroupName
		if group == "" {
			// LogDestination is the log group's ARN.
			if i := strings.Index(in.LogDestination, ":log-group:"); i >= 0 {
				group = strings.TrimSuffix(in.LogDestination[i+len(":log-group:"):], ":*")
			}
		}
		if group == "" {
			return fl, errors.New("cloud-watch-logs destination: no log group name")
		}
		fl.Destination = "cloudwatch://" + group
		fl.DeliveryRole = in.DeliverLogsPermissionArn
	case DestTypeKafka:
		if !strings.HasPrefix(in.LogDestination, "kafka://") {
			return fl, fmt.Errorf("kafka destination %q: want kafka://host:port/topic", in.LogDestination)
		}
		fl.Destination = in.LogDestination
	case DestTypeFirehose:
		// Delivered to the server's own Firehose API with the agent's
		// keys: the server issues delivery-role sessions for
		// cloud-watch-logs flow logs only, and AWS needs a role here
		// only across accounts.
		if _, err := firehose.ParseLocation(in.LogDestination); err != nil || !strings.HasPrefix(in.LogDestination, "arn:") {
			return fl, fmt.Errorf("kinesis-data-firehose destination %q: want arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME", in.LogDestination)
		}
		fl.Destination = in.LogDestination
	default:
		return fl, fmt.Errorf("log destination type %q is not one the agent knows (file, s3, cloud-watch-logs, kinesis-data-firehose, kafka)", in.LogDestinationType)
	}
	fl = fl.defaults()
	// Validate it alone, so that one bad definition does not hold up
	// the others; the key prefix of a one-element list says nothing.
	one := Config{FlowLogs: []FlowLog{fl}}.Defaults()
	one.Server = nil
	for _, err := range unjoin(one.Validate()) {
		var ke *KeyError
		if errors.As(err, &ke) && strings.HasPrefix(ke.Key, "flow-logs[0].") {
			return fl, fmt.Errorf("%s: %w", strings.TrimPrefix(ke.Key, "flow-logs[0]."), ke.Err)
		}
	}
	return fl, nil
}

// savedState is the state file: the last flow log set the server sent.
type savedState struct {
	Server  string             `json:"server"`
	AgentID string             `json:"agentId"`
	Saved   time.Time          `json:"saved"`
	Set     control.FlowLogSet `json:"set"`
}

// loadState reads the flow log set saved for server and agent; ok is
// false when there is none (or it was saved for another server or agent).
func loadState(path, server, agentID string) (set control.FlowLogSet, ok bool, err error) {
	if path == "" {
		return set, false, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return set, false, nil
	}
	if err != nil {
		return set, false, fmt.Errorf("read server state: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(data, &st); err != nil {
		return set, false, fmt.Errorf("read server state %s: %w", path, err)
	}
	if st.Server != server || st.AgentID != agentID {
		return set, false, nil
	}
	return st.Set, true, nil
}

// saveState writes the set atomically (temporary file, sync, rename).
func saveState(path, server, agentID string, set control.FlowLogSet, now time.Time) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(savedState{Server: server, AgentID: agentID, Saved: now.UTC(), Set: set}, "", "  ")
	if err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("save server state: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save server state %s: %w", path, err)
	}
	return nil
}

// delivery watches a destination's calls to tell its delivery status:
// records written count as delivered once an Advance (which publishes
// them) succeeds; the status is FAILED while the latest call failed.
// It sits between the spool (or the flow log, without a spool) and the
// destination, so it sees every retry.
type delivery struct {
	inner pipeline.Sink
	now   func() time.Time

	mu            sync.Mutex
	pending       int64
	pendingEnd    int64
	records       int64
	lastDelivery  time.Time
	lastRecordEnd time.Time
	err           error
	called        bool // a Write or Advance returned
}

var (
	_ spool.Resetter = (*delivery)(nil)
	_ spool.Aborter  = (*delivery)(nil)
)

func newDelivery(inner pipeline.Sink, now func() time.Time) *delivery {
	return &delivery{inner: inner, now: now}
}

func (d *delivery) note(err error) {
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
}

// noteFirst records err unless a call of the destination came first
// (its outcome is newer).
func (d *delivery) noteFirst(err error) {
	d.mu.Lock()
	if !d.called {
		d.err = err
	}
	d.mu.Unlock()
}

func (d *delivery) Write(recs []flow.Record) error {
	err := d.inner.Write(recs)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.called = true
	// Only an Advance that succeeds clears a failure: a destination
	// that buffers takes every Write and fails when it publishes.
	if err != nil {
		d.err = err
	} else {
		d.pending += int64(len(recs))
		for i := range recs {
			d.pendingEnd = max(d.pendingEnd, recs[i].End)
		}
	}
	return err
}

func (d *delivery) Advance(wm int64) error {
	err := d.inner.Advance(wm)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.called = true
	d.err = err
	if err == nil && d.pending > 0 {
		d.records += d.pending
		d.lastDelivery = d.now()
		if d.pendingEnd > 0 {
			d.lastRecordEnd = time.Unix(d.pendingEnd, 0).UTC()
		}
		d.pending, d.pendingEnd = 0, 0
	}
	return err
}

func (d *delivery) Close() error {
	err := d.inner.Close()
	if err != nil {
		d.note(err)
	}
	return err
}

// Reset drops what the destination holds undelivered (spool.Resetter).
func (d *delivery) Reset() error {
	d.mu.Lock()
	d.pending, d.pendingEnd = 0, 0
	d.mu.Unlock()
	if r, ok := d.inner.(spool.Resetter); ok {
		return r.Reset()
	}
	return nil
}

// Abort interrupts a call in progress (spool.Aborter).
func (d *delivery) Abort() {
	if a, ok := d.inner.(spool.Aborter); ok {
		a.Abort()
	}
}

// status is the flow log's delivery status as the server wants it.
func (d *delivery) status(id string) control.FlowLogStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := control.FlowLogStatus{FlowLogID: id, Status: "SUCCESS", Records: d.records, LastDelivery: d.lastDelivery, LastRecordEnd: d.lastRecordEnd}
	if d.err != nil {
		st.Status, st.Message = "FAILED", d.err.Error()
	}
	return st
}

// DeliveryAccessError is a delivery that the flow log's delivery role
// does not allow: the server refused the role's session, or CloudWatch
// Logs refused the session's calls. Its message is the flow log's
// deliverLogsErrorMessage, starting with AWS's "Access error".
type DeliveryAccessError struct {
	Message string
	Err     error
}

func (e *DeliveryAccessError) Error() string { return e.Message }
func (e *DeliveryAccessError) Unwrap() error { return e.Err }

// roleSink is the destination of a flow log delivered with its delivery
// role's sessions: it turns the refusals of the role into
// DeliveryAccessErrors (what the flow log's status says), and makes a
// session CloudWatch Logs refused be asked for again. The spool in front
// keeps the records and retries with backoff, so delivery resumes by
// itself once the role is fixed.
type roleSink struct {
	inner pipeline.Sink
	role  string
	creds *aws.CredentialsCache
}

var (
	_ spool.Resetter = (*roleSink)(nil)
	_ spool.Aborter  = (*roleSink)(nil)
)

func (r *roleSink) Write(recs []flow.Record) error { return r.check(r.inner.Write(recs)) }
func (r *roleSink) Advance(wm int64) error         { return r.check(r.inner.Advance(wm)) }
func (r *roleSink) Close() error                   { return r.check(r.inner.Close()) }

// Reset drops what the destination holds undelivered (spool.Resetter).
func (r *roleSink) Reset() error {
	if rs, ok := r.inner.(spool.Resetter); ok {
		return rs.Reset()
	}
	return nil
}

// Abort interrupts a call in progress (spool.Aborter).
func (r *roleSink) Abort() {
	if a, ok := r.inner.(spool.Aborter); ok {
		a.Abort()
	}
}

// prefetch asks for the first session as the flow log opens, not at
// its first delivery: a role that is refused shows at once in the flow
// log's status, and a flow log deleted before it delivered anything
// still has a session to flush its last records with (the server no
// longer answers for a deleted flow log).
func (r *roleSink) prefetch(ctx context.Context, st *delivery) {
	if _, err := r.creds.Retrieve(ctx); err != nil && ctx.Err() == nil {
		st.noteFirst(r.check(err))
	}
}

func (r *roleSink) check(err error) error {
	if err == nil {
		return nil
	}
	if msg, ok := control.IsDeliveryAccessError(err); ok {
		return &DeliveryAccessError{Message: msg, Err: err}
	}
	if errors.Is(err, cloudwatch.ErrAccessDenied) {
		// The role's policies refuse, or the session is no longer
		// known (a server whose store was replaced): the next try
		// asks for a new session.
		r.creds.Invalidate()
		// The API's code and message, without the request id, so the
		// status stays the same from one retry to the next.
		where, detail := "the log group", err.Error()
		var ce *cloudwatch.Error
		if errors.As(err, &ce) {
			where = "log group " + ce.Group
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			detail = ae.ErrorCode() + ": " + ae.ErrorMessage()
		}
		return &DeliveryAccessError{Message: control.DeliverLogsAccessError + ": the delivery role " + r.role + " may not publish to " + where + ": " + detail, Err: err}
	}
	return err
}
