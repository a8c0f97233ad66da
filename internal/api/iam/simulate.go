package iam

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

// SimulateRequest is a request to explain: who, what, on which resource,
// with which condition keys (added to, and overriding, those the
// principal implies).
type SimulateRequest struct {
	// Principal is a user name, a user or role ARN, an assumed-role
	// session ARN, or "root".
	Principal string
	Action    string
	Resource  string
	Context   policy.Context
}

// Explanation says why a simulated request is allowed or denied.
type Explanation struct {
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	// Decision is "allowed", "explicitDeny" or "implicitDeny".
	Decision string `json:"decision"`
	Allowed  bool   `json:"allowed"`
	// Policies are the identity policies evaluated, in order.
	Policies []string `json:"evaluatedPolicies"`
	// Matched are the statements that applied; Deciding is the one that
	// decided (none for an implicit deny or the root).
	Matched  []MatchedStatement `json:"matchedStatements"`
	Deciding *MatchedStatement  `json:"decidingStatement,omitempty"`
	// Context is the condition keys the evaluation saw.
	Context map[string][]string `json:"context"`
	// Reason is the decision in one sentence.
	Reason string `json:"reason"`
}

// MatchedStatement is one statement that applied.
type MatchedStatement struct {
	Policy    string `json:"policy"`
	Statement int    `json:"statement"` // 0-based index in the policy's Statement list
	Sid       string `json:"sid,omitempty"`
	Effect    string `json:"effect"`
}

func (m MatchedStatement) String() string {
	sid := ""
	if m.Sid != "" {
		sid = fmt.Sprintf(" (Sid %q)", m.Sid)
	}
	return fmt.Sprintf("statement %d%s of %s", m.Statement, sid, m.Policy)
}

// Simulate evaluates r as Authorize would and explains the decision.
func (s *Service) Simulate(ctx context.Context, r SimulateRequest) (Explanation, error) {
	if r.Resource == "" {
		r.Resource = "*"
	}
	sub, err := s.resolve(ctx, r.Principal)
	if err != nil {
		return Explanation{}, err
	}
	ex := Explanation{Principal: sub.arn, Action: r.Action, Resource: r.Resource, Matched: []MatchedStatement{}, Policies: []string{}}
	reqCtx := s.requestContext(sub, nil)
	delete(reqCtx, "aws:currenttime")
	delete(reqCtx, "aws:epochtime")
	for k, v := range r.Context {
		reqCtx[strings.ToLower(k)] = v
	}
	ex.Context = reqCtx
	if sub.kind == "root" {
		ex.Decision, ex.Allowed = "allowed", true
		ex.Reason = "allowed: the account's root (a key of the server configuration) may do everything"
		return ex, nil
	}
	pols, err := s.policiesOf(ctx, sub)
	if err != nil {
		return Explanation{}, err
	}
	for _, p := range pols {
		ex.Policies = append(ex.Policies, p.Name)
	}
	res := policy.Evaluate(pols, policy.Request{Action: r.Action, Resource: r.Resource, Context: reqCtx})
	for _, m := range res.Matches {
		ex.Matched = append(ex.Matched, MatchedStatement{Policy: pols[m.Policy].Name, Statement: m.Statement, Sid: m.Sid, Effect: string(m.Effect)})
	}
	if m, ok := res.Deciding(); ok {
		d := MatchedStatement{Policy: pols[m.Policy].Name, Statement: m.Statement, Sid: m.Sid, Effect: string(m.Effect)}
		ex.Deciding = &d
	}
	switch res.Decision {
	case policy.Allowed:
		ex.Decision, ex.Allowed = "allowed", true
		ex.Reason = "allowed by " + ex.Deciding.String()
	case policy.ExplicitDeny:
		ex.Decision = "explicitDeny"
		ex.Reason = "explicitly denied by " + ex.Deciding.String() + " (an explicit deny overrides every allow)"
	default:
		ex.Decision = "implicitDeny"
		ex.Reason = fmt.Sprintf("implicitly denied: no statement of the %d policies of %s allows %s on %s", len(pols), sub.arn, r.Action, r.Resource)
	}
	return ex, nil
}

