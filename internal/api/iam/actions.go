package iam

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

type handler func(ctx context.Context, call *api.Call) (any, error)

func (s *Service) handlers() map[string]handler {
	return map[string]handler{
		"CreateUser": s.createUser, "DeleteUser": s.deleteUser, "GetUser": s.getUser, "ListUsers": s.listUsers,
		"CreateAccessKey": s.createAccessKey, "DeleteAccessKey": s.deleteAccessKey,
		"ListAccessKeys": s.listAccessKeys, "UpdateAccessKey": s.updateAccessKey,
		"CreateRole": s.createRole, "GetRole": s.getRole, "ListRoles": s.listRoles, "DeleteRole": s.deleteRole,
		"UpdateAssumeRolePolicy": s.updateAssumeRolePolicy,
		"CreatePolicy":           s.createPolicy, "GetPolicy": s.getPolicy, "ListPolicies": s.listPolicies,
		"DeletePolicy": s.deletePolicy, "GetPolicyVersion": s.getPolicyVersion,
		"AttachRolePolicy": s.attach("role"), "DetachRolePolicy": s.detach("role"),
		"AttachUserPolicy": s.attach("user"), "DetachUserPolicy": s.detach("user"),
		"ListAttachedRolePolicies": s.listAttached("role"), "ListAttachedUserPolicies": s.listAttached("user"),
		"PutRolePolicy": s.putInline("role"), "GetRolePolicy": s.getInline("role"), "DeleteRolePolicy": s.deleteInline("role"),
		"PutUserPolicy": s.putInline("user"), "GetUserPolicy": s.getInline("user"), "DeleteUserPolicy": s.deleteInline("user"),
		"ListRolePolicies": s.listInline("role"), "ListUserPolicies": s.listInline("user"),
	}
}

// Response shapes (botocore's iam model; lists are <member> items).
type list[T any] struct {
	Member []T `xml:"member"`
}

type userXML struct {
	Path       string `xml:"Path,omitempty"`
	UserName   string `xml:"UserName,omitempty"`
	UserID     string `xml:"UserId"`
	Arn        string `xml:"Arn"`
	CreateDate string `xml:"CreateDate"`
}

type roleXML struct {
	Path                     string
	RoleName                 string
	RoleID                   string `xml:"RoleId"`
	Arn                      string
	CreateDate               string
	AssumeRolePolicyDocument string
	Description              string `xml:"Description,omitempty"`
	MaxSessionDuration       int
}

type policyXML struct {
	PolicyName                    string
	PolicyID                      string `xml:"PolicyId"`
	Arn                           string
	Path                          string
	DefaultVersionID              string `xml:"DefaultVersionId"`
	AttachmentCount               int
	PermissionsBoundaryUsageCount int
	IsAttachable                  bool
	Description                   string `xml:"Description,omitempty"`
	CreateDate                    string
	UpdateDate                    string
}

type accessKeyXML struct {
	UserName        string
	AccessKeyID     string `xml:"AccessKeyId"`
	Status          string
	SecretAccessKey string `xml:"SecretAccessKey,omitempty"`
	CreateDate      string
}

