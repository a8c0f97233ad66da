package iam_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/audit"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// env is a running server with the IAM, EC2 and CloudWatch Logs APIs,
// IAM's credentials and authorizer, and the audit trail: what `flowlog
// serve` assembles.
type env struct {
	svc   *iam.Service
	db    *sql.DB
	srv   *apitest.Server
	admin apitest.CLI
	dir   string
	trail *audit.Log
}

func start(t *testing.T) *env {
	t.Helper()
	apitest.RequireCLI(t)
	dir := t.TempDir()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := iam.New(ctx, db, iam.Config{AccountID: apitest.AccountID, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ec2svc, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	logsvc, err := logs.New(ctx, db, logs.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.New(audit.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	trail.Start(ctx)
	root := api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}}
	srv := apitest.Start(t, api.Options{
		Services:    []api.Service{svc, ec2svc, logsvc},
		Credentials: api.CredentialChain{root, svc},
		Authorizer:  svc,
		Audit:       trail,
	})
	t.Cleanup(func() { trail.Stop() })
	return &env{svc: svc, db: db, srv: srv, admin: srv.NewCLI(), dir: dir, trail: trail}
}

// as is the CLI with another key.
func (e *env) as(id, secret string, env ...string) apitest.CLI {
	c := e.srv.NewCLI()
	c.AccessKey, c.SecretKey, c.Env = id, secret, env
	return c
}

type accessKey struct {
	AccessKey struct{ UserName, AccessKeyId, Status, SecretAccessKey string }
}

// user creates a user with one key and returns the CLI with that key.
func (e *env) user(t *testing.T, name string) (apitest.CLI, string) {
	t.Helper()
	e.admin.JSON(t, nil, "iam", "create-user", "--user-name", name)
	var k accessKey
	e.admin.JSON(t, &k, "iam", "create-access-key", "--user-name", name)
	if k.AccessKey.Status != "Active" || !strings.HasPrefix(k.AccessKey.AccessKeyId, "AKIA") || len(k.AccessKey.SecretAccessKey) != 40 {
		t.Fatalf("create-access-key = %+v", k)
	}
	return e.as(k.AccessKey.AccessKeyId, k.AccessKey.SecretAccessKey), k.AccessKey.AccessKeyId
}

// q calls an IAM action signed with the administrator's key, as an SDK
// would, and returns the HTTP status, the error code ("" on success), the
// error message and the body: the fast path for setup and for error
// checks, the CLI being kept for what users see.
func (e *env) q(t *testing.T, action string, kv ...string) (int, string, string, []byte) {
	t.Helper()
	params := url.Values{"Action": {action}, "Version": {iam.Version}}
	for i := 0; i+1 < len(kv); i += 2 {
		params.Set(kv[i], kv[i+1])
	}
	body := []byte(params.Encode())
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "iam", apitest.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, "", "", b
	}
	var er struct {
		Error struct{ Type, Code, Message string }
	}
	if err := xml.Unmarshal(b, &er); err != nil {
		t.Fatalf("%s: HTTP %d: %s", action, resp.StatusCode, b)
	}
	return resp.StatusCode, er.Error.Code, er.Error.Message, b
}

// ok calls an action that must succeed.
func (e *env) ok(t *testing.T, action string, kv ...string) []byte {
	t.Helper()
	status, code, msg, b := e.q(t, action, kv...)
	if code != "" {
		t.Fatalf("%s %v: HTTP %d %s: %s", action, kv, status, code, msg)
	}
	return b
}

// refused calls an action that must fail with status, code and message.
func (e *env) refused(t *testing.T, status int, code, msg, action string, kv ...string) {
	t.Helper()
	gs, gc, gm, _ := e.q(t, action, kv...)
	if gs != status || gc != code || gm != msg {
		t.Fatalf("%s %v: HTTP %d %s %q, want HTTP %d %s %q", action, kv, gs, gc, gm, status, code, msg)
	}
}

// key creates a user and a key through the API, returning the CLI with that key.
func (e *env) key(t *testing.T, name string) (apitest.CLI, string) {
	t.Helper()
	e.ok(t, "CreateUser", "UserName", name)
	var k struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string } `xml:"CreateAccessKeyResult>AccessKey"`
	}
	if err := xml.Unmarshal(e.ok(t, "CreateAccessKey", "UserName", name), &k); err != nil {
		t.Fatal(err)
	}
	return e.as(k.AccessKey.AccessKeyId, k.AccessKey.SecretAccessKey), k.AccessKey.AccessKeyId
}

