package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the server's base URL (http://127.0.0.1:8080).
	URL string
	// AccessKeyID and SecretAccessKey sign every call.
	AccessKeyID     string
	SecretAccessKey string
	// Region is the region of the credential scope; "" means us-east-1.
	Region string
	// HTTPClient makes the calls; nil means a client without an overall
	// timeout (each call is bounded by its context and, for
	// WatchFlowLogs, by the wait it asks for).
	HTTPClient *http.Client
	// Now is the clock of the signatures; nil means time.Now.
	Now func() time.Time
}

// DefaultRegion is the region of the credential scope when none is set.
const DefaultRegion = "us-east-1"

// Validate reports the first bad setting.
func (c ClientConfig) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("control client: url %q: want http://host:port or https://host:port", c.URL)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return errors.New("control client: access key id and secret access key are required")
	}
	return nil
}

// Client calls the agent protocol of a `flowlog serve` server. It is safe
// for concurrent use.
type Client struct {
	base   string
	creds  aws.Credentials
	region string
	http   *http.Client
	signer *v4.Signer
	now    func() time.Time
}

// NewClient checks cfg and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{
		base:   strings.TrimRight(cfg.URL, "/"),
		creds:  aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, Source: "flowlog agent configuration"},
		region: cfg.Region,
		http:   cfg.HTTPClient,
		signer: v4.NewSigner(),
		now:    cfg.Now,
	}, nil
}

// CloseIdleConnections closes the connections kept for the next call
// (when the agent stops, so that a server shutting down does not wait for
// them).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// URL is the server's base URL.
func (c *Client) URL() string { return c.base }

// Error is an error the server answered: the operation, the HTTP status,
// and the server's code and message ({"code":…,"message":…}).
type Error struct {
	Op      string
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("control %s: %s: %s (HTTP %d)", e.Op, e.Code, e.Message, e.Status)
}

// IsAuth reports whether the server refused the agent's credentials or
// signature: retrying will not help until the configuration changes.
func (e *Error) IsAuth() bool {
	switch e.Code {
	case "AuthFailure", "SignatureDoesNotMatch", "IncompleteSignature", "AccessDenied", "UnauthorizedOperation":
		return true
	}
	return false
}

// IsUnknownAgent reports whether err is the server's CodeUnknownAgent:
// it has no registration of the agent, which should register again.
func IsUnknownAgent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeUnknownAgent
}

// Register reports the agent's inventory; it replaces the agent's
// previous registration.
func (c *Client) Register(ctx context.Context, r Registration) (RegisterResult, error) {
	var out RegisterResult
	err := c.call(ctx, OpRegister, r, &out)
	return out, err
}

// Watch asks for the flow logs covering the agent. The server answers at
// once when its revision differs from req.Revision, else when a flow log
// covering the agent is created or deleted, else after req.Wait (capped by
// the server): then the answer has the same revision.
func (c *Client) Watch(ctx context.Context, req WatchRequest) (FlowLogSet, error) {
	var out FlowLogSet
	err := c.call(ctx, OpWatchFlowLogs, req, &out)
	return out, err
}

// ReportStatus reports the delivery status of the agent's flow logs.
func (c *Client) ReportStatus(ctx context.Context, r StatusReport) error {
	return c.call(ctx, OpReportStatus, r, nil)
}

// maxAnswerBytes bounds what the client reads of an answer.
const maxAnswerBytes = 64 << 20

// call POSTs in as JSON to op, signed, and decodes the answer into out
// (unless nil).
func (c *Client) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("control %s: encode request: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+PathPrefix+op, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("control %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := c.signer.SignHTTP(ctx, c.creds, req, hash, SigningName, c.region, c.now()); err != nil {
		return fmt.Errorf("control %s: sign request: %w", op, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("control %s: read answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Op: op, Status: resp.StatusCode}
		var wire struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &wire) == nil && wire.Code != "" {
			e.Code, e.Message = wire.Code, wire.Message
		} else {
			// Not the server's error shape: a proxy, or not a flowlog
			// server at all.
			e.Code = http.StatusText(resp.StatusCode)
			e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("control %s: decode answer: %w", op, err)
	}
	return nil
}
