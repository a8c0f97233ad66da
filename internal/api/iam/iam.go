// Package iam owns flowlog's IAM: the IAM Query API subset of `flowlog
// serve` (users, access keys, roles, managed and inline policies), the
// store behind it (iam_* tables, secret access keys encrypted at rest
// with the server's key file), the Credentials that accept IAM users'
// keys and delivery-role sessions, and the Authorizer that decides every
// API call with the principal's policies (package policy).
package iam

import (
	"context"
	"database/sql"
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

// API constants of IAM's Query protocol.
const (
	SigningName  = "iam"
	Version      = "2010-05-08"
	XMLNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
)

// Config says how the IAM service runs.
type Config struct {
	AccountID string
	// DataDir holds KeyFile, the key that encrypts secret access keys.
	DataDir string
	// SessionDuration is how long delivery-role credentials are valid;
	// 0 means one hour (AWS's default for AssumeRole).
	SessionDuration time.Duration
	// NoSecrets opens the store without the key file: policies can be
	// read and simulated, but no key can be created or checked (for
	// `flowlog iam simulate`).
	NoSecrets bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate reports the first bad field, by the server.yaml key it comes from.
func (c Config) Validate() error {
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(c.AccountID) {
		return fmt.Errorf("account-id: %q is not 12 digits", c.AccountID)
	}
	if c.DataDir == "" && !c.NoSecrets {
		return errors.New("data-dir: empty; the IAM key file lives there")
	}
	if c.SessionDuration < 0 {
		return fmt.Errorf("iam session duration %s is negative", c.SessionDuration)
	}
	return nil
}

// Service is the IAM API, credentials and authorizer of one account.
type Service struct {
	cfg  Config
	db   *sql.DB
	seal *sealer

	ops map[string]handler

	mu   sync.Mutex
	docs map[string]*policy.Document // parsed documents by text
}

// New creates the iam_* tables in db if needed and loads (or creates)
// the key file.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionDuration == 0 {
		cfg.SessionDuration = time.Hour
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new iam service: %w", err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create iam tables: %w", err)
	}
	s := &Service{cfg: cfg, db: db, docs: map[string]*policy.Document{}}
	s.ops = s.handlers()
	if !cfg.NoSecrets {
		seal, err := loadOrCreateKey(filepath.Join(cfg.DataDir, KeyFile))
		if err != nil {
			return nil, err
		}
		s.seal = seal
	}
	return s, nil
}

// Info implements api.Service.
func (s *Service) Info() api.ServiceInfo {
	return api.ServiceInfo{SigningName: SigningName, Protocol: api.ProtocolAWSQuery, Version: Version, XMLNamespace: XMLNamespace}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// ARNs of the account's entities.
func (s *Service) userARN(path, name string) string {
	return "arn:aws:iam::" + s.cfg.AccountID + ":user" + path + name
}
func (s *Service) roleARN(path, name string) string {
	return "arn:aws:iam::" + s.cfg.AccountID + ":role" + path + name
}
func (s *Service) policyARN(path, name string) string {
	return "arn:aws:iam::" + s.cfg.AccountID + ":policy" + path + name
}

// Resources implements api.Service: the user, role or policy an action
// acts on (IAM's resource types; list actions act on "*").
func (s *Service) Resources(ctx context.Context, call *api.Call) ([]string, error) {
	p := call.Params
	switch call.Action {
	case "CreateUser":
		return []string{s.userARN(orDefault(p.Get("Path"), "/"), p.Get("UserName"))}, nil
	case "DeleteUser", "GetUser", "CreateAccessKey", "DeleteAccessKey", "ListAccessKeys", "UpdateAccessKey",
		"AttachUserPolicy", "DetachUserPolicy", "PutUserPolicy", "GetUserPolicy", "DeleteUserPolicy",
		"ListAttachedUserPolicies", "ListUserPolicies":
		name := p.Get("UserName")
		if name == "" {
			if call.Principal.UserName == "" {
				return nil, nil
			}
			name = call.Principal.UserName
		}
		path := "/"
		if u, ok, err := getUser(ctx, s.db, name); err != nil {
			return nil, err
		} else if ok {
			path = u.Path
		}
		return []string{s.userARN(path, name)}, nil
	case "CreateRole":
		return []string{s.roleARN(orDefault(p.Get("Path"), "/"), p.Get("RoleName"))}, nil
	case "GetRole", "DeleteRole", "UpdateAssumeRolePolicy", "AttachRolePolicy", "DetachRolePolicy",
		"PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy", "ListAttachedRolePolicies", "ListRolePolicies":
		name := p.Get("RoleName")
		path := "/"
		if r, ok, err := getRole(ctx, s.db, name); err != nil {
			return nil, err
		} else if ok {
			path = r.Path
		}
		return []string{s.roleARN(path, name)}, nil
	case "CreatePolicy":
		return []string{s.policyARN(orDefault(p.Get("Path"), "/"), p.Get("PolicyName"))}, nil
	case "GetPolicy", "DeletePolicy", "GetPolicyVersion":
		return []string{p.Get("PolicyArn")}, nil
	}
	return nil, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Serve implements api.Service.
func (s *Service) Serve(ctx context.Context, call *api.Call) (any, error) {
	h, ok := s.ops[call.Action]
	if !ok {
		return nil, api.Errorf("InvalidAction", "Could not find operation %s for version %s", call.Action, Version)
	}
	res, err := h(ctx, call)
	if err != nil {
		return nil, err
	}
	return envelope{action: call.Action, requestID: call.RequestID, result: res}, nil
}

// envelope is a Query protocol answer:
// <XResponse xmlns=…><XResult>…</XResult><ResponseMetadata><RequestId>.
type envelope struct {
	action, requestID string
	result            any // nil for actions without output
}

// MarshalXML implements xml.Marshaler.
func (e envelope) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Local: e.action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: XMLNamespace}}}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	if e.result != nil {
		if err := enc.EncodeElement(e.result, xml.StartElement{Name: xml.Name{Local: e.action + "Result"}}); err != nil {
			return err
		}
	}
	meta := struct {
		RequestID string `xml:"RequestId"`
	}{e.requestID}
	if err := enc.EncodeElement(meta, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return err
	}
	return enc.EncodeToken(start.End())
}

// Errors in IAM's codes and wording.
func noSuchEntity(format string, args ...any) *api.Error {
	return &api.Error{Status: 404, Code: "NoSuchEntity", Message: fmt.Sprintf(format, args...)}
}
func alreadyExists(format string, args ...any) *api.Error {
	return &api.Error{Status: 409, Code: "EntityAlreadyExists", Message: fmt.Sprintf(format, args...)}
}
func deleteConflict(msg string) *api.Error {
	return &api.Error{Status: 409, Code: "DeleteConflict", Message: msg}
}
func limitExceeded(format string, args ...any) *api.Error {
	return &api.Error{Status: 409, Code: "LimitExceeded", Message: fmt.Sprintf(format, args...)}
}
func malformedPolicy(msg string) *api.Error {
	return &api.Error{Status: 400, Code: "MalformedPolicyDocument", Message: msg}
}
func invalidInput(format string, args ...any) *api.Error {
	return &api.Error{Status: 400, Code: "InvalidInput", Message: fmt.Sprintf(format, args...)}
}

// validation is AWS's ValidationError for a parameter that breaks its
// model's constraints.
func validation(value, member, constraint string) *api.Error {
	return &api.Error{Status: 400, Code: "ValidationError",
		Message: fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)}
}

func required(member string) *api.Error {
	return &api.Error{Status: 400, Code: "ValidationError",
		Message: fmt.Sprintf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)}
}