func file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fails runs the CLI and requires an error whose output holds every want.
func fails(t *testing.T, c apitest.CLI, want []string, args ...string) {
	t.Helper()
	r := c.Run(t, args...)
	if r.ExitCode == 0 {
		t.Fatalf("aws %s succeeded, want %q:\n%s", strings.Join(args, " "), want, r.Stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Fatalf("aws %s: stderr %q lacks %q", strings.Join(args, " "), r.Stderr, w)
		}
	}
}

func testdata(name string) string { return "file://" + filepath.Join("testdata", name) }

func readJSON(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

const acct = apitest.AccountID

// The walkthrough, with the real aws CLI: a publishing policy, a
// delivery role with a trust policy, the policy attached, a log group,
// a least-privilege user; the delivery role can be assumed by the
// delivery service only once its trust policy names it.
func TestWalkthrough(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	var pol struct {
		Policy struct {
			PolicyName, Arn, DefaultVersionId, Path string
			AttachmentCount                         int
			IsAttachable                            bool
		}
	}
	e.admin.JSON(t, &pol, "iam", "create-policy", "--policy-name", "flowlogs-publish", "--policy-document", testdata("publish.json"))
	policyARN := "arn:aws:iam::" + acct + ":policy/flowlogs-publish"
	if pol.Policy.Arn != policyARN || pol.Policy.DefaultVersionId != "v1" || pol.Policy.Path != "/" || !pol.Policy.IsAttachable {
		t.Fatalf("create-policy = %+v", pol)
	}
	var role struct {
		Role struct {
			RoleName, Arn, RoleId    string
			AssumeRolePolicyDocument any
		}
	}
	e.admin.JSON(t, &role, "iam", "create-role", "--role-name", "flowlogs-role", "--assume-role-policy-document", testdata("trust-wrong.json"))
	roleARN := "arn:aws:iam::" + acct + ":role/flowlogs-role"
	if role.Role.Arn != roleARN || !strings.HasPrefix(role.Role.RoleId, "AROA") || !sameJSON(role.Role.AssumeRolePolicyDocument, readJSON(t, "trust-wrong.json")) {
		t.Fatalf("create-role = %+v", role)
	}
	e.admin.JSON(t, nil, "iam", "attach-role-policy", "--role-name", "flowlogs-role", "--policy-arn", policyARN)
	var attached struct {
		AttachedPolicies []struct{ PolicyName, PolicyArn string }
	}
	e.admin.JSON(t, &attached, "iam", "list-attached-role-policies", "--role-name", "flowlogs-role")
	if len(attached.AttachedPolicies) != 1 || attached.AttachedPolicies[0].PolicyArn != policyARN {
		t.Fatalf("list-attached-role-policies = %+v", attached)
	}
	e.admin.JSON(t, &pol, "iam", "get-policy", "--policy-arn", policyARN)
	if pol.Policy.AttachmentCount != 1 {
		t.Fatalf("get-policy after attach = %+v", pol)
	}
	var ver struct{ PolicyVersion struct{ Document any } }
	e.admin.JSON(t, &ver, "iam", "get-policy-version", "--policy-arn", policyARN, "--version-id", "v1")
	if !sameJSON(ver.PolicyVersion.Document, readJSON(t, "publish.json")) {
		t.Fatalf("get-policy-version = %+v", ver)
	}
	e.admin.JSON(t, nil, "logs", "create-log-group", "--log-group-name", "vpc-flow-logs")
	e.admin.JSON(t, nil, "logs", "put-retention-policy", "--log-group-name", "vpc-flow-logs", "--retention-in-days", "7")

	// The wrong trust principal: delivery cannot assume the role.
	_, err := e.svc.AssumeRoleForDelivery(ctx, roleARN, iam.DeliveryService)
	var de *iam.DeliveryError
	if !errors.As(err, &de) || err.Error() != "Access error: the role's trust policy does not allow vpc-flow-logs.amazonaws.com to assume it" {
		t.Fatalf("assume with the ec2 trust principal: %v", err)
	}
	e.admin.JSON(t, nil, "iam", "update-assume-role-policy", "--role-name", "flowlogs-role", "--policy-document", testdata("trust.json"))
	e.admin.JSON(t, &role, "iam", "get-role", "--role-name", "flowlogs-role")
	if !sameJSON(role.Role.AssumeRolePolicyDocument, readJSON(t, "trust.json")) {
		t.Fatalf("get-role after update = %+v", role)
	}
	creds, err := e.svc.AssumeRoleForDelivery(ctx, roleARN, iam.DeliveryService)
	if err != nil || !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" {
		t.Fatalf("assume with the right trust principal: %+v, %v", creds, err)
	}
	// The session publishes to the log group with the role's policy ...
	session := e.as(creds.AccessKeyID, creds.SecretAccessKey, "AWS_SESSION_TOKEN="+creds.SessionToken)
	session.JSON(t, nil, "logs", "create-log-stream", "--log-group-name", "vpc-flow-logs", "--log-stream-name", "eni-0a1b2c3d-all")
	session.JSON(t, nil, "logs", "put-log-events", "--log-group-name", "vpc-flow-logs", "--log-stream-name", "eni-0a1b2c3d-all",
		"--log-events", "timestamp=1700000000000,message=2 123456789012 eni-0a1b2c3d 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK")
	// ... and nothing else.
	fails(t, session, []string{"UnauthorizedOperation", "arn:aws:sts::" + acct + ":assumed-role/flowlogs-role/flowlog-delivery", "ec2:DescribeFlowLogs"}, "ec2", "describe-flow-logs")
	// A session token that does not belong to the key is refused.
	forged := e.as(creds.AccessKeyID, creds.SecretAccessKey, "AWS_SESSION_TOKEN=forged")
	fails(t, forged, []string{"UnrecognizedClientException"}, "logs", "describe-log-groups")

	// A least-privilege user for an agent: may describe flow logs and
	// publish logs, not create flow logs.
	agent, _ := e.user(t, "agent-1")
	e.admin.JSON(t, nil, "iam", "put-user-policy", "--user-name", "agent-1", "--policy-name", "agent",
		"--policy-document", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeFlowLogs","logs:*"],"Resource":"*"}]}`)
	var up struct {
		UserName, PolicyName string
		PolicyDocument       any
	}
	e.admin.JSON(t, &up, "iam", "get-user-policy", "--user-name", "agent-1", "--policy-name", "agent")
	if up.UserName != "agent-1" || up.PolicyName != "agent" || up.PolicyDocument == nil {
		t.Fatalf("get-user-policy = %+v", up)
	}
	agent.JSON(t, nil, "ec2", "describe-flow-logs")
	agent.JSON(t, nil, "logs", "describe-log-groups")
	fails(t, agent, []string{"UnauthorizedOperation", "User: arn:aws:iam::" + acct + ":user/agent-1 is not authorized to perform: ec2:CreateFlowLogs on resource: arn:aws:ec2:" + apitest.Region + ":" + acct + ":vpc/vpc-0a1b2c3d",
		"because no identity-based policy allows the ec2:CreateFlowLogs action"},
		"ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d", "--traffic-type", "ALL",
		"--log-group-name", "vpc-flow-logs", "--deliver-logs-permission-arn", roleARN)
	fails(t, agent, []string{"AccessDenied", "iam:ListUsers"}, "iam", "list-users")
	var me struct {
		User struct{ UserName, Arn string }
	}
	fails(t, agent, []string{"AccessDenied", "iam:GetUser", "user/agent-1"}, "iam", "get-user")
	e.admin.JSON(t, &me, "iam", "get-user", "--user-name", "agent-1")
	if me.User.Arn != "arn:aws:iam::"+acct+":user/agent-1" {
		t.Fatalf("get-user = %+v", me)
	}
	// The root key creates the flow log (the resource is unknown here,
	// so it is reported in Unsuccessful, after authorization passed).
	var created struct{ Unsuccessful []struct{ ResourceId string } }
	e.admin.JSON(t, &created, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d", "--traffic-type", "ALL",
		"--log-group-name", "vpc-flow-logs", "--deliver-logs-permission-arn", roleARN)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := start(t)
	// What the CLI shows of an IAM error.
	e.ok(t, "CreateUser", "UserName", "alice")
	fails(t, e.admin, []string{"An error occurred (EntityAlreadyExists) when calling the CreateUser operation", "User with name alice already exists."}, "iam", "create-user", "--user-name", "alice")
	fails(t, e.admin, []string{"MalformedPolicyDocument", "This policy contains invalid Json"}, "iam", "put-user-policy", "--user-name", "alice", "--policy-name", "p", "--policy-document", "{not json")

	const conflict, notFound, bad = 409, 404, 400
	e.refused(t, conflict, "EntityAlreadyExists", "User with name ALICE already exists.", "CreateUser", "UserName", "ALICE")
	e.refused(t, notFound, "NoSuchEntity", "The user with name bob cannot be found.", "GetUser", "UserName", "bob")
	e.refused(t, notFound, "NoSuchEntity", "The role with name r cannot be found.", "GetRole", "RoleName", "r")
	e.refused(t, bad, "ValidationError", `1 validation error detected: Value 'no spaces' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`, "CreateUser", "UserName", "no spaces")
	e.refused(t, bad, "MalformedPolicyDocument", "Policy statement must contain resources.", "CreatePolicy", "PolicyName", "p",
		"PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:*"}}`)
	e.refused(t, bad, "MalformedPolicyDocument", "Has prohibited field Resource", "CreateRole", "RoleName", "r",
		"AssumeRolePolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"vpc-flow-logs.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}}`)
	e.refused(t, bad, "MalformedPolicyDocument", "Policy document should not specify a principal.", "PutUserPolicy", "UserName", "alice", "PolicyName", "p",
		"PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ec2:*","Resource":"*"}}`)

	// DeleteConflict: a user with keys, with inline policies, with attached policies.
	var k struct {
		ID string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
	}
	xml.Unmarshal(e.ok(t, "CreateAccessKey", "UserName", "alice"), &k)
	var k2 struct {
		ID string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
	}
	xml.Unmarshal(e.ok(t, "CreateAccessKey", "UserName", "alice"), &k2)
	e.refused(t, conflict, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", "CreateAccessKey", "UserName", "alice")
	e.refused(t, conflict, "DeleteConflict", "Cannot delete entity, must delete access keys first.", "DeleteUser", "UserName", "alice")
	e.ok(t, "DeleteAccessKey", "UserName", "alice", "AccessKeyId", k.ID)
	e.ok(t, "DeleteAccessKey", "UserName", "alice", "AccessKeyId", k2.ID)
	e.refused(t, notFound, "NoSuchEntity", "The Access Key with id "+k.ID+" cannot be found.", "DeleteAccessKey", "UserName", "alice", "AccessKeyId", k.ID)
	e.ok(t, "PutUserPolicy", "UserName", "alice", "PolicyName", "p", "PolicyDocument", file(t, "publish.json"))
	e.refused(t, conflict, "DeleteConflict", "Cannot delete entity, must delete policies first.", "DeleteUser", "UserName", "alice")
	e.ok(t, "DeleteUserPolicy", "UserName", "alice", "PolicyName", "p")
	e.refused(t, notFound, "NoSuchEntity", "The user policy with name p cannot be found.", "GetUserPolicy", "UserName", "alice", "PolicyName", "p")
	e.ok(t, "CreatePolicy", "PolicyName", "pub", "PolicyDocument", file(t, "publish.json"))
	e.refused(t, conflict, "EntityAlreadyExists", "A policy called pub already exists. Duplicate names are not allowed.", "CreatePolicy", "PolicyName", "pub", "PolicyDocument", file(t, "publish.json"))
	pub := "arn:aws:iam::" + acct + ":policy/pub"
	e.ok(t, "AttachUserPolicy", "UserName", "alice", "PolicyArn", pub)
	e.refused(t, conflict, "DeleteConflict", "Cannot delete entity, must detach all policies first.", "DeleteUser", "UserName", "alice")
	e.refused(t, conflict, "DeleteConflict", "Cannot delete a policy attached to entities.", "DeletePolicy", "PolicyArn", pub)
	e.refused(t, notFound, "NoSuchEntity", "Policy "+pub+"-nope does not exist or is not attachable.", "AttachUserPolicy", "UserName", "alice", "PolicyArn", pub+"-nope")
	e.ok(t, "DetachUserPolicy", "UserName", "alice", "PolicyArn", pub)
	e.refused(t, notFound, "NoSuchEntity", "Policy "+pub+" was not attached.", "DetachUserPolicy", "UserName", "alice", "PolicyArn", pub)
	e.ok(t, "DeleteUser", "UserName", "alice")

	// A role with an attached policy or an inline one.
	e.ok(t, "CreateRole", "RoleName", "r", "AssumeRolePolicyDocument", file(t, "trust.json"))
	e.refused(t, conflict, "EntityAlreadyExists", "Role with name r already exists.", "CreateRole", "RoleName", "r", "AssumeRolePolicyDocument", file(t, "trust.json"))
	e.ok(t, "AttachRolePolicy", "RoleName", "r", "PolicyArn", pub)
	e.refused(t, conflict, "DeleteConflict", "Cannot delete entity, must detach all policies first.", "DeleteRole", "RoleName", "r")
	e.ok(t, "DetachRolePolicy", "RoleName", "r", "PolicyArn", pub)
	e.ok(t, "PutRolePolicy", "RoleName", "r", "PolicyName", "inline", "PolicyDocument", file(t, "publish.json"))
	var rp struct {
		Doc string `xml:"GetRolePolicyResult>PolicyDocument"`
	}
	xml.Unmarshal(e.ok(t, "GetRolePolicy", "RoleName", "r", "PolicyName", "inline"), &rp)
	if doc, err := url.PathUnescape(rp.Doc); err != nil || doc != file(t, "publish.json") || !strings.HasPrefix(rp.Doc, "%7B") {
		t.Fatalf("GetRolePolicy document %q: want the stored text URL-encoded", rp.Doc)
	}
	var names struct {
		Names []string `xml:"ListRolePoliciesResult>PolicyNames>member"`
	}
	xml.Unmarshal(e.ok(t, "ListRolePolicies", "RoleName", "r"), &names)
	if len(names.Names) != 1 || names.Names[0] != "inline" {
		t.Fatalf("ListRolePolicies = %+v", names)
	}
	e.refused(t, conflict, "DeleteConflict", "Cannot delete entity, must delete policies first.", "DeleteRole", "RoleName", "r")
	e.ok(t, "DeleteRolePolicy", "RoleName", "r", "PolicyName", "inline")
	e.ok(t, "DeleteRole", "RoleName", "r")
	e.ok(t, "DeletePolicy", "PolicyArn", pub)
	e.refused(t, notFound, "NoSuchEntity", "Policy "+pub+" was not found.", "GetPolicy", "PolicyArn", pub)
	big := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:*","Resource":[` + strings.Repeat(`"arn:aws:ec2:*:*:vpc/vpc-0123456789",`, 60) + `"*"]}}`
	e.refused(t, conflict, "LimitExceeded", "Maximum policy size of 2048 bytes exceeded for user bob", "PutUserPolicy", "UserName", "bob", "PolicyName", "big", "PolicyDocument", big)
	e.refused(t, bad, "InvalidAction", "Could not find operation CreateGroup for version 2010-05-08", "CreateGroup", "GroupName", "g")
}