type attachedXML struct {
	PolicyName string
	PolicyArn  string
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// encodeDocument renders a policy document as IAM returns it: URL-encoded
// JSON, which the AWS CLI decodes.
func encodeDocument(doc string) string { return url.PathEscape(doc) }

func (s *Service) userXML(u user) userXML {
	return userXML{Path: u.Path, UserName: u.Name, UserID: u.ID, Arn: s.userARN(u.Path, u.Name), CreateDate: isoTime(u.Created)}
}

func (s *Service) roleXML(r role) roleXML {
	return roleXML{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: s.roleARN(r.Path, r.Name), CreateDate: isoTime(r.Created),
		AssumeRolePolicyDocument: encodeDocument(r.Trust), Description: r.Description, MaxSessionDuration: r.MaxSession}
}

func policyXMLOf(p managedPolicy) policyXML {
	return policyXML{PolicyName: p.Name, PolicyID: p.ID, Arn: p.ARN, Path: p.Path, DefaultVersionID: "v1", AttachmentCount: p.Attachments,
		IsAttachable: true, Description: p.Description, CreateDate: isoTime(p.Created), UpdateDate: isoTime(p.Updated)}
}

// Parameter constraints of the iam model.
var (
	namePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathPattern = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
)

func checkName(v, member string, max int) error {
	if v == "" {
		return required(member)
	}
	if len(v) > max {
		return validation(v, member, "Member must have length less than or equal to "+strconv.Itoa(max))
	}
	if !namePattern.MatchString(v) {
		return validation(v, member, `Member must satisfy regular expression pattern: [\w+=,.@-]+`)
	}
	return nil
}

func checkPath(v string) (string, error) {
	if v == "" {
		return "/", nil
	}
	if len(v) > 512 || !pathPattern.MatchString(v) {
		return "", validation(v, "path", `Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)`)
	}
	return v, nil
}

// parse parses a document, caching parsed documents by their text (the
// authorizer parses the same few documents on every call).
func (s *Service) parse(doc string, kind policy.Kind) (*policy.Document, error) {
	key := strconv.Itoa(int(kind)) + doc
	s.mu.Lock()
	d, ok := s.docs[key]
	s.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := policy.Parse(doc, kind)
	if err != nil {
		var me *policy.MalformedError
		if errors.As(err, &me) {
			return nil, malformedPolicy(me.Message)
		}
		return nil, err
	}
	s.mu.Lock()
	if len(s.docs) > 4096 {
		clear(s.docs) // bounded: documents are few; a flood of distinct ones just reparses
	}
	s.docs[key] = d
	s.mu.Unlock()
	return d, nil
}

// paginate applies Marker/MaxItems to items sorted by key: the marker is
// the key of the last item of the previous page.
func paginate[T any](call *api.Call, items []T, key func(T) string) ([]T, bool, string, error) {
	max := 100
	if v := call.Params.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, false, "", validation(v, "maxItems", "Member must have value between 1 and 1000")
		}
		max = n
	}
	sort.SliceStable(items, func(i, j int) bool { return strings.ToLower(key(items[i])) < strings.ToLower(key(items[j])) })
	start := 0
	if m := call.Params.Get("Marker"); m != "" {
		start = sort.Search(len(items), func(i int) bool { return strings.ToLower(key(items[i])) > strings.ToLower(m) })
	}
	items = items[start:]
	if len(items) > max {
		return items[:max], true, key(items[max-1]), nil
	}
	return items, false, "", nil
}

type pageXML struct {
	IsTruncated bool
	Marker      string `xml:"Marker,omitempty"`
}

// callerUser is the UserName parameter, or the calling user when absent.
func callerUser(call *api.Call) (string, error) {
	if n := call.Params.Get("UserName"); n != "" {
		return n, nil
	}
	if call.Principal.UserName != "" && !call.Principal.Root {
		return call.Principal.UserName, nil
	}
	return "", invalidInput("Must specify userName when calling with non-User credentials")
}

func (s *Service) needUser(ctx context.Context, q querier, name string) (user, error) {
	u, ok, err := getUser(ctx, q, name)
	if err != nil {
		return u, err
	}
	if !ok {
		return u, noSuchEntity("The user with name %s cannot be found.", name)
	}
	return u, nil
}

func (s *Service) needRole(ctx context.Context, q querier, name string) (role, error) {
	r, ok, err := getRole(ctx, q, name)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, noSuchEntity("The role with name %s cannot be found.", name)
	}
	return r, nil
}

// Users.

