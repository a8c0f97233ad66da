package console_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/api/logs"
	"github.com/flowlog/flowlog/internal/console"
	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
)

// After five failed sign-ins from one address, even the right key is
// turned away for the rest of the minute, saying when to come back.
func TestLoginIsThrottledAfterFailures(t *testing.T) {
	e := startEnv(t)
	c := e.client(t)
	for range 5 {
		if res, _ := c.login(apitest.AccessKey, "wrong"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %s", res.Status)
		}
	}
	res, body := c.login(apitest.AccessKey, apitest.SecretKey)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("sixth try: %s Retry-After %q\n%s", res.Status, res.Header.Get("Retry-After"), body)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == "flowlog_session" && ck.Value != "" {
			t.Fatal("a throttled login set a session cookie")
		}
	}
}

func TestLoginRefusesWrongSecret(t *testing.T) {
	e := startEnv(t)
	for _, tc := range []struct{ name, id, secret string }{
		{"wrong secret", apitest.AccessKey, apitest.SecretKey + "x"},
		{"unknown key", "AKIAUNKNOWNKEY000001", apitest.SecretKey},
		{"empty secret", apitest.AccessKey, ""},
	} {
		c := e.client(t)
		res, body := c.login(tc.id, tc.secret)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "The access key ID or the secret access key is not right.") {
			t.Errorf("%s: %s\n%s", tc.name, res.Status, body)
		}
		for _, ck := range res.Cookies() {
			if ck.Name == "flowlog_session" && ck.Value != "" {
				t.Errorf("%s: a session cookie was set", tc.name)
			}
		}
		if res, _ := c.do("GET", "/console/api/flowlogs", nil, nil); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: after a refused login, the flow logs answer %s", tc.name, res.Status)
		}
	}
	// A login post without the form's token (another site's form) is
	// refused before the keys are looked at.
	c := e.client(t)
	form := url.Values{"access_key_id": {apitest.AccessKey}, "secret_access_key": {apitest.SecretKey}}
	res, _ := c.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("login without the form token: %s", res.Status)
	}
}

