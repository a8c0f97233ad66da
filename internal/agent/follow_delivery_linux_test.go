package agent

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/api/logs"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
)

// TestRoleSink: the destination of a flow log with a delivery role, as
// the agent builds it (the server's CloudWatch Logs API signed with the
// role's sessions, behind roleSink and the delivery status), against a
// real server with IAM. A refused role is FAILED with the server's
// access error from the moment the flow log opens (prefetch); a trusted
// role without logs permissions is FAILED with an access error naming
// the role, the group and the API's refusal, the same at every retry;
// once the role may publish, the retried records arrive and the status is
// SUCCESS.
func TestRoleSink(t *testing.T) {
	ctx := context.Background()
	db, err := api.OpenDB(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fls, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region})
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
	srv := apitest.Start(t, api.Options{
		Services: []api.Service{fls, lg, im, control.NewService(fls, control.ServiceOptions{DeliveryRoles: im})},
		Credentials: api.CredentialChain{
			api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}},
			im,
		},
		Authorizer: im,
	})
	cli := srv.NewCLI()
	client, err := control.NewClient(control.ClientConfig{URL: srv.URL, AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	const agentID, eni = "i-0123456789abcdef0", "eni-0123456789abcdef0"
	if _, err := client.Register(ctx, control.Registration{AgentID: agentID, AccountID: apitest.AccountID, Region: apitest.Region,
		VPCs:       []control.VPC{{VPCID: "vpc-0123456789abcdef0", CIDRBlocks: []string{"10.1.0.0/16"}}},
		Subnets:    []control.Subnet{{SubnetID: "subnet-0123456789abcdef0", VPCID: "vpc-0123456789abcdef0", CIDRBlocks: []string{"10.1.2.0/24"}}},
		Interfaces: []control.Interface{{InterfaceID: eni, SubnetID: "subnet-0123456789abcdef0", VPCID: "vpc-0123456789abcdef0", Addresses: []string{"10.1.2.3"}}},
	}); err != nil {
		t.Fatal(err)
	}
	role := "arn:aws:iam::" + apitest.AccountID + ":role/flowlogs-role"
	cli.JSON(t, nil, "iam", "create-role", "--role-name", "flowlogs-role", "--assume-role-policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	var created struct{ FlowLogIds []string }
	cli.JSON(t, &created, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0123456789abcdef0", "--traffic-type", "ALL",
		"--log-group-name", "vpc-flow-logs", "--deliver-logs-permission-arn", role)
	id := created.FlowLogIds[0]

	// The destination as the agent opens it for this flow log.
	set, err := client.Watch(ctx, control.WatchRequest{AgentID: agentID})
	if err != nil || len(set.FlowLogs) != 1 {
		t.Fatalf("watch: %+v %v", set, err)
	}
	def, err := ServerFlowLog(set.FlowLogs[0], &Server{URL: srv.URL})
	if err != nil || def.DeliveryRole != role || def.Destination != "cloudwatch://vpc-flow-logs" {
		t.Fatalf("ServerFlowLog: %+v %v", def, err)
	}
	f := &follower{client: client, agentID: agentID}
	creds := f.deliveryCredentials(id)
	cw, err := cloudwatch.New(cloudwatch.Config{Group: "vpc-flow-logs", Format: flow.DefaultFormat(),
		Client: cloudwatchlogs.New(cloudwatchlogs.Options{Region: apitest.Region, BaseEndpoint: aws.String(srv.URL), Credentials: creds})})
	if err != nil {
		t.Fatal(err)
	}
	rs := &roleSink{inner: cw, role: role, creds: creds}
	st := newDelivery(rs, time.Now)

	// Refused at once: the trust names ec2.amazonaws.com.
	rs.prefetch(ctx, st)
	const refused = "Access error: the role's trust policy does not allow vpc-flow-logs.amazonaws.com to assume it"
	if s := st.status(id); s.Status != "FAILED" || s.Message != refused {
		t.Fatalf("after prefetch: %+v", s)
	}
	now := time.Now().Unix() / 60 * 60
	rec := flow.Record{Present: flow.DefaultFormat().Set(), Version: 2, AccountID: apitest.AccountID, InterfaceID: eni, SrcAddr: netip.MustParseAddr("10.1.2.3"), DstAddr: netip.MustParseAddr("10.1.2.4"),
		SrcPort: 40000, DstPort: 443, Protocol: 6, Packets: 3, Bytes: 180, Start: now - 60, End: now, Action: flow.ActionAccept, LogStatus: flow.LogStatusOK}
	deliver := func() error {
		t.Helper()
		if err := st.Reset(); err != nil { // as the spool does before it retries
			t.Fatal(err)
		}
		if err := st.Write([]flow.Record{rec}); err != nil {
			return err
		}
		return st.Advance(now)
	}
	err = deliver()
	var dae *DeliveryAccessError
	if !errors.As(err, &dae) || dae.Message != refused || st.status(id).Message != refused {
		t.Fatalf("delivery with a refused role: %v; status %+v", err, st.status(id))
	}

	// Trusted, but no permission to publish.
	cli.JSON(t, nil, "iam", "update-assume-role-policy", "--role-name", "flowlogs-role", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"vpc-flow-logs.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	err = deliver()
	first := st.status(id)
	if !errors.As(err, &dae) || !errors.Is(err, cloudwatch.ErrAccessDenied) || first.Status != "FAILED" ||
		!strings.HasPrefix(first.Message, "Access error: the delivery role "+role+" may not publish to log group vpc-flow-logs: AccessDeniedException: ") ||
		!strings.Contains(first.Message, "assumed-role/flowlogs-role/flowlog-delivery") || strings.Contains(first.Message, "RequestID") {
		t.Fatalf("delivery by a role without permissions: %v; status %+v", err, first)
	}
	if err := deliver(); err == nil || st.status(id).Message != first.Message {
		t.Errorf("retry: %v; status %q, first %q", err, st.status(id).Message, first.Message)
	}

	// Allowed: the retried record arrives, SUCCESS.
	cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "flowlogs-role", "--policy-name", "publish", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogGroups","logs:DescribeLogStreams"],"Resource":"*"}]}`)
	if err := deliver(); err != nil {
		t.Fatalf("delivery by a role that may publish: %v", err)
	}
	if s := st.status(id); s.Status != "SUCCESS" || s.Records != 1 {
		t.Errorf("status %+v", s)
	}
	var events struct{ Events []struct{ Message string } }
	cli.JSON(t, &events, "logs", "get-log-events", "--log-group-name", "vpc-flow-logs", "--log-stream-name", eni+"-all")
	if len(events.Events) != 1 || !strings.Contains(events.Events[0].Message, " 10.1.2.3 10.1.2.4 40000 443 6 3 180 ") {
		t.Errorf("events: %+v", events)
	}
}