func (s *Service) createUser(ctx context.Context, call *api.Call) (any, error) {
	name := call.Params.Get("UserName")
	if err := checkName(name, "userName", 64); err != nil {
		return nil, err
	}
	path, err := checkPath(call.Params.Get("Path"))
	if err != nil {
		return nil, err
	}
	u := user{Name: name, ID: newID("AIDA", 17), Path: path, Created: s.now()}
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, ok, err := getUser(ctx, tx, name); err != nil {
			return err
		} else if ok {
			return alreadyExists("User with name %s already exists.", name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO iam_users(name, id, path, created) VALUES (?, ?, ?, ?)`, u.Name, u.ID, u.Path, u.Created.Unix())
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct{ User userXML }{s.userXML(u)}, nil
}

func (s *Service) getUser(ctx context.Context, call *api.Call) (any, error) {
	name := call.Params.Get("UserName")
	if name == "" && (call.Principal.Root || call.Principal.UserName == "") {
		// The account's root (a configuration key): AWS answers with the
		// root's ARN and the account id as user id.
		return struct{ User userXML }{userXML{UserID: s.cfg.AccountID, Arn: call.Principal.ARN, CreateDate: isoTime(time.Unix(0, 0))}}, nil
	}
	if name == "" {
		name = call.Principal.UserName
	}
	u, err := s.needUser(ctx, s.db, name)
	if err != nil {
		return nil, err
	}
	return struct{ User userXML }{s.userXML(u)}, nil
}

func (s *Service) listUsers(ctx context.Context, call *api.Call) (any, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, id, path, created FROM iam_users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []user
	prefix := orDefault(call.Params.Get("PathPrefix"), "/")
	for rows.Next() {
		var u user
		var created int64
		if err := rows.Scan(&u.Name, &u.ID, &u.Path, &created); err != nil {
			return nil, err
		}
		u.Created = time.Unix(created, 0).UTC()
		if strings.HasPrefix(u.Path, prefix) {
			users = append(users, u)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	page, more, marker, err := paginate(call, users, func(u user) string { return u.Name })
	if err != nil {
		return nil, err
	}
	out := struct {
		Users list[userXML]
		pageXML
	}{pageXML: pageXML{more, marker}}
	for _, u := range page {
		out.Users.Member = append(out.Users.Member, s.userXML(u))
	}
	return out, nil
}

func (s *Service) deleteUser(ctx context.Context, call *api.Call) (any, error) {
	name := call.Params.Get("UserName")
	if err := checkName(name, "userName", 64); err != nil {
		return nil, err
	}
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.needUser(ctx, tx, name); err != nil {
			return err
		}
		for _, c := range []struct{ query, msg string }{
			{`SELECT COUNT(*) FROM iam_access_keys WHERE user_name = ?`, "Cannot delete entity, must delete access keys first."},
			{`SELECT COUNT(*) FROM iam_inline_policies WHERE kind = 'user' AND owner = ?`, "Cannot delete entity, must delete policies first."},
			{`SELECT COUNT(*) FROM iam_attached_policies WHERE kind = 'user' AND owner = ?`, "Cannot delete entity, must detach all policies first."},
		} {
			var n int
			if err := tx.QueryRowContext(ctx, c.query, name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return deleteConflict(c.msg)
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM iam_users WHERE name = ?`, name)
		return err
	})
}

// Access keys.

// MaxKeysPerUser is IAM's quota of access keys per user.
const MaxKeysPerUser = 2

func (s *Service) createAccessKey(ctx context.Context, call *api.Call) (any, error) {
	name, err := callerUser(call)
	if err != nil {
		return nil, err
	}
	k, secret, err := s.CreateAccessKey(ctx, name)
	if err != nil {
		return nil, err
	}
	return struct{ AccessKey accessKeyXML }{accessKeyXML{UserName: k.UserName, AccessKeyID: k.ID, Status: k.Status, SecretAccessKey: secret, CreateDate: isoTime(k.Created)}}, nil
}