func TestNoDataWithoutSession(t *testing.T) {
	e := startEnv(t)
	c := e.client(t)
	for _, p := range []string{"/console/api/session", "/console/api/flowlogs", "/console/api/inventory", "/console/api/fields",
		"/console/api/flowlogs/fl-0123456789abcdef0/records", "/console/api/flowlogs/fl-0123456789abcdef0/records.csv", "/console/api/flowlogs/fl-0123456789abcdef0/charts"} {
		res, body := c.do("GET", p, nil, nil)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"NotLoggedIn"`) {
			t.Errorf("GET %s without a session: %s %s", p, res.Status, body)
		}
	}
	// The assets are public, but not listed.
	if res, body := c.do("GET", "/static/js/app.js", nil, nil); res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "javascript") || !strings.Contains(body, "import") {
		t.Errorf("GET /static/js/app.js: %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	if res, _ := c.do("GET", "/static/js/", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /static/js/: %s", res.Status)
	}
	res, _ := c.do("GET", "/", nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Errorf("GET / without a session: %s to %q", res.Status, res.Header.Get("Location"))
	}
	// A forged cookie is no session either.
	res, _ = c.do("GET", "/console/api/flowlogs", nil, map[string]string{"Cookie": "flowlog_session=0123456789abcdef"})
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged session cookie: %s", res.Status)
	}
}

func TestSessionCookie(t *testing.T) {
	e := startEnv(t)
	c := e.client(t)
	res, _ := c.login(apitest.AccessKey, apitest.SecretKey)
	var sess *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "flowlog_session" {
			sess = ck
		}
	}
	if sess == nil || len(sess.Value) < 64 || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure || sess.MaxAge <= 0 {
		t.Fatalf("session cookie over HTTP: %+v", sess)
	}
	// Over TLS the cookie is Secure.
	h, err := console.New(console.Options{Credentials: api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}}, FlowLogs: e.ec2})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://console.test/login", nil))
	tok := between(rec.Body.String(), `name="csrf_token" value="`, `"`)
	req := httptest.NewRequest("POST", "https://console.test/login", strings.NewReader(url.Values{"csrf_token": {tok}, "access_key_id": {apitest.AccessKey}, "secret_access_key": {apitest.SecretKey}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "flowlog_login", Value: tok})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if sc := rec.Header().Values("Set-Cookie"); rec.Code != http.StatusSeeOther || !slices.ContainsFunc(sc, func(s string) bool {
		return strings.HasPrefix(s, "flowlog_session=") && strings.Contains(s, "; Secure") && strings.Contains(s, "HttpOnly") && strings.Contains(s, "SameSite=Strict")
	}) {
		t.Errorf("login over TLS: %d %q", rec.Code, sc)
	}
}

// TestIAMDecides signs in as an IAM user whose policy allows reading
// but not creating: the console refuses the create as the API does.
func TestIAMDecides(t *testing.T) {
	apitest.RequireCLI(t)
	e := startEnv(t)
	cli := e.srv.NewCLI()
	cli.JSON(t, nil, "iam", "create-user", "--user-name", "reader")
	cli.JSON(t, nil, "iam", "put-user-policy", "--user-name", "reader", "--policy-name", "read", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*"],"Resource":"*"}]}`)
	var key struct {
		AccessKey struct{ AccessKeyID, SecretAccessKey string }
	}
	cli.JSON(t, &key, "iam", "create-access-key", "--user-name", "reader")
	c := e.client(t)
	if res, body := c.login(key.AccessKey.AccessKeyID, key.AccessKey.SecretAccessKey); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("IAM user login: %s %s", res.Status, body)
	}
	var s struct{ Principal, CSRFToken string }
	c.getJSON("/console/api/session", &s)
	c.csrf = s.CSRFToken
	if s.Principal != "arn:aws:iam::"+apitest.AccountID+":user/reader" {
		t.Errorf("principal %q", s.Principal)
	}
	var fls struct{ FlowLogs []any }
	c.getJSON("/console/api/flowlogs", &fls)
	var inv struct{ Inventory struct{ Interfaces []any } }
	c.getJSON("/console/api/inventory", &inv)
	res, body := c.do("POST", "/console/api/flowlogs", strings.NewReader(`{"resourceType":"VPC","resourceIds":["`+testVPC+`"],"trafficType":"ALL","destinationType":"file","destination":"/var/log/fl"}`),
		map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "UnauthorizedOperation") || !strings.Contains(body, "user/reader is not authorized to perform: ec2:CreateFlowLogs") {
		t.Errorf("create as a reader: %s %s", res.Status, body)
	}
	// Once the key is deactivated, the session ends.
	cli.JSON(t, nil, "iam", "update-access-key", "--user-name", "reader", "--access-key-id", key.AccessKey.AccessKeyID, "--status", "Inactive")
	if res, _ := c.do("GET", "/console/api/flowlogs", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the key was deactivated: %s", res.Status)
	}
}

func TestSessionExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := startEnvWith(t, func(o *console.Options) { o.Now = clock; o.SessionTTL = time.Hour })
	c := e.client(t)
	c.mustLogin()
	var fls struct{ FlowLogs []any }
	c.getJSON("/console/api/flowlogs", &fls)
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if res, _ := c.do("GET", "/console/api/flowlogs", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the session's lifetime: %s", res.Status)
	}
}

func TestMutationsNeedCSRFToken(t *testing.T) {
	e := startEnv(t)
	c := e.client(t)
	c.mustLogin()
	form := `{"resourceType":"VPC","resourceIds":["` + testVPC + `"],"trafficType":"ALL","destinationType":"file","destination":"/var/log/flowlog"}`
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	// A token one character off the real one (whatever its last character).
	last := "0"
	if strings.HasSuffix(c.csrf, last) {
		last = "1"
	}
	for _, tok := range []string{"", "0000", c.csrf[:len(c.csrf)-1] + last} {
		hdr := map[string]string{"Content-Type": "application/json"}
		if tok != "" {
			hdr["X-CSRF-Token"] = tok
		}
		res, body := c.do("POST", "/console/api/flowlogs", strings.NewReader(form), hdr)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "InvalidCSRFToken") {
			t.Errorf("create with token %q: %s %s", tok, res.Status, body)
		}
	}
	out, err := e.ec2.DescribeFlowLogs(context.Background(), ec2.DescribeFlowLogsInput{})
	if err != nil || len(out.FlowLogs) != 0 {
		t.Fatalf("refused creates created %d flow logs (%v)", len(out.FlowLogs), err)
	}
	// With the token it works.
	res, body := c.do("POST", "/console/api/flowlogs", strings.NewReader(form), map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf})
	var created ec2.CreateFlowLogsOutput
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &created) != nil || len(created.FlowLogIDs) != 1 {
		t.Fatalf("create with the token: %s %s", res.Status, body)
	}
	id := created.FlowLogIDs[0]
	// Deleting and logging out need it too.
	if res, _ := c.do("DELETE", "/console/api/flowlogs/"+id, nil, jsonHdr); res.StatusCode != http.StatusForbidden {
		t.Errorf("delete without the token: %s", res.Status)
	}
	if res, _ := c.do("POST", "/logout", strings.NewReader(""), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); res.StatusCode != http.StatusForbidden {
		t.Errorf("logout without the token: %s", res.Status)
	}
	if res, body := c.do("DELETE", "/console/api/flowlogs/"+id, nil, map[string]string{"X-CSRF-Token": c.csrf}); res.StatusCode != http.StatusOK {
		t.Errorf("delete with the token: %s %s", res.Status, body)
	}
	// The form field works for plain form posts (the sign-out button).
	res, _ = c.do("POST", "/logout", strings.NewReader(url.Values{"csrf_token": {c.csrf}}.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("logout with the token: %s", res.Status)
	}
	if res, _ := c.do("GET", "/console/api/flowlogs", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %s", res.Status)
	}
}

