package api

import (
	"context"
	"net/netip"
	"net/url"
	"time"
)

// Principal is who signed a request.
type Principal struct {
	// AccountID is the 12-digit account the principal belongs to.
	AccountID string
	// ARN names the principal: arn:aws:iam::ACCOUNT:root,
	// arn:aws:iam::ACCOUNT:user/NAME or an assumed role's session ARN.
	ARN string
	// UserName is the IAM user name ("" for the root or a role session).
	UserName string
	// AccessKeyID is the key the request was signed with.
	AccessKeyID string
	// Root is set for the account's root keys (the keys in the server
	// configuration): they may do everything.
	Root bool
}

// Call is one authenticated API request, as a service sees it.
type Call struct {
	Principal Principal
	// Service is the SigV4 signing name the request was routed by: ec2,
	// logs, iam or flowlog.
	Service string
	// Action is the operation: the Query protocol's Action parameter
	// (CreateFlowLogs), the JSON protocol's X-Amz-Target operation
	// (PutLogEvents), or the path of a flowlog agent call (Register).
	Action string
	// Params are the form parameters of a Query protocol request.
	Params url.Values
	// Body is the body of a JSON protocol request.
	Body []byte
	// Input is the request as a service's Resources decoded it from Body,
	// kept for its Serve so that a large body (a 1 MiB PutLogEvents) is
	// decoded once; nil until a service sets it, and only that service
	// reads it.
	Input any
	// Region is the region of the credential scope.
	Region string
	// SourceIP is the client's address; Secure is set when it came over TLS.
	SourceIP netip.Addr
	Secure   bool
	// RequestID identifies the request in responses and logs.
	RequestID string
	// Time is when the server received the request.
	Time time.Time

	authz   Authorizer
	started time.Time // monotonic, for metrics
}

// Authorize asks the server's Authorizer whether the call's principal may
// perform action (service:Operation, e.g. "ec2:CreateFlowLogs") on every
// one of resources (ARNs; none means "*"). The router has already checked
// the call's own action on "*"; services call this for resource-level
// decisions (and for iam:PassRole).
func (c *Call) Authorize(ctx context.Context, action string, resources ...string) error {
	if c.authz == nil {
		return nil
	}
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	return c.authz.Authorize(ctx, Request{Call: c, Action: action, Resources: resources})
}

// Request is one authorization question.
type Request struct {
	Call      *Call
	Action    string
	Resources []string
}

// Authorizer decides whether a principal may perform an action. A refusal
// is an *Error with the refusing service's code (UnauthorizedOperation
// for ec2, AccessDeniedException for logs, AccessDenied for iam).
type Authorizer interface {
	Authorize(ctx context.Context, r Request) error
}

// Credentials finds the secret of an access key.
type Credentials interface {
	// Lookup returns the secret access key of accessKeyID and whose key
	// it is. sessionToken is the request's X-Amz-Security-Token ("" when
	// absent); temporary credentials check it. An unknown, inactive or
	// mismatched key is an error (reported to the client as AuthFailure, or
	// its API's equivalent: InvalidClientTokenId, UnrecognizedClientException).
	Lookup(ctx context.Context, accessKeyID, sessionToken string) (secret string, p Principal, err error)
}

// AccessKey is one key pair of the server configuration.
type AccessKey struct {
	AccessKeyID     string `yaml:"access-key-id"`
	SecretAccessKey string `yaml:"secret-access-key"`
	// User names the key's owner in logs and ARNs; "" means the root.
	User string `yaml:"user,omitempty"`
}

// StaticKeys are the keys of the server configuration. Each is an
// administrator of the account (Principal.Root).
type StaticKeys struct {
	AccountID string
	Keys      []AccessKey
}

// Lookup implements Credentials.
func (s StaticKeys) Lookup(_ context.Context, id, token string) (string, Principal, error) {
	for _, k := range s.Keys {
		if k.AccessKeyID != id {
			continue
		}
		if token != "" {
			return "", Principal{}, errUnknownKey
		}
		p := Principal{AccountID: s.AccountID, AccessKeyID: id, Root: true, ARN: "arn:aws:iam::" + s.AccountID + ":root"}
		if k.User != "" {
			p.UserName = k.User
			p.ARN = "arn:aws:iam::" + s.AccountID + ":user/" + k.User
		}
		return k.SecretAccessKey, p, nil
	}
	return "", Principal{}, errUnknownKey
}

// AllowRoot lets root principals do everything and refuses everyone else;
// it is the authorizer when no IAM service is configured.
type AllowRoot struct{}

// Authorize implements Authorizer.
func (AllowRoot) Authorize(_ context.Context, r Request) error {
	if r.Call.Principal.Root {
		return nil
	}
	return AccessDenied(r.Call.Service, r.Call.Principal, r.Action, r.Resources)
}

// CredentialChain asks each Credentials in turn; the first that knows the
// key answers.
type CredentialChain []Credentials

// Lookup implements Credentials.
func (c CredentialChain) Lookup(ctx context.Context, id, token string) (string, Principal, error) {
	for _, cr := range c {
		if s, p, err := cr.Lookup(ctx, id, token); err == nil {
			return s, p, nil
		}
	}
	return "", Principal{}, errUnknownKey
}

// NewCall is a call made on behalf of p by another front end than the
// API (the web console): service and action name what is being done, and
// authz decides the call's authorizations as it would an API call's.
func NewCall(authz Authorizer, p Principal, service, action, requestID string, sourceIP netip.Addr, secure bool, now time.Time) *Call {
	return &Call{Principal: p, Service: service, Action: action, RequestID: requestID, SourceIP: sourceIP, Secure: secure, Time: now, authz: authz}
}