// CreateAccessKey creates an active key for an existing user and returns
// it with its secret (the only time the secret is shown).
func (s *Service) CreateAccessKey(ctx context.Context, userName string) (accessKey, string, error) {
	if s.seal == nil {
		return accessKey{}, "", errors.New("create access key: the iam service was opened without its key file")
	}
	secret := newSecret()
	k := accessKey{ID: newID("AKIA", 16), Status: "Active", Created: s.now()}
	k.Secret = s.seal.seal(k.ID, secret)
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		u, err := s.needUser(ctx, tx, userName)
		if err != nil {
			return err
		}
		k.UserName = u.Name
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_access_keys WHERE user_name = ?`, u.Name).Scan(&n); err != nil {
			return err
		}
		if n >= MaxKeysPerUser {
			return limitExceeded("Cannot exceed quota for AccessKeysPerUser: %d", MaxKeysPerUser)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO iam_access_keys(id, user_name, secret, status, created) VALUES (?, ?, ?, ?, ?)`,
			k.ID, k.UserName, k.Secret, k.Status, k.Created.Unix())
		return err
	})
	return k, secret, err
}

func (s *Service) deleteAccessKey(ctx context.Context, call *api.Call) (any, error) {
	id := call.Params.Get("AccessKeyId")
	if id == "" {
		return nil, required("accessKeyId")
	}
	name, err := callerUser(call)
	if err != nil {
		return nil, err
	}
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.needUser(ctx, tx, name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM iam_access_keys WHERE id = ? AND user_name = ?`, id, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return noSuchEntity("The Access Key with id %s cannot be found.", id)
		}
		return nil
	})
}

func (s *Service) updateAccessKey(ctx context.Context, call *api.Call) (any, error) {
	id, status := call.Params.Get("AccessKeyId"), call.Params.Get("Status")
	if id == "" {
		return nil, required("accessKeyId")
	}
	if status != "Active" && status != "Inactive" {
		return nil, validation(status, "status", "Member must satisfy enum value set: [Active, Inactive]")
	}
	name, err := callerUser(call)
	if err != nil {
		return nil, err
	}
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.needUser(ctx, tx, name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE iam_access_keys SET status = ? WHERE id = ? AND user_name = ?`, status, id, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return noSuchEntity("The Access Key with id %s cannot be found.", id)
		}
		return nil
	})
}