// resolve finds the user or role a simulation names.
func (s *Service) resolve(ctx context.Context, who string) (subject, error) {
	acct := "arn:aws:iam::" + s.cfg.AccountID + ":"
	switch {
	case who == "root" || who == acct+"root":
		return subject{kind: "root", arn: acct + "root", id: s.cfg.AccountID}, nil
	case strings.HasPrefix(who, acct+"user/"):
		rest := strings.TrimPrefix(who, acct+"user/")
		return s.resolveUser(ctx, rest[strings.LastIndexByte(rest, '/')+1:])
	case strings.HasPrefix(who, acct+"role/"):
		rest := strings.TrimPrefix(who, acct+"role/")
		return s.resolveRole(ctx, rest[strings.LastIndexByte(rest, '/')+1:], DeliverySessionName)
	case strings.HasPrefix(who, "arn:aws:sts::"+s.cfg.AccountID+":assumed-role/"):
		rest := strings.TrimPrefix(who, "arn:aws:sts::"+s.cfg.AccountID+":assumed-role/")
		name, session, _ := strings.Cut(rest, "/")
		return s.resolveRole(ctx, name, session)
	case strings.HasPrefix(who, "arn:"):
		return subject{}, fmt.Errorf("principal %s: not a user, role or role session of account %s", who, s.cfg.AccountID)
	}
	if _, ok, err := getUser(ctx, s.db, who); err != nil {
		return subject{}, err
	} else if ok {
		return s.resolveUser(ctx, who)
	}
	if _, ok, err := getRole(ctx, s.db, who); err != nil {
		return subject{}, err
	} else if ok {
		return s.resolveRole(ctx, who, DeliverySessionName)
	}
	return subject{}, fmt.Errorf("principal %s: no such user or role", who)
}

func (s *Service) resolveUser(ctx context.Context, name string) (subject, error) {
	u, ok, err := getUser(ctx, s.db, name)
	if err != nil {
		return subject{}, err
	}
	if !ok {
		return subject{}, fmt.Errorf("principal %s: no such user", name)
	}
	return subject{kind: "user", name: u.Name, arn: s.userARN(u.Path, u.Name), id: u.ID}, nil
}

func (s *Service) resolveRole(ctx context.Context, name, session string) (subject, error) {
	r, ok, err := getRole(ctx, s.db, name)
	if err != nil {
		return subject{}, err
	}
	if !ok {
		return subject{}, fmt.Errorf("principal %s: no such role", name)
	}
	return subject{kind: "role", name: r.Name, arn: s.roleARN(r.Path, r.Name), id: r.ID + ":" + session}, nil
}

// AdminUser and AdminPolicyARN are what Bootstrap creates.
const (
	AdminUser      = "admin"
	AdminPolicyARN = "arn:aws:iam::aws:policy/AdministratorAccess"
)

// Bootstrap creates the first administrator when the store has no IAM
// user yet: user "admin" with AdministratorAccess attached and one access
// key, returned with its secret (shown this once). created is false, and
// nothing changes, when users exist.
func (s *Service) Bootstrap(ctx context.Context) (userARN, keyID, secret string, created bool, err error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_users`).Scan(&n); err != nil {
		return "", "", "", false, fmt.Errorf("bootstrap iam: %w", err)
	}
	if n > 0 {
		return "", "", "", false, nil
	}
	u := user{Name: AdminUser, ID: newID("AIDA", 17), Path: "/", Created: s.now()}
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO iam_users(name, id, path, created) VALUES (?, ?, ?, ?)`, u.Name, u.ID, u.Path, u.Created.Unix()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO iam_attached_policies(kind, owner, policy_arn) VALUES ('user', ?, ?)`, u.Name, AdminPolicyARN)
		return err
	})
	if err != nil {
		return "", "", "", false, fmt.Errorf("bootstrap iam: %w", err)
	}
	k, secret, err := s.CreateAccessKey(ctx, u.Name)
	if err != nil {
		return "", "", "", false, fmt.Errorf("bootstrap iam: %w", err)
	}
	return s.userARN(u.Path, u.Name), k.ID, secret, true, nil
}
