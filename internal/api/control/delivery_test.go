package control_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// startWithIAM serves EC2, CloudWatch Logs, IAM (credentials and
// authorizer) and the agent protocol with delivery roles, as flowlog
// serve does; without roles, the agent protocol issues none.
func startWithIAM(t *testing.T, roles bool) *apitest.Server {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fl, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := logs.New(ctx, db, logs.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	im, err := iam.New(ctx, db, iam.Config{AccountID: apitest.AccountID, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	opts := control.ServiceOptions{PollWait: time.Second}
	if roles {
		opts.DeliveryRoles = im
	}
	return apitest.Start(t, api.Options{
		Services: []api.Service{fl, lg, im, control.NewService(fl, opts)},
		Credentials: api.CredentialChain{
			api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}},
			im,
		},
		Authorizer: im,
	})
}

const (
	trustEC2      = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	trustFlowLogs = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"vpc-flow-logs.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	publish       = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogGroups","logs:DescribeLogStreams"],"Resource":"*"}]}`
	roleARN       = "arn:aws:iam::" + apitest.AccountID + ":role/flowlogs-role"
)

// createFlowLog creates a flow log with the CLI and returns its id.
func createFlowLog(t *testing.T, srv *apitest.Server, args ...string) string {
	t.Helper()
	var out struct{ FlowLogIds []string }
	srv.NewCLI().JSON(t, &out, append([]string{"ec2", "create-flow-logs", "--traffic-type", "ALL"}, args...)...)
	if len(out.FlowLogIds) != 1 {
		t.Fatalf("create-flow-logs %v: %+v", args, out)
	}
	return out.FlowLogIds[0]
}

// deliverySDK is a CloudWatch Logs client of the server signed with the
// flow log's delivery credentials, as the agent's destination is.
func deliverySDK(url string, c *control.Client, flowLogID string) (*cloudwatchlogs.Client, *aws.CredentialsCache) {
	cache := aws.NewCredentialsCache(&control.DeliveryCredentialsProvider{Client: c, AgentID: registration.AgentID, FlowLogID: flowLogID})
	return cloudwatchlogs.New(cloudwatchlogs.Options{Region: apitest.Region, BaseEndpoint: aws.String(url), Credentials: cache}), cache
}

func putEvent(ctx context.Context, cw *cloudwatchlogs.Client, msg string) error {
	_, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{
		LogGroupName: aws.String("vpc-flow-logs"), LogStreamName: aws.String("eni-0123456789abcdef0-all"),
		LogEvents: []types.InputLogEvent{{Timestamp: aws.Int64(time.Now().UnixMilli()), Message: aws.String(msg)}},
	})
	return err
}

// TestDeliveryCredentials: GetDeliveryCredentials answers only for a
// flow log covering the agent; with the trust principal ec2.amazonaws.com
// it is refused with the access error, which describe-flow-logs shows as
// FAILED, and the SDK's call fails with it; once the trust names
// vpc-flow-logs.amazonaws.com the session (an ASIA key with a token,
// expiring) publishes to the log group with the role's policies only.
func TestDeliveryCredentials(t *testing.T) {
	srv := startWithIAM(t, true)
	ctx := context.Background()
	cli := srv.NewCLI()
	c := newClient(t, srv.URL, apitest.SecretKey)
	if _, err := c.Register(ctx, registration); err != nil {
		t.Fatal(err)
	}
	cli.JSON(t, nil, "iam", "create-role", "--role-name", "flowlogs-role", "--assume-role-policy-document", trustEC2)
	cli.JSON(t, nil, "logs", "create-log-group", "--log-group-name", "vpc-flow-logs")
	cli.JSON(t, nil, "logs", "create-log-stream", "--log-group-name", "vpc-flow-logs", "--log-stream-name", "eni-0123456789abcdef0-all")
	cwl := createFlowLog(t, srv, "--resource-type", "Subnet", "--resource-ids", "subnet-0123456789abcdef0",
		"--log-group-name", "vpc-flow-logs", "--deliver-logs-permission-arn", roleARN)
	file := createFlowLog(t, srv, "--resource-type", "Subnet", "--resource-ids", "subnet-0123456789abcdef0",
		"--log-destination-type", "file", "--log-destination", "/var/log/flowlogs")

	// Refused: the trust policy names ec2.amazonaws.com.
	_, err := c.GetDeliveryCredentials(ctx, control.DeliveryCredentialsRequest{AgentID: registration.AgentID, FlowLogID: cwl})
	const refused = "Access error: the role's trust policy does not allow vpc-flow-logs.amazonaws.com to assume it"
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Code != control.CodeDeliveryAccessError || ce.Message != refused || ce.IsAuth() {
		t.Fatalf("wrong trust principal: %v", err)
	}
	if msg, ok := control.IsDeliveryAccessError(err); !ok || msg != refused {
		t.Errorf("IsDeliveryAccessError: %q %v", msg, ok)
	}
	var described struct {
		FlowLogs []struct{ FlowLogId, DeliverLogsStatus, DeliverLogsErrorMessage string }
	}
	cli.JSON(t, &described, "ec2", "describe-flow-logs", "--flow-log-ids", cwl)
	if len(described.FlowLogs) != 1 || described.FlowLogs[0].DeliverLogsStatus != "FAILED" || described.FlowLogs[0].DeliverLogsErrorMessage != refused {
		t.Fatalf("describe-flow-logs after a refused role: %+v", described)
	}
	cw, cache := deliverySDK(srv.URL, c, cwl)
	if err := putEvent(ctx, cw, "refused"); err == nil {
		t.Fatal("PutLogEvents with a refused role succeeded")
	} else if msg, ok := control.IsDeliveryAccessError(err); !ok || msg != refused {
		t.Fatalf("PutLogEvents with a refused role: %v", err)
	}

	// Only flow logs that cover the agent; an agent the server has no
	// registration of is told to register.
	for req, code := range map[control.DeliveryCredentialsRequest]string{
		{AgentID: "i-another", FlowLogID: cwl}:                             control.CodeUnknownAgent,
		{AgentID: registration.AgentID, FlowLogID: "fl-00000000000000000"}: "InvalidFlowLogId.NotFound",
	} {
		_, err := c.GetDeliveryCredentials(ctx, req)
		if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || ce.Code != code {
			t.Errorf("%+v: %v, want %s", req, err, code)
		}
	}
	if _, err := c.GetDeliveryCredentials(ctx, control.DeliveryCredentialsRequest{AgentID: registration.AgentID}); !errors.As(err, &ce) || ce.Code != "MissingParameter" {
		t.Errorf("without a flow log id: %v", err)
	}
	// A flow log without a role: the agent's own keys.
	if d, err := c.GetDeliveryCredentials(ctx, control.DeliveryCredentialsRequest{AgentID: registration.AgentID, FlowLogID: file}); err != nil || !d.AgentKeys || d.AccessKeyID != "" {
		t.Errorf("file flow log: %+v %v", d, err)
	}

	// Trusted, without permissions: the session works, the role's
	// policies refuse the call.
	cli.JSON(t, nil, "iam", "update-assume-role-policy", "--role-name", "flowlogs-role", "--policy-document", trustFlowLogs)
	d, err := c.GetDeliveryCredentials(ctx, control.DeliveryCredentialsRequest{AgentID: registration.AgentID, FlowLogID: cwl})
	if err != nil || !strings.HasPrefix(d.AccessKeyID, "ASIA") || d.SecretAccessKey == "" || d.SessionToken == "" || d.AgentKeys ||
		time.Until(d.Expiration) < 50*time.Minute || time.Until(d.Expiration) > time.Hour+time.Minute {
		t.Fatalf("trusted role: %+v %v", d, err)
	}
	err = putEvent(ctx, cw, "no permission")
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), "assumed-role/flowlogs-role/flowlog-delivery") {
		t.Fatalf("PutLogEvents by a role without logs permissions: %v", err)
	}
	cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "flowlogs-role", "--policy-name", "publish", "--policy-document", publish)
	if err := putEvent(ctx, cw, "delivered with the role"); err != nil {
		t.Fatalf("PutLogEvents with the role's session: %v", err)
	}
	creds, err := cache.Retrieve(ctx)
	if err != nil || !strings.HasPrefix(creds.AccessKeyID, "ASIA") || !creds.CanExpire || creds.Source != "flowlog delivery role session" {
		t.Errorf("cached credentials: %+v %v", creds, err)
	}
	var events struct{ Events []struct{ Message string } }
	cli.JSON(t, &events, "logs", "get-log-events", "--log-group-name", "vpc-flow-logs", "--log-stream-name", "eni-0123456789abcdef0-all")
	if len(events.Events) != 1 || events.Events[0].Message != "delivered with the role" {
		t.Errorf("events: %+v", events)
	}

	// The call is authorized as flowlog:GetDeliveryCredentials: an agent
	// key allowed the other agent calls only is refused.
	cli.JSON(t, nil, "iam", "create-user", "--user-name", "agent-1")
	cli.JSON(t, nil, "iam", "put-user-policy", "--user-name", "agent-1", "--policy-name", "agent", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["flowlog:Register","flowlog:WatchFlowLogs","flowlog:ReportStatus"],"Resource":"*"}]}`)
	var key struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	cli.JSON(t, &key, "iam", "create-access-key", "--user-name", "agent-1")
	agent, err := control.NewClient(control.ClientConfig{URL: srv.URL, AccessKeyID: key.AccessKey.AccessKeyId, SecretAccessKey: key.AccessKey.SecretAccessKey, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Watch(ctx, control.WatchRequest{AgentID: registration.AgentID}); err != nil {
		t.Fatalf("agent-1 watch: %v", err)
	}
	_, err = agent.GetDeliveryCredentials(ctx, control.DeliveryCredentialsRequest{AgentID: registration.AgentID, FlowLogID: cwl})
	if !errors.As(err, &ce) || ce.Code != "AccessDenied" || !strings.Contains(ce.Message, "flowlog:GetDeliveryCredentials") {
		t.Errorf("agent-1 without flowlog:GetDeliveryCredentials: %v", err)
	}
}

// TestDeliveryCredentialsWithoutRoles: a server without delivery roles
// (no IAM) answers AgentKeys, and a server older than the operation 404
// UnknownOperation; either way the provider hands out the agent's own
// keys, for a while.
func TestDeliveryCredentialsWithoutRoles(t *testing.T) {
	srv := startWithIAM(t, false)
	ctx := context.Background()
	c := newClient(t, srv.URL, apitest.SecretKey)
	if _, err := c.Register(ctx, registration); err != nil {
		t.Fatal(err)
	}
	cwl := createFlowLog(t, srv, "--resource-type", "Subnet", "--resource-ids", "subnet-0123456789abcdef0",
		"--log-group-name", "vpc-flow-logs", "--deliver-logs-permission-arn", roleARN)
	d, err := c.GetDeliveryCredentials(ctx, control.DeliveryCredentialsRequest{AgentID: registration.AgentID, FlowLogID: cwl})
	if err != nil || !d.AgentKeys {
		t.Fatalf("without roles: %+v %v", d, err)
	}
	check := func(c *control.Client, what string) {
		t.Helper()
		creds, err := (&control.DeliveryCredentialsProvider{Client: c, AgentID: registration.AgentID, FlowLogID: cwl}).Retrieve(ctx)
		if err != nil || creds.AccessKeyID != apitest.AccessKey || creds.SecretAccessKey != apitest.SecretKey || creds.SessionToken != "" ||
			!creds.CanExpire || time.Until(creds.Expires) < 14*time.Minute || time.Until(creds.Expires) > 15*time.Minute {
			t.Errorf("%s: %+v %v", what, creds, err)
		}
	}
	check(c, "server without roles")

	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"code":"UnknownOperation","message":"no operation GetDeliveryCredentials under /flowlog/v1/"}`))
	}))
	defer old.Close()
	check(newClient(t, old.URL, apitest.SecretKey), "server without the operation")
}
