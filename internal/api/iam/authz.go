package iam

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

var (
	errUnknownKey  = errors.New("unknown access key")
	errInactiveKey = errors.New("access key is inactive")
	errBadToken    = errors.New("security token does not match the access key")
	errExpired     = errors.New("temporary credentials have expired")
)

// Lookup implements api.Credentials: an active access key of an IAM user,
// or the temporary key of a role session with its session token. Deleted
// and deactivated keys are unknown.
func (s *Service) Lookup(ctx context.Context, id, token string) (string, api.Principal, error) {
	if s.seal == nil {
		return "", api.Principal{}, errUnknownKey
	}
	if strings.HasPrefix(id, "ASIA") {
		return s.lookupSession(ctx, id, token)
	}
	if token != "" {
		return "", api.Principal{}, errBadToken
	}
	var userName, status string
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT user_name, status, secret FROM iam_access_keys WHERE id = ?`, id).Scan(&userName, &status, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", api.Principal{}, errUnknownKey
	}
	if err != nil {
		return "", api.Principal{}, fmt.Errorf("look up access key %s: %w", id, err)
	}
	if status != "Active" {
		return "", api.Principal{}, errInactiveKey
	}
	u, ok, err := getUser(ctx, s.db, userName)
	if err != nil || !ok {
		return "", api.Principal{}, errors.Join(errUnknownKey, err)
	}
	secret, err := s.seal.open(id, sealed)
	if err != nil {
		return "", api.Principal{}, err
	}
	return secret, api.Principal{AccountID: s.cfg.AccountID, ARN: s.userARN(u.Path, u.Name), UserName: u.Name, AccessKeyID: id}, nil
}

func (s *Service) lookupSession(ctx context.Context, id, token string) (string, api.Principal, error) {
	var roleName, sessionName string
	var sealed, tokenHash []byte
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT role_name, session_name, secret, token_hash, expires FROM iam_sessions WHERE key_id = ?`, id).
		Scan(&roleName, &sessionName, &sealed, &tokenHash, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", api.Principal{}, errUnknownKey
	}
	if err != nil {
		return "", api.Principal{}, fmt.Errorf("look up session key %s: %w", id, err)
	}
	h := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(h[:], tokenHash) != 1 {
		return "", api.Principal{}, errBadToken
	}
	if !s.cfg.Now().Before(time.Unix(expires, 0)) {
		return "", api.Principal{}, errExpired
	}
	r, ok, err := getRole(ctx, s.db, roleName)
	if err != nil || !ok {
		return "", api.Principal{}, errors.Join(errUnknownKey, err)
	}
	secret, err := s.seal.open(id, sealed)
	if err != nil {
		return "", api.Principal{}, err
	}
	return secret, api.Principal{AccountID: s.cfg.AccountID, ARN: s.sessionARN(r.Name, sessionName), AccessKeyID: id}, nil
}

func (s *Service) sessionARN(roleName, session string) string {
	return "arn:aws:sts::" + s.cfg.AccountID + ":assumed-role/" + roleName + "/" + session
}

// subject is whose identity policies decide a request.
type subject struct {
	kind string // root, user or role
	name string
	// arn is the principal's ARN as aws:PrincipalArn sees it: the user's,
	// or the role's (not the session's) for a role session.
	arn string
	// id is aws:userid: the user id, or ROLEID:SESSION.
	id string
}

// subjectOf finds the user or role behind an authenticated principal.
func (s *Service) subjectOf(ctx context.Context, p api.Principal) (subject, error) {
	if p.Root {
		return subject{kind: "root", arn: p.ARN, id: s.cfg.AccountID}, nil
	}
	if p.UserName != "" {
		u, ok, err := getUser(ctx, s.db, p.UserName)
		if err != nil {
			return subject{}, err
		}
		if !ok {
			return subject{kind: "user", name: p.UserName, arn: p.ARN}, nil
		}
		return subject{kind: "user", name: u.Name, arn: s.userARN(u.Path, u.Name), id: u.ID}, nil
	}
	if rest, ok := strings.CutPrefix(p.ARN, "arn:aws:sts::"+s.cfg.AccountID+":assumed-role/"); ok {
		roleName, session, _ := strings.Cut(rest, "/")
		r, ok, err := getRole(ctx, s.db, roleName)
		if err != nil {
			return subject{}, err
		}
		if !ok {
			return subject{kind: "role", name: roleName, arn: s.roleARN("/", roleName)}, nil
		}
		return subject{kind: "role", name: r.Name, arn: s.roleARN(r.Path, r.Name), id: r.ID + ":" + session}, nil
	}
	return subject{}, fmt.Errorf("principal %s is neither a user nor a role session", p.ARN)
}