func TestListsPaginate(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, n := range []string{"u3", "u1", "u2", "u5", "u4"} {
		e.ok(t, "CreateUser", "UserName", n)
	}
	// --page-size makes the CLI fetch 2 per call and follow Marker.
	var users struct {
		Users []struct{ UserName, Arn, UserId string }
	}
	e.admin.JSON(t, &users, "iam", "list-users", "--page-size", "2")
	if len(users.Users) != 5 || users.Users[0].UserName != "u1" || users.Users[4].UserName != "u5" || !strings.HasPrefix(users.Users[2].UserId, "AIDA") {
		t.Fatalf("list-users = %+v", users)
	}
	var page struct {
		Users     []struct{ UserName string }
		NextToken string
	}
	e.admin.JSON(t, &page, "iam", "list-users", "--max-items", "3")
	if len(page.Users) != 3 || page.NextToken == "" {
		t.Fatalf("list-users --max-items 3 = %+v", page)
	}
	var pols struct {
		Policies []struct{ PolicyName, Arn string }
	}
	e.admin.JSON(t, &pols, "iam", "list-policies", "--scope", "AWS")
	if len(pols.Policies) != 1 || pols.Policies[0].Arn != iam.AdminPolicyARN {
		t.Fatalf("list-policies --scope AWS = %+v", pols)
	}
	var roles struct{ Roles []any }
	e.admin.JSON(t, &roles, "iam", "list-roles")
	if roles.Roles == nil || len(roles.Roles) != 0 {
		t.Fatalf("list-roles on none = %+v", roles)
	}
}

func TestDeactivatedAndDeletedKeysRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice, id := e.key(t, "alice")
	e.ok(t, "AttachUserPolicy", "UserName", "alice", "PolicyArn", iam.AdminPolicyARN)
	alice.JSON(t, nil, "iam", "list-users")
	e.admin.JSON(t, nil, "iam", "update-access-key", "--user-name", "alice", "--access-key-id", id, "--status", "Inactive")
	var keys struct {
		AccessKeyMetadata []struct{ AccessKeyId, Status string }
	}
	e.admin.JSON(t, &keys, "iam", "list-access-keys", "--user-name", "alice")
	if len(keys.AccessKeyMetadata) != 1 || keys.AccessKeyMetadata[0].Status != "Inactive" {
		t.Fatalf("list-access-keys = %+v", keys)
	}
	fails(t, alice, []string{"InvalidClientTokenId", "The security token included in the request is invalid."}, "iam", "list-users")
	e.ok(t, "UpdateAccessKey", "UserName", "alice", "AccessKeyId", id, "Status", "Active")
	alice.JSON(t, nil, "iam", "list-users")
	// A user manages their own keys without naming themselves.
	alice.JSON(t, &keys, "iam", "list-access-keys")
	if len(keys.AccessKeyMetadata) != 1 || keys.AccessKeyMetadata[0].AccessKeyId != id {
		t.Fatalf("own list-access-keys = %+v", keys)
	}
	e.ok(t, "DeleteAccessKey", "UserName", "alice", "AccessKeyId", id)
	fails(t, alice, []string{"InvalidClientTokenId", "The security token included in the request is invalid."}, "iam", "list-users")
}

