package controlplane_test

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/api/apitest"
)

// TestDeliveryRoleWalkthrough is issue 10's walkthrough with real
// binaries, the stock AWS CLI and real traffic: the agent follows the
// server with least-privilege keys of its own (agent calls only, no logs
// action), an operator without iam:PassRole cannot create a flow log
// with the role, and the administrator does it all as the issue writes
// it, with the wrong trust principal ec2.amazonaws.com first. The
// cloud-watch-logs flow log is then FAILED with the access error while
// traffic flows and its records wait in the agent's spool, none in the
// log group; once update-assume-role-policy names
// vpc-flow-logs.amazonaws.com it is SUCCESS again by itself, and every
// record reaches the log group once: the events are line for line the
// records of a file flow log of the same VPC with the same format.
func TestDeliveryRoleWalkthrough(t *testing.T) {
	t.Parallel() // own namespaces, servers and directories; mostly waiting
	apitest.RequireCLI(t)
	lab := netlab.New(t)
	bin := buildFlowlog(t)
	began := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }

	nsA, nsB := lab.Netns("a"), lab.Netns("b")
	pA, pB := netip.MustParsePrefix("10.78.0.1/24"), netip.MustParsePrefix("10.78.0.2/24")
	lab.Veth(netlab.End{Netns: nsA, Name: "dra", Addrs: []netip.Prefix{pA}, NoIPv6: true},
		netlab.End{Netns: nsB, Name: "drb", Addrs: []netip.Prefix{pB}, NoIPv6: true})

	dir := t.TempDir()
	server, url, admin := startServer(t, bin, dir)
	step("server up")

	newUser := func(name, policy string) apitest.CLI { return newIAMUser(t, admin, url, name, policy) }
	agentKeys := newUser("agent-1", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["flowlog:Register","flowlog:WatchFlowLogs","flowlog:ReportStatus","flowlog:GetDeliveryCredentials"],"Resource":"*"}]}`)

	secret := writeFile(t, filepath.Join(dir, "agent.secret"), agentKeys.SecretKey+"\n")
	agentCfg := writeFile(t, filepath.Join(dir, "agent.yaml"), fmt.Sprintf(`account-id: "%s"
region: %s
source: afpacket
netns: [%s, %s]
interfaces:
  include: [dr*]
metrics-address: 127.0.0.1:0
spool:
  dir: %s
  retry-max: 2s
server:
  url: %s
  access-key-id: %s
  secret-access-key-file: %s
  status-interval: 2s
  poll-wait: 10s