// policiesOf returns the identity policies of a user or role: its inline
// policies, then its attached managed policies.
func (s *Service) policiesOf(ctx context.Context, sub subject) ([]policy.Policy, error) {
	if sub.kind != "user" && sub.kind != "role" {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, document FROM iam_inline_policies WHERE kind = ? AND owner = ? ORDER BY name`, sub.kind, sub.name)
	if err != nil {
		return nil, fmt.Errorf("read policies of %s %s: %w", sub.kind, sub.name, err)
	}
	var out []policy.Policy
	for rows.Next() {
		var name, doc string
		if err := rows.Scan(&name, &doc); err != nil {
			rows.Close()
			return nil, err
		}
		d, err := s.parse(doc, policy.Identity)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("inline policy %s of %s %s: %w", name, sub.kind, sub.name, err)
		}
		out = append(out, policy.Policy{Name: "inline policy " + name + " of " + sub.kind + " " + sub.name, Doc: d})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	arns, err := stringColumn(ctx, s.db, `SELECT policy_arn FROM iam_attached_policies WHERE kind = ? AND owner = ? ORDER BY policy_arn`, sub.kind, sub.name)
	if err != nil {
		return nil, fmt.Errorf("read policies of %s %s: %w", sub.kind, sub.name, err)
	}
	for _, arn := range arns {
		mp, ok, err := getPolicy(ctx, s.db, arn)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		d, err := s.parse(mp.Document, policy.Identity)
		if err != nil {
			return nil, fmt.Errorf("managed policy %s: %w", arn, err)
		}
		out = append(out, policy.Policy{Name: "managed policy " + arn, Doc: d})
	}
	return out, nil
}

// requestContext is the condition keys of a call (IAM User Guide, "AWS
// global condition context keys").
func (s *Service) requestContext(sub subject, call *api.Call) policy.Context {
	c := policy.Context{}
	c.Set("aws:PrincipalArn", sub.arn)
	c.Set("aws:PrincipalAccount", s.cfg.AccountID)
	if sub.id != "" {
		c.Set("aws:userid", sub.id)
	}
	switch sub.kind {
	case "user":
		c.Set("aws:username", sub.name)
		c.Set("aws:PrincipalType", "User")
	case "role":
		c.Set("aws:PrincipalType", "AssumedRole")
	case "root":
		c.Set("aws:PrincipalType", "Account")
	}
	if call == nil {
		return c
	}
	if call.SourceIP.IsValid() {
		c.Set("aws:SourceIp", call.SourceIP.String())
	}
	c.Set("aws:SecureTransport", strconv.FormatBool(call.Secure))
	if call.Region != "" {
		c.Set("aws:RequestedRegion", call.Region)
	}
	t := call.Time
	if t.IsZero() {
		t = s.cfg.Now()
	}
	c.Set("aws:CurrentTime", t.UTC().Format(time.RFC3339))
	c.Set("aws:EpochTime", strconv.FormatInt(t.Unix(), 10))
	return c
}

// Authorize implements api.Authorizer: root principals may do
// everything; users and role sessions what their identity policies allow
// on every resource of the request (IAM User Guide, "Policy evaluation
// logic"). A refusal is the calling service's AccessDenied, naming the
// action and the refused resource and saying whether a policy denied it
// explicitly or none allowed it.
func (s *Service) Authorize(ctx context.Context, r api.Request) error {
	p := r.Call.Principal
	if p.Root {
		return nil
	}
	sub, err := s.subjectOf(ctx, p)
	if err != nil {
		return api.AccessDenied(r.Call.Service, p, r.Action, r.Resources)
	}
	pols, err := s.policiesOf(ctx, sub)
	if err != nil {
		return err
	}
	reqCtx := s.requestContext(sub, r.Call)
	for _, res := range r.Resources {
		out := policy.Evaluate(pols, policy.Request{Action: r.Action, Resource: res, Context: reqCtx})
		if out.Decision == policy.Allowed {
			continue
		}
		e := api.AccessDenied(r.Call.Service, p, r.Action, []string{res})
		if out.Decision == policy.ExplicitDeny {
			e.Message += " with an explicit deny in an identity-based policy"
		} else {
			e.Message += " because no identity-based policy allows the " + r.Action + " action"
		}
		return e
	}
	return nil
}