// TestCreateErrorsAreTheAPIs checks that the console refuses what the EC2
// API refuses, with the same code and message the AWS CLI shows.
func TestCreateErrorsAreTheAPIs(t *testing.T) {
	apitest.RequireCLI(t)
	e := startEnv(t)
	c := e.client(t)
	c.mustLogin()
	cases := []struct {
		form string
		cli  []string
	}{
		{`{"resourceType":"VPC","resourceIds":["` + testVPC + `"],"trafficType":"ALL","destinationType":"file","destination":"/var/log/fl","logFormat":"${version} ${srcaddr} ${bogus-field}"}`,
			[]string{"--log-format", "${version} ${srcaddr} ${bogus-field}", "--log-destination-type", "file", "--log-destination", "/var/log/fl", "--traffic-type", "ALL"}},
		{`{"resourceType":"VPC","resourceIds":["` + testVPC + `"],"trafficType":"SOME","destinationType":"file","destination":"/var/log/fl"}`,
			[]string{"--log-destination-type", "file", "--log-destination", "/var/log/fl", "--traffic-type", "SOME"}},
		{`{"resourceType":"VPC","resourceIds":["` + testVPC + `"],"trafficType":"ALL","destinationType":"file","destination":"/var/log/fl","maxAggregationInterval":120}`,
			[]string{"--log-destination-type", "file", "--log-destination", "/var/log/fl", "--traffic-type", "ALL", "--max-aggregation-interval", "120"}},
	}
	for _, tc := range cases {
		res, body := c.do("POST", "/console/api/flowlogs", strings.NewReader(tc.form), map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf})
		var got struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || res.StatusCode != http.StatusBadRequest || got.Error.Code == "" {
			t.Errorf("console %s: %s %s", tc.form, res.Status, body)
			continue
		}
		r := e.srv.NewCLI().Run(t, append([]string{"ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", testVPC}, tc.cli...)...)
		if r.ExitCode == 0 || !cliSaid(r.Stderr, got.Error.Code, got.Error.Message) {
			t.Errorf("console said %s: %s\nthe CLI said: %s", got.Error.Code, got.Error.Message, r.Stderr)
		}
	}
	// An unknown resource is reported per resource, as the API does.
	res, body := c.do("POST", "/console/api/flowlogs", strings.NewReader(`{"resourceType":"VPC","resourceIds":["vpc-0000000000000dead"],"trafficType":"ALL","destinationType":"file","destination":"/var/log/fl"}`),
		map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf})
	var out ec2.CreateFlowLogsOutput
	if json.Unmarshal([]byte(body), &out) != nil || res.StatusCode != http.StatusOK || len(out.Unsuccessful) != 1 || out.Unsuccessful[0].Code != "InvalidVpcID.NotFound" {
		t.Errorf("unknown VPC: %s %s", res.Status, body)
	}
	// The format preview words a bad format as CreateFlowLogs does.
	var p struct {
		OK            bool
		Code, Message string
	}
	c.getJSON("/console/api/format?format="+url.QueryEscape("${version} ${srcaddr} ${bogus-field}"), &p)
	r := e.srv.NewCLI().Run(t, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", testVPC, "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", "/var/log/fl", "--log-format", "${version} ${srcaddr} ${bogus-field}")
	if p.OK || !cliSaid(r.Stderr, p.Code, p.Message) {
		t.Errorf("preview said %s: %s\nthe CLI said: %s", p.Code, p.Message, r.Stderr)
	}
}