func (s *Service) listAccessKeys(ctx context.Context, call *api.Call) (any, error) {
	name, err := callerUser(call)
	if err != nil {
		return nil, err
	}
	u, err := s.needUser(ctx, s.db, name)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, status, created FROM iam_access_keys WHERE user_name = ? ORDER BY created, id`, u.Name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []accessKeyXML
	for rows.Next() {
		var k accessKeyXML
		var created int64
		if err := rows.Scan(&k.AccessKeyID, &k.Status, &created); err != nil {
			return nil, err
		}
		k.UserName, k.CreateDate = u.Name, isoTime(time.Unix(created, 0))
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return struct {
		AccessKeyMetadata list[accessKeyXML]
		pageXML
	}{AccessKeyMetadata: list[accessKeyXML]{keys}}, nil
}

// Roles.

func (s *Service) createRole(ctx context.Context, call *api.Call) (any, error) {
	p := call.Params
	name := p.Get("RoleName")
	if err := checkName(name, "roleName", 64); err != nil {
		return nil, err
	}
	path, err := checkPath(p.Get("Path"))
	if err != nil {
		return nil, err
	}
	trust := p.Get("AssumeRolePolicyDocument")
	if trust == "" {
		return nil, required("assumeRolePolicyDocument")
	}
	if nonSpaceLen(trust) > MaxTrustPolicySize {
		return nil, limitExceeded("Cannot exceed quota for ACLSizePerRole: %d", MaxTrustPolicySize)
	}
	if _, err := s.parse(trust, policy.Trust); err != nil {
		return nil, err
	}
	maxSession := 3600
	if v := p.Get("MaxSessionDuration"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3600 || n > 43200 {
			return nil, validation(v, "maxSessionDuration", "Member must have value between 3600 and 43200")
		}
		maxSession = n
	}
	r := role{Name: name, ID: newID("AROA", 17), Path: path, Trust: trust, Description: p.Get("Description"), MaxSession: maxSession, Created: s.now()}
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, ok, err := getRole(ctx, tx, name); err != nil {
			return err
		} else if ok {
			return alreadyExists("Role with name %s already exists.", name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO iam_roles(name, id, path, trust, description, max_session, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Name, r.ID, r.Path, r.Trust, r.Description, r.MaxSession, r.Created.Unix())
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct{ Role roleXML }{s.roleXML(r)}, nil
}

func (s *Service) getRole(ctx context.Context, call *api.Call) (any, error) {
	r, err := s.needRole(ctx, s.db, call.Params.Get("RoleName"))
	if err != nil {
		return nil, err
	}
	return struct{ Role roleXML }{s.roleXML(r)}, nil
}

func (s *Service) listRoles(ctx context.Context, call *api.Call) (any, error) {
	names, err := stringColumn(ctx, s.db, `SELECT name FROM iam_roles`)
	if err != nil {
		return nil, err
	}
	var roles []role
	prefix := orDefault(call.Params.Get("PathPrefix"), "/")
	for _, n := range names {
		r, ok, err := getRole(ctx, s.db, n)
		if err != nil {
			return nil, err
		}
		if ok && strings.HasPrefix(r.Path, prefix) {
			roles = append(roles, r)
		}
	}
	page, more, marker, err := paginate(call, roles, func(r role) string { return r.Name })
	if err != nil {
		return nil, err
	}
	out := struct {
		Roles list[roleXML]
		pageXML
	}{pageXML: pageXML{more, marker}}
	for _, r := range page {
		out.Roles.Member = append(out.Roles.Member, s.roleXML(r))
	}
	return out, nil
}

func (s *Service) deleteRole(ctx context.Context, call *api.Call) (any, error) {
	name := call.Params.Get("RoleName")
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.needRole(ctx, tx, name); err != nil {
			return err
		}
		for _, c := range []struct{ query, msg string }{
			{`SELECT COUNT(*) FROM iam_inline_policies WHERE kind = 'role' AND owner = ?`, "Cannot delete entity, must delete policies first."},
			{`SELECT COUNT(*) FROM iam_attached_policies WHERE kind = 'role' AND owner = ?`, "Cannot delete entity, must detach all policies first."},
		} {
			var n int
			if err := tx.QueryRowContext(ctx, c.query, name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return deleteConflict(c.msg)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM iam_sessions WHERE role_name = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM iam_roles WHERE name = ?`, name)
		return err
	})
}

