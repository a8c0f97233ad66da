package iam

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

// DeliveryService is the service principal that delivers flow logs to
// CloudWatch Logs, which a delivery role's trust policy must name.
const DeliveryService = "vpc-flow-logs.amazonaws.com"

// DeliverLogsAccessError is what AWS shows in a flow log's
// deliverLogsErrorMessage when the delivery role does not let it publish.
const DeliverLogsAccessError = "Access error"

// DeliveryError is a delivery role that cannot be used: missing, not
// trusting the delivery service, or without the permissions delivery
// needs. Its message starts with AWS's "Access error"; Reason says what
// is wrong, for the server's log and `flowlog` status output.
type DeliveryError struct {
	RoleARN string
	Reason  string
}

func (e *DeliveryError) Error() string { return DeliverLogsAccessError + ": " + e.Reason }

// Credentials are temporary credentials of a role session.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// DeliverySessionName names delivery sessions in their principal ARN,
// arn:aws:sts::ACCOUNT:assumed-role/ROLE/flowlog-delivery.
const DeliverySessionName = "flowlog-delivery"

// AssumeRoleForDelivery returns temporary credentials of the role
// roleARN for service (DeliveryService), as AWS's delivery does with
// sts:AssumeRole: only when the role exists and its trust policy allows
// sts:AssumeRole for Principal {"Service": service}; otherwise a
// *DeliveryError. The session's principal is
// arn:aws:sts::ACCOUNT:assumed-role/ROLE/flowlog-delivery; its calls are
// authorized with the role's policies, and it stays valid until
// Expiration (the role's trust policy is checked again at the next
// assumption, as on AWS).
func (s *Service) AssumeRoleForDelivery(ctx context.Context, roleARN, service string) (Credentials, error) {
	if s.seal == nil {
		return Credentials{}, fmt.Errorf("assume role %s: the iam service was opened without its key file", roleARN)
	}
	r, err := s.trustedRole(ctx, roleARN, service)
	if err != nil {
		return Credentials{}, err
	}
	now := s.cfg.Now()
	dur := min(s.cfg.SessionDuration, time.Duration(r.MaxSession)*time.Second)
	tok := make([]byte, 48)
	if _, err := rand.Read(tok); err != nil {
		return Credentials{}, err
	}
	c := Credentials{AccessKeyID: newID("ASIA", 16), SecretAccessKey: newSecret(), SessionToken: base64.StdEncoding.EncodeToString(tok), Expiration: now.Add(dur).UTC().Truncate(time.Second)}
	h := sha256.Sum256([]byte(c.SessionToken))
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM iam_sessions WHERE expires <= ?`, now.Unix()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO iam_sessions(key_id, role_name, session_name, secret, token_hash, expires) VALUES (?, ?, ?, ?, ?, ?)`,
			c.AccessKeyID, r.Name, DeliverySessionName, s.seal.seal(c.AccessKeyID, c.SecretAccessKey), h[:], c.Expiration.Unix())
		return err
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("assume role %s: %w", roleARN, err)
	}
	return c, nil
}

// trustedRole finds the role of roleARN and checks that its trust policy
// lets service assume it.
func (s *Service) trustedRole(ctx context.Context, roleARN, service string) (role, error) {
	name, err := s.roleNameOf(roleARN)
	if err != nil {
		return role{}, err
	}
	r, ok, err := getRole(ctx, s.db, name)
	if err != nil {
		return role{}, err
	}
	if !ok || s.roleARN(r.Path, r.Name) != roleARN {
		return role{}, &DeliveryError{RoleARN: roleARN, Reason: "the role " + roleARN + " does not exist"}
	}
	trust, err := s.parse(r.Trust, policy.Trust)
	if err != nil {
		return role{}, &DeliveryError{RoleARN: roleARN, Reason: "the role's trust policy is not valid: " + err.Error()}
	}
	res := policy.Evaluate([]policy.Policy{{Doc: trust}}, policy.Request{
		Action: "sts:AssumeRole", Resource: roleARN, PrincipalType: "Service", PrincipalID: service,
		Context: policy.Context{"aws:principalservicename": {service}},
	})
	switch res.Decision {
	case policy.ExplicitDeny:
		return role{}, &DeliveryError{RoleARN: roleARN, Reason: "the role's trust policy denies " + service + " to assume it"}
	case policy.ImplicitDeny:
		return role{}, &DeliveryError{RoleARN: roleARN, Reason: "the role's trust policy does not allow " + service + " to assume it"}
	}
	return r, nil
}

func (s *Service) roleNameOf(roleARN string) (string, error) {
	rest, ok := strings.CutPrefix(roleARN, "arn:aws:iam::"+s.cfg.AccountID+":role/")
	if !ok || rest == "" {
		return "", &DeliveryError{RoleARN: roleARN, Reason: fmt.Sprintf("%q is not the ARN of a role of account %s", roleARN, s.cfg.AccountID)}
	}
	return rest[strings.LastIndexByte(rest, '/')+1:], nil
}

// AssumeDeliveryRole implements control.DeliveryRoles: a session of
// roleARN for the flow-log delivery service, a refused role as the
// *control.AccessError the agent protocol reports.
func (s *Service) AssumeDeliveryRole(ctx context.Context, roleARN string) (control.DeliveryCredentials, error) {
	c, err := s.AssumeRoleForDelivery(ctx, roleARN, DeliveryService)
	var de *DeliveryError
	if errors.As(err, &de) {
		return control.DeliveryCredentials{}, &control.AccessError{RoleARN: roleARN, Message: de.Error()}
	}
	if err != nil {
		return control.DeliveryCredentials{}, err
	}
	return control.DeliveryCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration}, nil
}