// TestRecordsOfAWSExamples reads the AWS documentation's example records
// from a file destination: paging, the analyze filter language, CSV,
// charts (rejected ports, NODATA and SKIPDATA windows) and conversations.
func TestRecordsOfAWSExamples(t *testing.T) {
	e := startEnv(t)
	root := filepath.Join(e.dir, "flowlogs")
	id := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "VPC", ResourceIDs: []string{testVPC}, TrafficType: "ALL", LogDestinationType: "file", LogDestination: root})
	other := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "Subnet", ResourceIDs: []string{testSubnet}, TrafficType: "ALL", LogDestinationType: "file", LogDestination: root})
	var all []flow.Record
	var format *flow.Format
	for _, name := range []string{"default-accepted-ssh.log", "default-rejected-rdp.log", "default-nodata.log", "default-skipdata.log", "default-sg-nacl-ping.log", "default-ipv6-ssh.log"} {
		f, recs := awsExample(t, name)
		format = f
		all = append(all, recs...)
	}
	writeObjects(t, root, id, format, all)
	// Another flow log's objects in the same directory are not this one's.
	writeObjects(t, root, other, format, all[:1])

	c := e.client(t)
	c.mustLogin()
	base := "/console/api/flowlogs/" + id
	var page struct {
		Columns []string
		Rows    [][]any
		More    bool
		Total   int
	}
	c.getJSON(base+"/records?limit=3", &page)
	if len(page.Rows) != 3 || !page.More || strings.Join(page.Columns, " ") != flow.DefaultFormat().Header() {
		t.Fatalf("first page: %+v", page)
	}
	c.getJSON(base+"/records?limit=10&offset=3", &page)
	if len(page.Rows) != len(all)-3 || page.More || page.Total != len(all) {
		t.Fatalf("second page: %d rows, more %v, total %d; want %d rows of %d", len(page.Rows), page.More, page.Total, len(all)-3, len(all))
	}
	c.getJSON(base+"/records?where="+url.QueryEscape("action = REJECT and dstport in (22, 3389)"), &page)
	if len(page.Rows) != 1 || page.Rows[0][slices.Index(page.Columns, "dstport")] != float64(3389) {
		t.Fatalf("where action = REJECT and dstport in (22, 3389): %+v", page)
	}
	res, body := c.do("GET", base+"/records?where="+url.QueryEscape("dstport = = 3"), nil, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "InvalidFilter") || !strings.Contains(body, "column") {
		t.Errorf("bad filter: %s %s", res.Status, body)
	}
	c.getJSON(base+"/records?since=2015-05-01&until=2015-05-31", &page)
	if page.Total != 4 { // the NODATA and SKIPDATA examples (2015-05-10), the ping exchange (2015-05-29)
		t.Errorf("records in May 2015: %d, want 4", page.Total)
	}
	res, body = c.do("GET", base+"/records.csv", nil, nil)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if res.StatusCode != http.StatusOK || err != nil || len(rows) != len(all)+1 || rows[0][0] != "version" || res.Header.Get("Content-Disposition") != `attachment; filename="`+id+`.csv"` {
		t.Fatalf("csv: %s %v: %d rows\n%s", res.Status, err, len(rows), body)
	}

	var charts struct {
		Summary struct {
			Records         int
			NoDataWindows   []map[string]any `json:"nodata_windows"`
			SkipDataWindows []map[string]any `json:"skipdata_windows"`
		}
		Series        []map[string]any
		RejectedPorts []map[string]any
		TopTalkers    []map[string]any
		BucketSeconds int64
	}
	c.getJSON(base+"/charts", &charts)
	if charts.Summary.Records != len(all) || len(charts.Summary.NoDataWindows) != 1 || len(charts.Summary.SkipDataWindows) != 1 {
		t.Errorf("summary: %+v", charts.Summary)
	}
	if len(charts.RejectedPorts) != 2 || charts.RejectedPorts[0]["dstport"] != float64(3389) {
		t.Errorf("rejected ports: %+v", charts.RejectedPorts)
	}
	var accepted, rejected float64
	for _, p := range charts.Series {
		accepted += p["acceptBytes"].(float64)
		rejected += p["rejectBytes"].(float64)
	}
	if rejected != 4249+336 || accepted == 0 || len(charts.TopTalkers) == 0 || charts.BucketSeconds == 0 {
		t.Errorf("series: accepted %v rejected %v bytes, %d talkers, bucket %d s", accepted, rejected, len(charts.TopTalkers), charts.BucketSeconds)
	}

	checkConversations(t, c, base)
}