func (s *Service) updateAssumeRolePolicy(ctx context.Context, call *api.Call) (any, error) {
	name, doc := call.Params.Get("RoleName"), call.Params.Get("PolicyDocument")
	if doc == "" {
		return nil, required("policyDocument")
	}
	if nonSpaceLen(doc) > MaxTrustPolicySize {
		return nil, limitExceeded("Cannot exceed quota for ACLSizePerRole: %d", MaxTrustPolicySize)
	}
	if _, err := s.parse(doc, policy.Trust); err != nil {
		return nil, err
	}
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.needRole(ctx, tx, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE iam_roles SET trust = ? WHERE name = ?`, doc, name)
		return err
	})
}

// Managed policies.

// IAM's quotas on policy sizes (characters, not counting white space).
// AWS counts a user's inline policies together; flowlog counts each.
const (
	MaxManagedPolicySize    = 6144
	MaxUserInlinePolicySize = 2048
	MaxRoleInlinePolicySize = 10240
	MaxTrustPolicySize      = 2048
)

func nonSpaceLen(s string) int {
	n := 0
	for _, r := range s {
		if r != ' ' && r != '\t' && r != '\n' && r != '\r' {
			n++
		}
	}
	return n
}

func (s *Service) createPolicy(ctx context.Context, call *api.Call) (any, error) {
	p := call.Params
	name, doc := p.Get("PolicyName"), p.Get("PolicyDocument")
	if err := checkName(name, "policyName", 128); err != nil {
		return nil, err
	}
	path, err := checkPath(p.Get("Path"))
	if err != nil {
		return nil, err
	}
	if doc == "" {
		return nil, required("policyDocument")
	}
	if nonSpaceLen(doc) > MaxManagedPolicySize {
		return nil, limitExceeded("Cannot exceed quota for PolicySize: %d", MaxManagedPolicySize)
	}
	if _, err := s.parse(doc, policy.Identity); err != nil {
		return nil, err
	}
	now := s.now()
	mp := managedPolicy{ARN: s.policyARN(path, name), Name: name, ID: newID("ANPA", 17), Path: path, Document: doc, Description: p.Get("Description"), Created: now, Updated: now}
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_policies WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return alreadyExists("A policy called %s already exists. Duplicate names are not allowed.", name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO iam_policies(arn, name, id, path, document, description, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			mp.ARN, mp.Name, mp.ID, mp.Path, mp.Document, mp.Description, mp.Created.Unix(), mp.Updated.Unix())
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct{ Policy policyXML }{policyXMLOf(mp)}, nil
}

func (s *Service) needPolicy(ctx context.Context, q querier, arn string) (managedPolicy, error) {
	if arn == "" {
		return managedPolicy{}, required("policyArn")
	}
	if !strings.HasPrefix(arn, "arn:") {
		return managedPolicy{}, invalidInput("ARN %s is not valid.", arn)
	}
	p, ok, err := getPolicy(ctx, q, arn)
	if err != nil {
		return p, err
	}
	if !ok {
		return p, noSuchEntity("Policy %s was not found.", arn)
	}
	return p, nil
}

func (s *Service) getPolicy(ctx context.Context, call *api.Call) (any, error) {
	p, err := s.needPolicy(ctx, s.db, call.Params.Get("PolicyArn"))
	if err != nil {
		return nil, err
	}
	return struct{ Policy policyXML }{policyXMLOf(p)}, nil
}

func (s *Service) getPolicyVersion(ctx context.Context, call *api.Call) (any, error) {
	arn, v := call.Params.Get("PolicyArn"), call.Params.Get("VersionId")
	p, err := s.needPolicy(ctx, s.db, arn)
	if err != nil {
		return nil, err
	}
	if v != "v1" {
		// flowlog keeps one version per policy (no CreatePolicyVersion).
		return nil, noSuchEntity("Policy %s version %s does not exist or is not attachable.", arn, v)
	}
	type versionXML struct {
		Document         string
		VersionID        string `xml:"VersionId"`
		IsDefaultVersion bool
		CreateDate       string
	}
	return struct{ PolicyVersion versionXML }{versionXML{encodeDocument(p.Document), "v1", true, isoTime(p.Created)}}, nil
}

func (s *Service) listPolicies(ctx context.Context, call *api.Call) (any, error) {
	p := call.Params
	scope := orDefault(p.Get("Scope"), "All")
	if scope != "All" && scope != "AWS" && scope != "Local" {
		return nil, validation(scope, "scope", "Member must satisfy enum value set: [All, AWS, Local]")
	}
	var pols []managedPolicy
	if scope != "AWS" {
		rows, err := s.db.QueryContext(ctx, `SELECT `+policyColumns+` FROM iam_policies p`)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			mp, err := scanPolicy(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			pols = append(pols, mp)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if scope != "Local" {
		for arn := range builtinPolicies {
			mp, _, err := getPolicy(ctx, s.db, arn)
			if err != nil {
				return nil, err
			}
			pols = append(pols, mp)
		}
	}
	prefix := orDefault(p.Get("PathPrefix"), "/")
	only := p.Get("OnlyAttached") == "true"
	kept := pols[:0]
	for _, mp := range pols {
		if strings.HasPrefix(mp.Path, prefix) && (!only || mp.Attachments > 0) {
			kept = append(kept, mp)
		}
	}
	page, more, marker, err := paginate(call, kept, func(mp managedPolicy) string { return mp.Name })
	if err != nil {
		return nil, err
	}
	out := struct {
		Policies list[policyXML]
		pageXML
	}{pageXML: pageXML{more, marker}}
	for _, mp := range page {
		out.Policies.Member = append(out.Policies.Member, policyXMLOf(mp))
	}
	return out, nil
}

func (s *Service) deletePolicy(ctx context.Context, call *api.Call) (any, error) {
	arn := call.Params.Get("PolicyArn")
	if _, ok := builtinPolicies[arn]; ok {
		return nil, invalidInput("ARN %s is not valid.", arn)
	}
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		p, err := s.needPolicy(ctx, tx, arn)
		if err != nil {
			return err
		}
		if p.Attachments > 0 {
			return deleteConflict("Cannot delete a policy attached to entities.")
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM iam_policies WHERE arn = ?`, arn)
		return err
	})
}

