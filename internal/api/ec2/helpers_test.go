package ec2_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// env is a running server with the EC2 and agent services.
type env struct {
	svc *ec2.Service
	srv *apitest.Server
	cli apitest.CLI
	dir string
}

func start(t testing.TB, opts ec2.Options) *env {
	t.Helper()
	return startAuthz(t, opts, nil)
}

// startAuthz serves with authz deciding every call (nil: root only).
func startAuthz(t testing.TB, opts ec2.Options, authz api.Authorizer) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	opts.AccountID, opts.Region = apitest.AccountID, apitest.Region
	svc, err := ec2.New(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.Start(t, api.Options{Authorizer: authz, Services: []api.Service{svc, control.NewService(svc, control.ServiceOptions{PollWait: 5 * time.Second})}})
	return &env{svc: svc, srv: srv, cli: srv.NewCLI(), dir: dir}
}

// registration is one agent's inventory: a VPC, two subnets, and n
// interfaces spread over them.
func registration(agent, vpc string, n int) control.Registration {
	r := control.Registration{AgentID: agent, Hostname: "host-" + agent, InstanceID: "i-" + agent, AccountID: apitest.AccountID, Region: apitest.Region,
		VPCs: []control.VPC{{VPCID: vpc, CIDRBlocks: []string{"10.0.0.0/16", "fd00:1::/56"}}},
		Subnets: []control.Subnet{
			{SubnetID: "subnet-" + agent + "a", VPCID: vpc, CIDRBlocks: []string{"10.0.1.0/24"}, AZID: "use1-az1"},
			{SubnetID: "subnet-" + agent + "b", VPCID: vpc, CIDRBlocks: []string{"10.0.2.0/24", "fd00:1:0:2::/64"}, AZID: "use1-az2"},
		}}
	for i := range n {
		sn := r.Subnets[i%2]
		r.Interfaces = append(r.Interfaces, control.Interface{
			InterfaceID: fmt.Sprintf("eni-%s%04d", agent, i), SubnetID: sn.SubnetID, VPCID: vpc, InstanceID: r.InstanceID,
			MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256), Addresses: []string{fmt.Sprintf("10.0.%d.%d", 1+i%2, 10+i%200), "fd00:1::" + fmt.Sprint(i+1)},
			Name: fmt.Sprintf("veth%d", i), Netns: "ns-" + agent,
		})
	}
	return r
}

func (e *env) register(t testing.TB, r control.Registration) {
	t.Helper()
	if err := e.svc.Register(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// cliFail runs the CLI, requires it to fail, and returns stderr.
func (e *env) cliFail(t testing.TB, args ...string) string {
	t.Helper()
	r := e.cli.Run(t, args...)
	if r.ExitCode == 0 {
		t.Fatalf("aws %s: succeeded, want an error; stdout %s", strings.Join(args, " "), r.Stdout)
	}
	return r.Stderr
}

// The CLI's JSON shapes.
type cliUnsuccessful struct {
	Error      struct{ Code, Message string }
	ResourceId string
}

type cliCreate struct {
	ClientToken  string
	FlowLogIds   []string
	Unsuccessful []cliUnsuccessful
}

type cliFlowLog struct {
	CreationTime             string
	DeliverLogsErrorMessage  string
	DeliverLogsPermissionArn string
	DeliverLogsStatus        string
	FlowLogId                string
	FlowLogStatus            string
	LogGroupName             string
	ResourceId               string
	TrafficType              string
	LogDestinationType       string
	LogDestination           string
	LogFormat                string
	Tags                     []struct{ Key, Value string }
	MaxAggregationInterval   int
	DestinationOptions       *struct {
		FileFormat               string
		HiveCompatiblePartitions bool
		PerHourPartition         bool
	}
}

type cliDescribe struct {
	FlowLogs  []cliFlowLog
	NextToken string
}

// signer sends signed requests as the test administrator, as an SDK
// would: the EC2 Query protocol (form posts) and the agent protocol.
type signer struct {
	url    string
	client *http.Client
	s      *v4.Signer
}

func newSigner(u string) *signer {
	return &signer{url: u, client: &http.Client{Timeout: 60 * time.Second}, s: v4.NewSigner()}
}

func (sg *signer) do(ctx context.Context, service, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sg.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}
	if err := sg.s.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, apitest.Region, time.Now()); err != nil {
		return 0, nil, err
	}
	resp, err := sg.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// query calls an EC2 action and decodes the XML answer into out; an EC2
// error comes back as an error naming its code.
func (sg *signer) query(ctx context.Context, action string, params url.Values, out any) error {
	params.Set("Action", action)
	params.Set("Version", ec2.Version)
	status, body, err := sg.do(ctx, "ec2", "/", "application/x-www-form-urlencoded; charset=utf-8", []byte(params.Encode()))
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		var e struct {
			Errors []struct{ Code, Message string } `xml:"Errors>Error"`
		}
		_ = xml.Unmarshal(body, &e)
		if len(e.Errors) == 1 {
			return fmt.Errorf("%s %d %s: %s", action, status, e.Errors[0].Code, e.Errors[0].Message)
		}
		return fmt.Errorf("%s: HTTP %d: %s", action, status, body)
	}
	return xml.Unmarshal(body, out)
}

// agent calls an agent protocol operation.
func (sg *signer) agent(ctx context.Context, op string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	status, body, err := sg.do(ctx, control.SigningName, control.PathPrefix+op, "application/json", b)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", op, status, body)
	}
	return json.Unmarshal(body, out)
}

// xmlCreate / xmlDescribe are the answers as an SDK parses them.
type xmlCreate struct {
	ClientToken  string   `xml:"clientToken"`
	FlowLogIDs   []string `xml:"flowLogIdSet>item"`
	Unsuccessful []struct {
		ResourceID string `xml:"resourceId"`
		Code       string `xml:"error>code"`
	} `xml:"unsuccessful>item"`
}

type xmlDescribe struct {
	FlowLogs []struct {
		ID         string `xml:"flowLogId"`
		ResourceID string `xml:"resourceId"`
		Tags       []struct {
			Key   string `xml:"key"`
			Value string `xml:"value"`
		} `xml:"tagSet>item"`
	} `xml:"flowLogSet>item"`
	NextToken string `xml:"nextToken"`
}

func dbPath(dir string) string { return filepath.Join(dir, api.DBFile) }

// openRO opens the store read-only beside the server, for checks.
func openRO(t testing.TB, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath(dir)+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