// TestRecordsOfCloudWatchLogs reads a flow log's records from the logs
// service it delivers to.
func TestRecordsOfCloudWatchLogs(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	group := "flow-logs-console-test"
	id := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "VPC", ResourceIDs: []string{testVPC}, TrafficType: "ALL", LogDestinationType: "cloud-watch-logs",
		LogGroupName: group, DeliverLogsPermissionArn: "arn:aws:iam::" + apitest.AccountID + ":role/flow-logs",
		LogFormat: "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${tcp-flags}"})
	if err := e.logs.CreateGroup(ctx, group, "", nil); err != nil {
		t.Fatal(err)
	}
	stream := testENI + "-all"
	if err := e.logs.CreateStream(ctx, group, stream); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix() - 300
	var lines []string
	for i := range 5 {
		s := now + int64(i)*10
		action := "ACCEPT"
		if i == 4 {
			action = "REJECT"
		}
		lines = append(lines, strings.Join([]string{"3", testENI, "10.200.1.18", "10.200.1.99", "40000", "443", "6", "3", "180",
			itoa(s), itoa(s + 5), action, "OK", "2"}, " "))
	}
	var events []logs.InputEvent
	for i := range lines {
		ts, msg := (now+int64(i)*10)*1000, lines[i]
		events = append(events, logs.InputEvent{Timestamp: &ts, Message: &msg})
	}
	if _, err := e.logs.PutEvents(ctx, group, stream, events); err != nil {
		t.Fatal(err)
	}
	c := e.client(t)
	c.mustLogin()
	var page struct {
		Columns []string
		Rows    [][]any
		Total   int
	}
	c.getJSON("/console/api/flowlogs/"+id+"/records?where="+url.QueryEscape("action = REJECT"), &page)
	if page.Total != 1 || page.Columns[len(page.Columns)-1] != "tcp-flags" {
		t.Fatalf("records of log group %s: %+v", group, page)
	}
	c.getJSON("/console/api/flowlogs/"+id+"/records?since=1h", &page)
	if page.Total != 5 {
		t.Fatalf("records of the last hour: %+v", page)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// cliSaid reports whether the AWS CLI printed the error code and message
// ("An error occurred (CODE) when calling the … operation…: MESSAGE").
func cliSaid(stderr, code, msg string) bool {
	return strings.Contains(stderr, "An error occurred ("+code+") when calling the CreateFlowLogs operation") &&
		strings.HasSuffix(strings.TrimSpace(stderr), ": "+msg)
}

// TestRecordsOfS3 reads a flow log's objects from an S3 bucket (a real
// S3 server: versitygw).
func TestRecordsOfS3(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey) // also isolates the AWS environment
	s3test.CreateBucket(t, client, "flow-bucket")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	e := startEnvWith(t, func(o *console.Options) { o.S3 = &analyze.S3Config{EndpointURL: srv.URL, Region: apitest.Region} })
	id := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "VPC", ResourceIDs: []string{testVPC}, TrafficType: "ALL", LogDestinationType: "s3",
		LogDestination: "arn:aws:s3:::flow-bucket/vpc-logs"})
	f, recs := awsExample(t, "default-rejected-rdp.log")
	_, more := awsExample(t, "default-accepted-ssh.log")
	staging := t.TempDir()
	writeObjects(t, staging, id, f, append(recs, more...))
	err := filepath.WalkDir(staging, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(staging, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = client.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String("flow-bucket"), Key: aws.String("vpc-logs/" + filepath.ToSlash(rel)), Body: bytes.NewReader(data)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(t)
	c.mustLogin()
	var page struct {
		Columns []string
		Rows    [][]any
		Total   int
	}
	c.getJSON("/console/api/flowlogs/"+id+"/records", &page)
	if page.Total != 2 {
		t.Fatalf("records in s3://flow-bucket/vpc-logs: %+v", page)
	}
	c.getJSON("/console/api/flowlogs/"+id+"/records?where="+url.QueryEscape("action = REJECT"), &page)
	if page.Total != 1 || page.Rows[0][slices.Index(page.Columns, "dstport")] != float64(3389) {
		t.Fatalf("rejected records in s3: %+v", page)
	}
}
