package iam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// schema: names compare case-insensitively, as IAM's do (a user "Alice"
// and a user "alice" cannot both exist). Timestamps are Unix seconds.
const schema = `
CREATE TABLE IF NOT EXISTS iam_users (
	name    TEXT PRIMARY KEY COLLATE NOCASE,
	id      TEXT NOT NULL,
	path    TEXT NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS iam_access_keys (
	id        TEXT PRIMARY KEY,
	user_name TEXT NOT NULL COLLATE NOCASE,
	secret    BLOB NOT NULL,  -- AES-256-GCM, nonce first, key id as additional data
	status    TEXT NOT NULL,  -- Active | Inactive
	created   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS iam_access_keys_user ON iam_access_keys(user_name);
CREATE TABLE IF NOT EXISTS iam_roles (
	name        TEXT PRIMARY KEY COLLATE NOCASE,
	id          TEXT NOT NULL,
	path        TEXT NOT NULL,
	trust       TEXT NOT NULL,
	description TEXT NOT NULL,
	max_session INTEGER NOT NULL,
	created     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS iam_policies (
	arn         TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
	id          TEXT NOT NULL,
	path        TEXT NOT NULL,
	document    TEXT NOT NULL,
	description TEXT NOT NULL,
	created     INTEGER NOT NULL,
	updated     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS iam_inline_policies (
	kind     TEXT NOT NULL,   -- user | role
	owner    TEXT NOT NULL COLLATE NOCASE,
	name     TEXT NOT NULL COLLATE NOCASE,
	document TEXT NOT NULL,
	PRIMARY KEY (kind, owner, name)
);
CREATE TABLE IF NOT EXISTS iam_attached_policies (
	kind       TEXT NOT NULL, -- user | role
	owner      TEXT NOT NULL COLLATE NOCASE,
	policy_arn TEXT NOT NULL,
	PRIMARY KEY (kind, owner, policy_arn)
);
CREATE INDEX IF NOT EXISTS iam_attached_policies_arn ON iam_attached_policies(policy_arn);
CREATE TABLE IF NOT EXISTS iam_sessions (
	key_id       TEXT PRIMARY KEY,
	role_name    TEXT NOT NULL COLLATE NOCASE,
	session_name TEXT NOT NULL,
	secret       BLOB NOT NULL,
	token_hash   BLOB NOT NULL, -- SHA-256 of the session token
	expires      INTEGER NOT NULL
);
`

// user is a row of iam_users.
type user struct {
	Name, ID, Path string
	Created        time.Time
}

type role struct {
	Name, ID, Path, Trust, Description string
	MaxSession                         int
	Created                            time.Time
}

type managedPolicy struct {
	ARN, Name, ID, Path, Document, Description string
	Created, Updated                           time.Time
	Attachments                                int
}

type accessKey struct {
	ID, UserName, Status string
	Secret               []byte
	Created              time.Time
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func getUser(ctx context.Context, q querier, name string) (user, bool, error) {
	var u user
	var created int64
	err := q.QueryRowContext(ctx, `SELECT name, id, path, created FROM iam_users WHERE name = ?`, name).Scan(&u.Name, &u.ID, &u.Path, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, false, nil
	}
	if err != nil {
		return u, false, fmt.Errorf("read iam user %s: %w", name, err)
	}
	u.Created = time.Unix(created, 0).UTC()
	return u, true, nil
}

func getRole(ctx context.Context, q querier, name string) (role, bool, error) {
	var r role
	var created int64
	err := q.QueryRowContext(ctx, `SELECT name, id, path, trust, description, max_session, created FROM iam_roles WHERE name = ?`, name).
		Scan(&r.Name, &r.ID, &r.Path, &r.Trust, &r.Description, &r.MaxSession, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read iam role %s: %w", name, err)
	}
	r.Created = time.Unix(created, 0).UTC()
	return r, true, nil
}

const policyColumns = `p.arn, p.name, p.id, p.path, p.document, p.description, p.created, p.updated,
	(SELECT COUNT(*) FROM iam_attached_policies a WHERE a.policy_arn = p.arn)`

func scanPolicy(sc interface{ Scan(...any) error }) (managedPolicy, error) {
	var p managedPolicy
	var created, updated int64
	err := sc.Scan(&p.ARN, &p.Name, &p.ID, &p.Path, &p.Document, &p.Description, &created, &updated, &p.Attachments)
	p.Created, p.Updated = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return p, err
}

func getPolicy(ctx context.Context, q querier, arn string) (managedPolicy, bool, error) {
	if p, ok := builtinPolicies[arn]; ok {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_attached_policies WHERE policy_arn = ?`, arn).Scan(&n); err != nil {
			return p, false, fmt.Errorf("read iam policy %s: %w", arn, err)
		}
		p.Attachments = n
		return p, true, nil
	}
	p, err := scanPolicy(q.QueryRowContext(ctx, `SELECT `+policyColumns+` FROM iam_policies p WHERE p.arn = ?`, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read iam policy %s: %w", arn, err)
	}
	return p, true, nil
}

// builtinPolicies are the AWS managed policies flowlog knows: enough to
// give an administrator everything the way AWS accounts do.
var builtinPolicies = map[string]managedPolicy{
	"arn:aws:iam::aws:policy/AdministratorAccess": {
		ARN: "arn:aws:iam::aws:policy/AdministratorAccess", Name: "AdministratorAccess", ID: "ANPAIWMBCKSKIEE64ZLYK", Path: "/",
		Document:    `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
		Description: "Provides full access to AWS services and resources.",
		Created:     time.Date(2015, 2, 6, 18, 39, 46, 0, time.UTC), Updated: time.Date(2015, 2, 6, 18, 39, 46, 0, time.UTC),
	},
}

// stringColumn runs a query returning one string column.
func stringColumn(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
