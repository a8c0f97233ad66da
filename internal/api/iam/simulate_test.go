package iam_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

// store is an IAM service on a fresh store, driven directly (no HTTP),
// with a settable clock.
func store(t *testing.T, now *time.Time) (*iam.Service, func(action string, kv ...string)) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := iam.Config{AccountID: acct, DataDir: dir}
	if now != nil {
		cfg.Now = func() time.Time { return *now }
	}
	svc, err := iam.New(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, func(action string, kv ...string) {
		t.Helper()
		p := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Set(kv[i], kv[i+1])
		}
		if _, err := svc.Serve(ctx, &api.Call{Action: action, Params: p, Principal: api.Principal{Root: true}}); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
}

func TestSimulateExplains(t *testing.T) {
	t.Parallel()
	svc, serve := store(t, nil)
	ctx := context.Background()
	serve("CreateUser", "UserName", "ops")
	serve("AttachUserPolicy", "UserName", "ops", "PolicyArn", iam.AdminPolicyARN)
	serve("PutUserPolicy", "UserName", "ops", "PolicyName", "guard", "PolicyDocument",
		`{"Version":"2012-10-17","Statement":[{"Sid":"KeepFlowLogs","Effect":"Deny","Action":"ec2:DeleteFlowLogs","Resource":"*"}]}`)
	serve("CreateRole", "RoleName", "flowlogs-role", "Path", "/service/", "AssumeRolePolicyDocument",
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"vpc-flow-logs.amazonaws.com"},"Action":"sts:AssumeRole"}}`)
	serve("PutRolePolicy", "RoleName", "flowlogs-role", "PolicyName", "publish", "PolicyDocument",
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"arn:aws:logs:*:*:log-group:vpc-*"}}`)

	ex, err := svc.Simulate(ctx, iam.SimulateRequest{Principal: "ops", Action: "ec2:DeleteFlowLogs", Context: policy.Context{}})
	if err != nil || ex.Allowed || ex.Decision != "explicitDeny" || ex.Deciding == nil || ex.Deciding.Sid != "KeepFlowLogs" || len(ex.Matched) != 2 ||
		!strings.Contains(ex.Reason, `explicitly denied by statement 0 (Sid "KeepFlowLogs") of inline policy guard of user ops`) {
		t.Fatalf("explicit deny: %+v, %v", ex, err)
	}
	ex, err = svc.Simulate(ctx, iam.SimulateRequest{Principal: "ops", Action: "ec2:CreateFlowLogs"})
	if err != nil || !ex.Allowed || ex.Deciding.Policy != "managed policy "+iam.AdminPolicyARN {
		t.Fatalf("allow: %+v, %v", ex, err)
	}
	// A role by ARN (with its path), by name, and one of its sessions.
	for _, who := range []string{"arn:aws:iam::" + acct + ":role/service/flowlogs-role", "flowlogs-role", "arn:aws:sts::" + acct + ":assumed-role/flowlogs-role/s1"} {
		ex, err = svc.Simulate(ctx, iam.SimulateRequest{Principal: who, Action: "logs:PutLogEvents", Resource: "arn:aws:logs:us-east-1:" + acct + ":log-group:vpc-flow-logs:log-stream:x"})
		if err != nil || !ex.Allowed || ex.Principal != "arn:aws:iam::"+acct+":role/service/flowlogs-role" || ex.Context["aws:principaltype"][0] != "AssumedRole" {
			t.Fatalf("role %s: %+v, %v", who, ex, err)
		}
	}
	ex, _ = svc.Simulate(ctx, iam.SimulateRequest{Principal: "flowlogs-role", Action: "logs:PutLogEvents", Resource: "arn:aws:logs:us-east-1:" + acct + ":log-group:other"})
	if ex.Allowed || ex.Decision != "implicitDeny" || ex.Deciding != nil {
		t.Fatalf("role on another group: %+v", ex)
	}
	if ex, err := svc.Simulate(ctx, iam.SimulateRequest{Principal: "root", Action: "iam:DeleteUser"}); err != nil || !ex.Allowed {
		t.Fatalf("root: %+v, %v", ex, err)
	}
	if _, err := svc.Simulate(ctx, iam.SimulateRequest{Principal: "arn:aws:iam::999999999999:user/x", Action: "iam:GetUser"}); err == nil {
		t.Fatal("a principal of another account was simulated")
	}
}

func TestDeliverySessions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	svc, serve := store(t, &now)
	ctx := context.Background()
	roleARN := "arn:aws:iam::" + acct + ":role/flowlogs-role"
	var de *iam.DeliveryError
	if _, err := svc.AssumeRoleForDelivery(ctx, roleARN, iam.DeliveryService); !errors.As(err, &de) || !strings.HasPrefix(err.Error(), "Access error: ") {
		t.Fatalf("missing role: %v", err)
	}
	if _, err := svc.AssumeRoleForDelivery(ctx, "arn:aws:iam::999999999999:role/flowlogs-role", iam.DeliveryService); !errors.As(err, &de) {
		t.Fatalf("role of another account: %v", err)
	}
	serve("CreateRole", "RoleName", "flowlogs-role", "AssumeRolePolicyDocument",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["vpc-flow-logs.amazonaws.com"]},"Action":"sts:AssumeRole"},{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalServiceName":"delivery.logs.amazonaws.com"}}}]}`)
	if _, err := svc.AssumeRoleForDelivery(ctx, roleARN, "delivery.logs.amazonaws.com"); !errors.As(err, &de) || !strings.Contains(err.Error(), "denies delivery.logs.amazonaws.com") {
		t.Fatalf("denied service: %v", err)
	}
	c, err := svc.AssumeRoleForDelivery(ctx, roleARN, iam.DeliveryService)
	if err != nil || !c.Expiration.Equal(now.Add(time.Hour)) {
		t.Fatalf("assume: %+v, %v", c, err)
	}
	secret, p, err := svc.Lookup(ctx, c.AccessKeyID, c.SessionToken)
	if err != nil || secret != c.SecretAccessKey || p.ARN != "arn:aws:sts::"+acct+":assumed-role/flowlogs-role/flowlog-delivery" || p.Root || p.UserName != "" {
		t.Fatalf("lookup session: %q %+v %v", secret, p, err)
	}
	if _, _, err := svc.Lookup(ctx, c.AccessKeyID, ""); err == nil {
		t.Fatal("a session key without its token was accepted")
	}
	// The role's policies decide the session's calls.
	call := &api.Call{Service: "logs", Principal: p}
	req := api.Request{Call: call, Action: "logs:PutLogEvents", Resources: []string{"arn:aws:logs:us-east-1:" + acct + ":log-group:vpc-flow-logs"}}
	if err := svc.Authorize(ctx, req); err == nil || api.AsError(err).Code != "AccessDeniedException" {
		t.Fatalf("session without policies: %v", err)
	}
	serve("PutRolePolicy", "RoleName", "flowlogs-role", "PolicyName", "publish", "PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"logs:*","Resource":"*"}}`)
	if err := svc.Authorize(ctx, req); err != nil {
		t.Fatalf("session with the publish policy: %v", err)
	}
	// Expired after an hour.
	now = now.Add(time.Hour)
	if _, _, err := svc.Lookup(ctx, c.AccessKeyID, c.SessionToken); err == nil {
		t.Fatal("an expired session was accepted")
	}
}
