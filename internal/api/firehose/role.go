package firehose

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam"
)

// ServicePrincipal is the service a delivery stream's role must trust:
// Firehose assumes the role as firehose.amazonaws.com.
const ServicePrincipal = "firehose.amazonaws.com"

// Roles is the IAM service as the deliverer uses it (*iam.Service): it
// assumes a stream's role as ServicePrincipal and asks whether the
// session may put each object, as a request signed with the session's
// credentials would be asked.
type Roles interface {
	AssumeRoleForDelivery(ctx context.Context, roleARN, service string) (iam.Credentials, error)
	api.Credentials
	api.Authorizer
}

// ErrNoIAM is what a Roles answers when the server runs without IAM:
// the deliverer then writes without a role, as it does when
// Options.Roles is nil.
var ErrNoIAM = errors.New("the server has no IAM service")

// AWS's delivery error codes and messages (Firehose Developer Guide,
// "Amazon S3 data delivery errors"), which its error logs show.
const (
	codeAccessDenied = "S3.AccessDenied"
	msgAccessDenied  = "Access was denied. Ensure that the trust policy for the provided IAM role allows Firehose to assume the role, and the access policy allows access to the S3 bucket."
	codeNoSuchBucket = "S3.NoSuchBucket"
	msgNoSuchBucket  = "The specified bucket does not exist. Create the bucket or use a different bucket that does exist."
	codeInternal     = "InternalError"
)

// deliveryError is a failed delivery with AWS's error code.
type deliveryError struct {
	code, msg string
	err       error // what exactly went wrong, for the log and Details
}

func (e *deliveryError) Error() string {
	s := e.code + ": " + e.msg
	if e.err != nil {
		s += " (" + e.err.Error() + ")"
	}
	return s
}

func (e *deliveryError) Unwrap() error { return e.err }

// classify gives a write error AWS's delivery error code: S3's own
// AccessDenied and NoSuchBucket from an S3 server, the rest as
// InternalError. A *deliveryError stays as it is.
func classify(err error) *deliveryError {
	var de *deliveryError
	if errors.As(err, &de) {
		return de
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied":
			return &deliveryError{code: codeAccessDenied, msg: msgAccessDenied, err: err}
		case "NoSuchBucket":
			return &deliveryError{code: codeNoSuchBucket, msg: msgNoSuchBucket, err: err}
		}
	}
	return &deliveryError{code: codeInternal, msg: "An internal error occurred while attempting to deliver data. Delivery will be retried.", err: err}
}

// roleSession is a cached session of a stream's role.
type roleSession struct {
	principal api.Principal
	// renew is when to assume the role again: 5 minutes before the
	// session expires, as the agents renew delivery sessions.
	renew time.Time
}

// sessionRenewal is how long before its expiry a session is replaced.
const sessionRenewal = 5 * time.Minute

// authorizePut decides whether the stream's role may write the object
// bucket/key, as Firehose does by writing with the role's session: the
// role must exist and trust ServicePrincipal (else no session), and its
// policies must allow s3:PutObject on the object's ARN. Without IAM it
// allows everything. A refusal is an S3.AccessDenied *deliveryError.
func (s *Service) authorizePut(ctx context.Context, st *stream, key string) error {
	if s.roles == nil {
		return nil
	}
	p, err := s.roleSession(ctx, st.RoleARN)
	if errors.Is(err, ErrNoIAM) {
		return nil
	}
	if err != nil {
		return err
	}
	object := st.BucketARN + "/" + key
	call := &api.Call{Principal: p, Service: "s3", Action: "PutObject", Region: s.opts.Region,
		Secure: true, Time: time.Now()} // Firehose writes to S3 over TLS
	err = s.roles.Authorize(ctx, api.Request{Call: call, Action: "s3:PutObject", Resources: []string{object}})
	var ae *api.Error
	if errors.As(err, &ae) {
		return &deliveryError{code: codeAccessDenied, msg: msgAccessDenied, err: errors.New(ae.Message)}
	}
	if err != nil {
		return fmt.Errorf("authorize s3:PutObject on %s as %s: %w", object, p.ARN, err)
	}
	return nil
}

// roleSession returns the principal of a session of roleARN for
// ServicePrincipal: a cached one until it is due for renewal, else a
// new one (the trust policy is checked at each assumption, as on AWS; a
// role whose trust or existence is wrong gets no session, so the next
// retry asks again).
func (s *Service) roleSession(ctx context.Context, roleARN string) (api.Principal, error) {
	// Sessions expire on the IAM service's clock, the wall clock.
	now := time.Now()
	s.smu.Lock()
	rs, ok := s.sessions[roleARN]
	s.smu.Unlock()
	if ok && now.Before(rs.renew) {
		return rs.principal, nil
	}
	creds, err := s.roles.AssumeRoleForDelivery(ctx, roleARN, ServicePrincipal)
	var de *iam.DeliveryError
	if errors.As(err, &de) {
		reason := de.Reason
		if !strings.Contains(reason, roleARN) {
			reason = "role " + roleARN + ": " + reason
		}
		return api.Principal{}, &deliveryError{code: codeAccessDenied, msg: msgAccessDenied, err: errors.New(reason)}
	}
	if err != nil {
		return api.Principal{}, fmt.Errorf("assume role %s: %w", roleARN, err)
	}
	_, p, err := s.roles.Lookup(ctx, creds.AccessKeyID, creds.SessionToken)
	if err != nil {
		return api.Principal{}, fmt.Errorf("look up the session of role %s: %w", roleARN, err)
	}
	s.smu.Lock()
	for arn, old := range s.sessions { // drop the stale ones of roles no longer used
		if !now.Before(old.renew) {
			delete(s.sessions, arn)
		}
	}
	s.sessions[roleARN] = roleSession{principal: p, renew: creds.Expiration.Add(-sessionRenewal)}
	s.smu.Unlock()
	return p, nil
}