`, apitest.AccountID, apitest.Region, nsA, nsB, filepath.Join(dir, "spool"), url, agentKeys.AccessKey, secret))
	agent := start(t, "flowlog agent", bin, "agent", "--config", agentCfg)
	metrics := agent.wait(t, 20*time.Second, regexp.MustCompile(`msg="agent started" .*metrics=(127\.0\.0\.1:[0-9]+)`))[1]
	agent.wait(t, 20*time.Second, regexp.MustCompile(`msg=registered .*interfaces=2 `))
	vpc := vpcOf(t, admin, "10.78.0.1")
	step("agent registered with its own least-privilege keys")

	// The walkthrough, with the wrong trust principal.
	publish := writeFile(t, filepath.Join(dir, "publish.json"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogGroups","logs:DescribeLogStreams"],"Resource":"*"}]}`)
	trust := func(service string) string {
		return writeFile(t, filepath.Join(dir, "trust-"+service+".json"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"`+service+`"},"Action":"sts:AssumeRole"}]}`)
	}
	admin.JSON(t, nil, "iam", "create-policy", "--policy-name", "flowlogs-publish", "--policy-document", "file://"+publish)
	admin.JSON(t, nil, "iam", "create-role", "--role-name", "flowlogs-role", "--assume-role-policy-document", "file://"+trust("ec2.amazonaws.com"))
	admin.JSON(t, nil, "iam", "attach-role-policy", "--role-name", "flowlogs-role", "--policy-arn", "arn:aws:iam::"+apitest.AccountID+":policy/flowlogs-publish")
	admin.JSON(t, nil, "logs", "create-log-group", "--log-group-name", "vpc-flow-logs")
	admin.JSON(t, nil, "logs", "put-retention-policy", "--log-group-name", "vpc-flow-logs", "--retention-in-days", "7")
	role := "arn:aws:iam::" + apitest.AccountID + ":role/flowlogs-role"
	step("policy, role (trusting ec2.amazonaws.com), log group")

	const format = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
	create := func(cli apitest.CLI, args ...string) string {
		t.Helper()
		return createFlowLog(t, cli, append([]string{"--resource-type", "VPC", "--resource-ids", vpc, "--traffic-type", "ALL",
			"--log-format", format, "--max-aggregation-interval", "60"}, args...)...)
	}
	cwl := create(admin, "--log-group-name", "vpc-flow-logs", "--deliver-logs-permission-arn", role)
	records := filepath.Join(dir, "records")
	ref := create(admin, "--log-destination-type", "file", "--log-destination", records)
	for _, id := range []string{cwl, ref} {
		agent.wait(t, 10*time.Second, regexp.MustCompile(`msg="flow log added" flow_log=`+id))
	}
	step("flow logs " + cwl + " (cloud-watch-logs, role) and " + ref + " (file, the reference) running")

	// Traffic from now until the flow logs are deleted: a connection a
	// second, each from its own port.
	stopTraffic := make(chan struct{})
	var conns atomic.Int64
	var trafficDone sync.WaitGroup
	trafficDone.Go(func() {
		port := uint16(20000 + rand.IntN(20000))
		dst := netip.AddrPortFrom(pB.Addr(), 8080)
		for i := uint16(0); ; i++ {
			if err := netlab.TCP(nsA, netip.AddrPortFrom(pA.Addr(), port+i), nsB, dst, 1000, 3000, false); err != nil {
				t.Error(err)
				return
			}
			conns.Add(1)
			select {
			case <-stopTraffic:
				return
			case <-time.After(time.Second):
			}
		}
	})
	defer func() {
		select {
		case <-stopTraffic:
		default:
			close(stopTraffic)
		}
		trafficDone.Wait()
	}()

	// Meanwhile (the first window closes at the next minute): an operator
	// who may create flow logs but not pass the role is refused.
	operator := newUser("operator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:CreateFlowLogs","ec2:Describe*"],"Resource":"*"}]}`)
	res := operator.Run(t, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", vpc, "--traffic-type", "REJECT",
		"--log-group-name", "vpc-flow-logs", "--deliver-logs-permission-arn", role)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "(UnauthorizedOperation)") || !strings.Contains(res.Stderr, "iam:PassRole") || !strings.Contains(res.Stderr, role) {
		t.Fatalf("create-flow-logs without iam:PassRole: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	step("operator without iam:PassRole refused: " + strings.TrimSpace(res.Stderr))

	type described struct{ FlowLogId, DeliverLogsStatus, DeliverLogsErrorMessage string }
	describe := func(id string) described {
		t.Helper()
		var out struct{ FlowLogs []described }
		admin.JSON(t, &out, "ec2", "describe-flow-logs", "--flow-log-ids", id)
		if len(out.FlowLogs) != 1 {
			t.Fatalf("describe-flow-logs %s: %+v", id, out)
		}
		return out.FlowLogs[0]
	}
	waitStatus := func(id, status string, within time.Duration) described {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			d := describe(id)
			if d.DeliverLogsStatus == status {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: deliverLogsStatus %s (%q), want %s within %s", id, d.DeliverLogsStatus, d.DeliverLogsErrorMessage, status, within)
			}
			time.Sleep(time.Second)
		}
	}
	d := waitStatus(cwl, "FAILED", 15*time.Second)
	if d.DeliverLogsErrorMessage != "Access error: the role's trust policy does not allow vpc-flow-logs.amazonaws.com to assume it" {
		t.Errorf("deliverLogsErrorMessage %q", d.DeliverLogsErrorMessage)
	}
	step(fmt.Sprintf("describe-flow-logs: %s FAILED %q", cwl, d.DeliverLogsErrorMessage))

	// The first window closes (at the next minute): its records go to
	// the spool and stay there.
	var spooled, backlog float64
	deadline := time.Now().Add(75 * time.Second)
	for spooled == 0 || backlog == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no record waits in the spool: %v records spooled, %v bytes in the spool's backlog", spooled, backlog)
		}
		time.Sleep(time.Second)
		m := scrape(t, metrics)
		spooled, backlog = m[`flowlog_records_total{flow_log_id="`+cwl+`",log_status="OK"}`], m[`flowlog_spool_backlog_bytes{flow_log_id="`+cwl+`"}`]
	}
	time.Sleep(3 * time.Second) // delivery tried (and refused) again meanwhile
	m := scrape(t, metrics)
	spooled, backlog = m[`flowlog_records_total{flow_log_id="`+cwl+`",log_status="OK"}`], m[`flowlog_spool_backlog_bytes{flow_log_id="`+cwl+`"}`]
	if backlog == 0 || m[`flowlog_spool_retries_total{flow_log_id="`+cwl+`"}`] == 0 {
		t.Errorf("after 3 s: %v bytes in the spool's backlog, %v retries", backlog, m[`flowlog_spool_retries_total{flow_log_id="`+cwl+`"}`])
	}
	if d := describe(cwl); d.DeliverLogsStatus != "FAILED" || !strings.HasPrefix(d.DeliverLogsErrorMessage, "Access error: ") {
		t.Errorf("with records in the spool: %+v", d)
	}
	if r := describe(ref); r.DeliverLogsStatus != "SUCCESS" {
		t.Errorf("the file flow log: %+v", r)
	}
	var streams struct{ LogStreams []any }
	admin.JSON(t, &streams, "logs", "describe-log-streams", "--log-group-name", "vpc-flow-logs")
	if len(streams.LogStreams) != 0 {
		t.Fatalf("log streams while the role is refused: %+v", streams)
	}
	step(fmt.Sprintf("still FAILED; records wait in the agent's spool: %v OK records spooled, %v bytes unacknowledged, %v delivery retries, no log stream", spooled, backlog, m[`flowlog_spool_retries_total{flow_log_id="`+cwl+`"}`]))

	// Fix the trust policy: delivery resumes by itself.
	fixed := time.Now()
	admin.JSON(t, nil, "iam", "update-assume-role-policy", "--role-name", "flowlogs-role", "--policy-document", "file://"+trust("vpc-flow-logs.amazonaws.com"))
	waitStatus(cwl, "SUCCESS", 30*time.Second)
	step(fmt.Sprintf("update-assume-role-policy with vpc-flow-logs.amazonaws.com: SUCCESS %s later", time.Since(fixed).Round(100*time.Millisecond)))

	// Stop the traffic, then delete both flow logs, which flushes their
	// open records through the same spools.
	close(stopTraffic)
	trafficDone.Wait()
	admin.JSON(t, nil, "ec2", "delete-flow-logs", "--flow-log-ids", cwl, ref)
	for _, id := range []string{cwl, ref} {
		agent.wait(t, 20*time.Second, regexp.MustCompile(`msg="flow log removed" flow_log=`+id))
	}
	step(fmt.Sprintf("traffic stopped after %d connections; both flow logs deleted and flushed", conns.Load()))

	want := objectLines(t, records)
	var events struct {
		Events []struct{ LogStreamName, Message string }
	}
	admin.JSON(t, &events, "logs", "filter-log-events", "--log-group-name", "vpc-flow-logs")
	var got []string
	for _, e := range events.Events {
		got = append(got, e.Message)
	}
	slices.Sort(want)
	slices.Sort(got)
	ok := 0
	for _, l := range want {
		if strings.Contains(l, " "+pA.Addr().String()+" "+pB.Addr().String()+" ") {
			ok++
		}
	}
	if ok < 2*int(conns.Load()) {
		t.Errorf("the reference has %d records of the test's %d connections, want at least 2 each (one per interface)", ok, conns.Load())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log group vpc-flow-logs has %d events, the file flow log %d records; they differ:\n%s", len(got), len(want), diffLines(want, got))
	}
	step(fmt.Sprintf("the log group has every record of the reference once: %d events (%d of them the test's %d connections from %s), %v spooled while FAILED", len(got), ok, conns.Load(), pA.Addr(), spooled))
	agent.stop(t)
	server.stop(t)
}

// objectLines reads the record lines (header left out) of the text objects under dir.
func objectLines(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log.gz") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(zr)
		for first := true; sc.Scan(); first = false {
			if !first {
				lines = append(lines, sc.Text())
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// diffLines lists the lines only one side has (sorted inputs).
func diffLines(want, got []string) string {
	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i] < got[j]:
			fmt.Fprintf(&b, "- missing %s\n", want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			fmt.Fprintf(&b, "+ extra   %s\n", got[j])
			j++
		default:
			i++
			j++
		}
	}
	return b.String()
}

// scrape reads the agent's /metrics: value by series (name{labels}).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
