package iam_test

import (
	"context"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam"
)

// benchService is a store with user "agent" holding an inline policy and
// a managed one, and its key.
func benchService(b *testing.B) (*iam.Service, string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	svc, err := iam.New(ctx, db, iam.Config{AccountID: acct, DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	serve := func(action string, kv ...string) {
		p := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Set(kv[i], kv[i+1])
		}
		if _, err := svc.Serve(ctx, &api.Call{Action: action, Params: p, Principal: api.Principal{Root: true}}); err != nil {
			b.Fatal(err)
		}
	}
	serve("CreateUser", "UserName", "agent")
	serve("PutUserPolicy", "UserName", "agent", "PolicyName", "p", "PolicyDocument",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*","logs:*"],"Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}`)
	serve("CreatePolicy", "PolicyName", "m", "PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:CreateFlowLogs","Resource":"arn:aws:ec2:*:*:vpc/*"}}`)
	serve("AttachUserPolicy", "UserName", "agent", "PolicyArn", "arn:aws:iam::"+acct+":policy/m")
	k, _, err := svc.CreateAccessKey(ctx, "agent")
	if err != nil {
		b.Fatal(err)
	}
	return svc, k.ID
}

// BenchmarkAuthorize is the authorizer's cost per API call: the user's
// policies read from SQLite (parsed documents are cached) and evaluated.
func BenchmarkAuthorize(b *testing.B) {
	svc, id := benchService(b)
	ctx := context.Background()
	call := &api.Call{Service: "ec2", Action: "CreateFlowLogs", SourceIP: netip.MustParseAddr("127.0.0.1"), Region: "us-east-1", Time: time.Now(),
		Principal: api.Principal{AccountID: acct, ARN: "arn:aws:iam::" + acct + ":user/agent", UserName: "agent", AccessKeyID: id}}
	req := api.Request{Call: call, Action: "ec2:CreateFlowLogs", Resources: []string{"arn:aws:ec2:us-east-1:" + acct + ":vpc/vpc-1"}}
	for b.Loop() {
		if err := svc.Authorize(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookup is the credentials' cost per API call: the key's row,
// its user, and the AES-GCM open of the secret.
func BenchmarkLookup(b *testing.B) {
	svc, id := benchService(b)
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := svc.Lookup(ctx, id, ""); err != nil {
			b.Fatal(err)
		}
	}
}