// Attached (managed) policies of users and roles.

// MaxAttachedPolicies is IAM's quota of managed policies per user or role.
const MaxAttachedPolicies = 10

// owner checks that the user or role named by the call exists and
// returns its stored name.
func (s *Service) owner(ctx context.Context, q querier, kind string, call *api.Call) (string, error) {
	if kind == "user" {
		name := call.Params.Get("UserName")
		if name == "" {
			return "", required("userName")
		}
		u, err := s.needUser(ctx, q, name)
		return u.Name, err
	}
	name := call.Params.Get("RoleName")
	if name == "" {
		return "", required("roleName")
	}
	r, err := s.needRole(ctx, q, name)
	return r.Name, err
}

func (s *Service) attach(kind string) handler {
	return func(ctx context.Context, call *api.Call) (any, error) {
		arn := call.Params.Get("PolicyArn")
		return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
			owner, err := s.owner(ctx, tx, kind, call)
			if err != nil {
				return err
			}
			if _, ok, err := getPolicy(ctx, tx, arn); err != nil {
				return err
			} else if !ok {
				return noSuchEntity("Policy %s does not exist or is not attachable.", arn)
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_attached_policies WHERE kind = ? AND owner = ? AND policy_arn <> ?`, kind, owner, arn).Scan(&n); err != nil {
				return err
			}
			if n >= MaxAttachedPolicies {
				quota := "PoliciesPerUser"
				if kind == "role" {
					quota = "PoliciesPerRole"
				}
				return limitExceeded("Cannot exceed quota for %s: %d", quota, MaxAttachedPolicies)
			}
			_, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO iam_attached_policies(kind, owner, policy_arn) VALUES (?, ?, ?)`, kind, owner, arn)
			return err
		})
	}
}

