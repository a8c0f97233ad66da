package console_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/api/firehose"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/api/logs"
	"github.com/flowlog/flowlog/internal/console"
	"github.com/flowlog/flowlog/internal/sink"
)

var netipLoopback = netip.MustParseAddr("127.0.0.1")

// env is a real API server (EC2 and CloudWatch Logs services over a
// SQLite store) serving the console, with one agent's inventory
// registered.
type env struct {
	srv  *apitest.Server
	ec2  *ec2.Service
	logs *logs.Service
	// fh is the Firehose API, delivering under buckets.
	fh      *firehose.Service
	buckets string
	dir     string
}

// Inventory the test agent registers.
const (
	testVPC    = "vpc-0c0501e0a1b2c3d4e"
	testSubnet = "subnet-0c0501e0a1b2c3d4e"
	testENI    = "eni-0c0501e0a1b2c3d4e"
)

func startEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWith(t, nil)
}

// startEnvWith is startEnv with console options changed by opt.
func startEnvWith(t *testing.T, opt func(*console.Options)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := api.OpenDB(ctx, filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	flowLogs, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := logs.New(ctx, db, logs.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	buckets := filepath.Join(dir, "firehose-buckets")
	fh, err := firehose.New(ctx, db, firehose.Options{AccountID: apitest.AccountID, Region: apitest.Region, BucketsDir: buckets, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fh.Start(ctx)
	t.Cleanup(func() { fh.Stop() })
	// IAM as flowlog serve builds it: the configuration's root key first,
	// then IAM's keys; IAM's policies decide every call.
	idm, err := iam.New(ctx, db, iam.Config{AccountID: apitest.AccountID, DataDir: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	creds := api.CredentialChain{api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}}, idm}
	opts := console.Options{Credentials: creds, Authorizer: idm, FlowLogs: flowLogs, Logs: lg, Firehose: fh, AccountID: apitest.AccountID, Region: apitest.Region}
	if opt != nil {
		opt(&opts)
	}
	h, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.Start(t, api.Options{Credentials: creds, Authorizer: idm, Services: []api.Service{flowLogs, lg, fh, idm}, Console: h})
	reg := control.Registration{AgentID: "agent-1", Hostname: "host-1", InstanceID: "i-0c0501e0a1b2c3d4e", AccountID: apitest.AccountID, Region: apitest.Region,
		VPCs:    []control.VPC{{VPCID: testVPC, CIDRBlocks: []string{"10.200.0.0/16"}}},
		Subnets: []control.Subnet{{SubnetID: testSubnet, VPCID: testVPC, CIDRBlocks: []string{"10.200.1.0/24"}, AZID: "use1-az1"}},
		Interfaces: []control.Interface{{InterfaceID: testENI, SubnetID: testSubnet, VPCID: testVPC, InstanceID: "i-0c0501e0a1b2c3d4e",
			MAC: "02:00:00:00:00:01", Addresses: []string{"10.200.1.18"}, Name: "eth0"}},
	}
	if err := flowLogs.Register(ctx, reg); err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, ec2: flowLogs, logs: lg, fh: fh, buckets: buckets, dir: dir}
}

// client is a plain HTTP client of the console with its own cookies.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func (e *env) client(t *testing.T) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: e.srv.URL, http: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, body io.Reader, header map[string]string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return res, string(data)
}

// login posts the login form (after fetching it for its token) and
// returns the answer.
func (c *client) login(keyID, secret string) (*http.Response, string) {
	c.t.Helper()
	_, page := c.do("GET", "/login", nil, nil)
	tok := between(page, `name="csrf_token" value="`, `"`)
	form := url.Values{"csrf_token": {tok}, "access_key_id": {keyID}, "secret_access_key": {secret}}
	return c.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// mustLogin logs in as the test administrator and keeps the session's
// CSRF token.
func (c *client) mustLogin() {
	c.t.Helper()
	res, body := c.login(apitest.AccessKey, apitest.SecretKey)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		c.t.Fatalf("login: %s: %s", res.Status, body)
	}
	var s struct{ CSRFToken string }
	c.getJSON("/console/api/session", &s)
	c.csrf = s.CSRFToken
}

func (c *client) getJSON(path string, v any) {
	c.t.Helper()
	res, body := c.do("GET", path, nil, nil)
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %s: %s", path, res.Status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		c.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

// createFlowLog creates a flow log through the Go API, as the test
// administrator.
func (e *env) createFlowLog(t *testing.T, in ec2.CreateFlowLogsInput) string {
	t.Helper()
	p := api.Principal{AccountID: apitest.AccountID, ARN: "arn:aws:iam::" + apitest.AccountID + ":root", AccessKeyID: apitest.AccessKey, Root: true}
	call := api.NewCall(api.AllowRoot{}, p, "ec2", "CreateFlowLogs", "test", netipLoopback, false, time.Now())
	out, err := e.ec2.CreateFlowLogs(context.Background(), call, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Unsuccessful) > 0 || len(out.FlowLogIDs) != 1 {
		t.Fatalf("create flow log: %+v", out)
	}
	return out.FlowLogIDs[0]
}

// writeObjects delivers records to a file destination as an agent does:
// through sink.Dir, in the S3 layout, named for the flow log.
func writeObjects(t *testing.T, root, flowLogID string, format *flow.Format, recs []flow.Record) {
	t.Helper()
	d, err := sink.NewDir(sink.DirConfig{Root: root, Format: format,
		Layout: sink.Layout{AccountID: apitest.AccountID, Region: apitest.Region, FlowLogID: flowLogID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// awsExample reads records of an example of the AWS documentation
// (corpus aws-samples next to the module: the format on line 1).
func awsExample(t *testing.T, name string) (*flow.Format, []flow.Record) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "corpora", "aws-samples", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f, err := flow.ParseFormat(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	var recs []flow.Record
	for _, l := range lines[1:] {
		var r flow.Record
		if err := f.ParseRecord([]byte(l), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recs = append(recs, r)
	}
	return f, recs
}

// recordsPage is a page of a flow log's records as the records API
// answers it.
type recordsPage struct {
	Columns []string
	Rows    [][]any
	Offset  int
	More    bool
	Next    string
	Total   int
	Stats   struct {
		Records, Matched, SkippedLines int
		Notes                          []string
	}
}

func hasNote(notes []string, part string) bool {
	return slices.ContainsFunc(notes, func(s string) bool { return strings.Contains(s, part) })
}

// checkUDP53 reads the records of the flow log at base (its API path)
// with "protocol = udp and dstport = 53", checks that every row matches
// and that the CSV download has those rows under the same columns, and
// returns how many there are.
func checkUDP53(t *testing.T, c *client, base string) int {
	t.Helper()
	where := url.QueryEscape("protocol = udp and dstport = 53")
	var page recordsPage
	c.getJSON(base+"/records?limit=1000&where="+where, &page)
	p, d := slices.Index(page.Columns, "protocol"), slices.Index(page.Columns, "dstport")
	for _, r := range page.Rows {
		if r[p] != float64(17) || r[d] != float64(53) {
			t.Fatalf("row %v does not match protocol = udp and dstport = 53", r)
		}
	}
	res, body := c.do("GET", base+"/records.csv?where="+where, nil, nil)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if res.StatusCode != http.StatusOK || err != nil || len(rows) != page.Total+1 || strings.Join(rows[0], " ") != strings.Join(page.Columns, " ") {
		t.Fatalf("csv: %s %v: %d rows, want %d", res.Status, err, len(rows), page.Total+1)
	}
	return page.Total
}

// checkSince2015 checks that the flow log at base, whose records are of
// the bundled 2015 capture, has records since 2015-01-13: a first row,
// and more.
func checkSince2015(t *testing.T, c *client, base string) {
	t.Helper()
	var page recordsPage
	c.getJSON(base+"/records?limit=1&since=2015-01-13", &page)
	if len(page.Rows) != 1 || !page.More {
		t.Errorf("since 2015-01-13: %d rows, more %v", len(page.Rows), page.More)
	}
}

// checkConversations checks that the flow log at base has conversations
// and that the first one, opened, has the verdict of the list and its
// records.
func checkConversations(t *testing.T, c *client, base string) {
	t.Helper()
	var conns struct{ Connections []map[string]any }
	c.getJSON(base+"/connections", &conns)
	if len(conns.Connections) == 0 {
		t.Fatal("no conversations")
	}
	var conv struct {
		Conversation map[string]any
		Records      []map[string]any
	}
	first := conns.Connections[0]
	c.getJSON(base+"/conversation?"+url.Values{"client": {first["client"].(string)}, "server": {first["server"].(string)}, "interface": {first["interface"].(string)}}.Encode(), &conv)
	if conv.Conversation["verdict"] != first["verdict"] || len(conv.Records) == 0 {
		t.Errorf("conversation %v: %+v", first, conv)
	}
}