// "Policy evaluation logic": an explicit deny in any policy overrides
// the allow of AdministratorAccess.
func TestExplicitDenyBeatsAllow(t *testing.T) {
	t.Parallel()
	e := start(t)
	bob, _ := e.key(t, "bob")
	e.ok(t, "AttachUserPolicy", "UserName", "bob", "PolicyArn", iam.AdminPolicyARN)
	bob.JSON(t, nil, "ec2", "describe-flow-logs")
	e.ok(t, "PutUserPolicy", "UserName", "bob", "PolicyName", "no-ec2",
		"PolicyDocument", `{"Version":"2012-10-17","Statement":{"Sid":"NoEC2","Effect":"Deny","Action":"ec2:*","Resource":"*"}}`)
	fails(t, bob, []string{"UnauthorizedOperation", "ec2:DescribeFlowLogs", "with an explicit deny in an identity-based policy"}, "ec2", "describe-flow-logs")
	// A condition on the source address: bob's calls come from 127.0.0.1.
	e.ok(t, "PutUserPolicy", "UserName", "bob", "PolicyName", "no-ec2",
		"PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`)
	fails(t, bob, []string{"AccessDeniedException", "logs:DescribeLogGroups", "explicit deny"}, "logs", "describe-log-groups")
	e.ok(t, "PutUserPolicy", "UserName", "bob", "PolicyName", "no-ec2",
		"PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}}`)
	bob.JSON(t, nil, "logs", "describe-log-groups")
	// Plain HTTP: aws:SecureTransport is false.
	e.ok(t, "PutUserPolicy", "UserName", "bob", "PolicyName", "no-ec2",
		"PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`)
	fails(t, bob, []string{"AccessDenied", "iam:ListUsers"}, "iam", "list-users")
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e := start(t)
	carol, id := e.key(t, "carol")
	fails(t, carol, []string{"UnauthorizedOperation"}, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-1", "--traffic-type", "ALL",
		"--log-destination-type", "s3", "--log-destination", "arn:aws:s3:::bucket")
	e.refused(t, 404, "NoSuchEntity", "The role with name nope cannot be found.", "GetRole", "RoleName", "nope")
	bad := e.as("AKIAUNKNOWNKEY000001", "x")
	fails(t, bad, []string{"InvalidClientTokenId"}, "iam", "list-users")
	if err := e.trail.Stop(); err != nil {
		t.Fatal(err)
	}
	var evs []audit.Event
	if _, err := audit.Read(filepath.Join(e.dir, "audit"), audit.Filter{}, func(ev audit.Event) error { evs = append(evs, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	find := func(action, result string) audit.Event {
		t.Helper()
		for _, ev := range evs {
			if ev.Action == action && ev.Result == result {
				return ev
			}
		}
		t.Fatalf("no %s %s line in %+v", result, action, evs)
		return audit.Event{}
	}
	if ev := find("CreateUser", audit.ResultAllowed); ev.Principal != "arn:aws:iam::"+acct+":root" || ev.Service != "iam" || ev.SourceIP != "127.0.0.1" ||
		len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:iam::"+acct+":user/carol" || ev.RequestID == "" || ev.Time.IsZero() {
		t.Fatalf("create-user line %+v", ev)
	}
	if ev := find("CreateFlowLogs", audit.ResultDenied); ev.Principal != "arn:aws:iam::"+acct+":user/carol" || ev.AccessKeyID != id || ev.ErrorCode != "UnauthorizedOperation" ||
		len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:ec2:"+apitest.Region+":"+acct+":vpc/vpc-1" {
		t.Fatalf("create-flow-logs line %+v", ev)
	}
	if ev := find("GetRole", audit.ResultError); ev.ErrorCode != "NoSuchEntity" {
		t.Fatalf("get-role line %+v", ev)
	}
	if ev := find("", audit.ResultDenied); ev.ErrorCode != "InvalidClientTokenId" || ev.Principal != "" || ev.AccessKeyID != "AKIAUNKNOWNKEY000001" {
		t.Fatalf("unknown key line %+v", ev)
	}
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	t.Parallel()
	e := start(t)
	var k accessKey
	e.ok(t, "CreateUser", "UserName", "dave")
	if err := xml.Unmarshal(e.ok(t, "CreateAccessKey", "UserName", "dave"), &struct {
		R *accessKey `xml:"CreateAccessKeyResult"`
	}{&k}); err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	if err := e.db.QueryRow(`SELECT secret FROM iam_access_keys WHERE id = ?`, k.AccessKey.AccessKeyId).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), k.AccessKey.SecretAccessKey) || len(sealed) < 40 {
		t.Fatalf("stored secret is not sealed: %q", sealed)
	}
	keyFile := filepath.Join(e.dir, iam.KeyFile)
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	// A key file others can read is refused, naming the file and the fix.
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = iam.New(context.Background(), e.db, iam.Config{AccountID: acct, DataDir: e.dir})
	if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
		t.Fatalf("world-readable key file: %v", err)
	}
	// Another key cannot open the stored secrets: the key is refused.
	os.Chmod(keyFile, 0o600)
	other := t.TempDir()
	svc2, err := iam.New(context.Background(), e.db, iam.Config{AccountID: acct, DataDir: other})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc2.Lookup(context.Background(), k.AccessKey.AccessKeyId, ""); err == nil {
		t.Fatal("a secret sealed with another key opened")
	}
}