func (s *Service) detach(kind string) handler {
	return func(ctx context.Context, call *api.Call) (any, error) {
		arn := call.Params.Get("PolicyArn")
		return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
			owner, err := s.owner(ctx, tx, kind, call)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM iam_attached_policies WHERE kind = ? AND owner = ? AND policy_arn = ?`, kind, owner, arn)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return noSuchEntity("Policy %s was not attached.", arn)
			}
			return nil
		})
	}
}

func (s *Service) listAttached(kind string) handler {
	return func(ctx context.Context, call *api.Call) (any, error) {
		owner, err := s.owner(ctx, s.db, kind, call)
		if err != nil {
			return nil, err
		}
		arns, err := stringColumn(ctx, s.db, `SELECT policy_arn FROM iam_attached_policies WHERE kind = ? AND owner = ?`, kind, owner)
		if err != nil {
			return nil, err
		}
		var items []attachedXML
		prefix := orDefault(call.Params.Get("PathPrefix"), "/")
		for _, arn := range arns {
			p, ok, err := getPolicy(ctx, s.db, arn)
			if err != nil {
				return nil, err
			}
			if ok && strings.HasPrefix(p.Path, prefix) {
				items = append(items, attachedXML{p.Name, p.ARN})
			}
		}
		page, more, marker, err := paginate(call, items, func(a attachedXML) string { return a.PolicyName })
		if err != nil {
			return nil, err
		}
		return struct {
			AttachedPolicies list[attachedXML]
			pageXML
		}{list[attachedXML]{page}, pageXML{more, marker}}, nil
	}
}

// Inline policies of users and roles.

func (s *Service) putInline(kind string) handler {
	return func(ctx context.Context, call *api.Call) (any, error) {
		name, doc := call.Params.Get("PolicyName"), call.Params.Get("PolicyDocument")
		if err := checkName(name, "policyName", 128); err != nil {
			return nil, err
		}
		if doc == "" {
			return nil, required("policyDocument")
		}
		max := MaxUserInlinePolicySize
		if kind == "role" {
			max = MaxRoleInlinePolicySize
		}
		if nonSpaceLen(doc) > max {
			owner := call.Params.Get("UserName") + call.Params.Get("RoleName")
			return nil, limitExceeded("Maximum policy size of %d bytes exceeded for %s %s", max, kind, owner)
		}
		if _, err := s.parse(doc, policy.Identity); err != nil {
			return nil, err
		}
		return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
			owner, err := s.owner(ctx, tx, kind, call)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO iam_inline_policies(kind, owner, name, document) VALUES (?, ?, ?, ?)
				ON CONFLICT(kind, owner, name) DO UPDATE SET document = excluded.document`, kind, owner, name, doc)
			return err
		})
	}
}

func (s *Service) getInline(kind string) handler {
	return func(ctx context.Context, call *api.Call) (any, error) {
		owner, err := s.owner(ctx, s.db, kind, call)
		if err != nil {
			return nil, err
		}
		name := call.Params.Get("PolicyName")
		var stored, doc string
		err = s.db.QueryRowContext(ctx, `SELECT name, document FROM iam_inline_policies WHERE kind = ? AND owner = ? AND name = ?`, kind, owner, name).Scan(&stored, &doc)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, noSuchEntity("The %s policy with name %s cannot be found.", kind, name)
		}
		if err != nil {
			return nil, err
		}
		if kind == "user" {
			return struct{ UserName, PolicyName, PolicyDocument string }{owner, stored, encodeDocument(doc)}, nil
		}
		return struct{ RoleName, PolicyName, PolicyDocument string }{owner, stored, encodeDocument(doc)}, nil
	}
}

func (s *Service) deleteInline(kind string) handler {
	return func(ctx context.Context, call *api.Call) (any, error) {
		name := call.Params.Get("PolicyName")
		return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
			owner, err := s.owner(ctx, tx, kind, call)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM iam_inline_policies WHERE kind = ? AND owner = ? AND name = ?`, kind, owner, name)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return noSuchEntity("The %s policy with name %s cannot be found.", kind, name)
			}
			return nil
		})
	}
}

func (s *Service) listInline(kind string) handler {
	return func(ctx context.Context, call *api.Call) (any, error) {
		owner, err := s.owner(ctx, s.db, kind, call)
		if err != nil {
			return nil, err
		}
		names, err := stringColumn(ctx, s.db, `SELECT name FROM iam_inline_policies WHERE kind = ? AND owner = ?`, kind, owner)
		if err != nil {
			return nil, err
		}
		page, more, marker, err := paginate(call, names, func(n string) string { return n })
		if err != nil {
			return nil, err
		}
		return struct {
			PolicyNames list[string]
			pageXML
		}{list[string]{page}, pageXML{more, marker}}, nil
	}
}
