// Package controlplane_test is the end-to-end test of the control plane
// (issue 6): the flowlog binary serves the EC2 and CloudWatch Logs APIs,
// an agent follows it in real network namespaces with real traffic, and
// the stock AWS CLI creates, describes and deletes flow logs and reads
// the records back.
package controlplane_test

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/api/apitest"
)

// process is a running flowlog command whose standard error is kept in
// lines (and shown in the test log).
type process struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []string
	more chan struct{} // poked at each new line
	done chan error
}

func start(t *testing.T, name string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), more: make(chan struct{}, 1), done: make(chan error, 1)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, strings.Join(p.logs, "\n"))
		}
	})
	return p
}

// wait waits for a log line matching re and returns its submatches.
func (p *process) wait(t *testing.T, within time.Duration, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(within)
	seen := 0
	for {
		p.mu.Lock()
		lines := p.logs[seen:]
		seen = len(p.logs)
		p.mu.Unlock()
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		}
		select {
		case <-p.more:
		case err := <-p.done:
			t.Fatalf("%s exited (%v) before logging %s", p.name, err, re)
		case <-deadline:
			t.Fatalf("%s did not log %s within %s", p.name, re, within)
		}
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
	}
}

// startServer runs `flowlog serve` on a free loopback port with its store
// under dir and the test administrator's key, and returns it, its URL and
// the AWS CLI as that administrator.
func startServer(t *testing.T, bin, dir string) (*process, string, apitest.CLI) {
	t.Helper()
	serverCfg := writeFile(t, filepath.Join(dir, "server.yaml"), fmt.Sprintf(`data-dir: %s
account-id: "%s"
region: %s
access-keys:
  - access-key-id: %s
    secret-access-key: %s
`, filepath.Join(dir, "server"), apitest.AccountID, apitest.Region, apitest.AccessKey, apitest.SecretKey))
	server := start(t, "flowlog serve", bin, "serve", "--config", serverCfg, "--listen", "127.0.0.1:0")
	url := server.wait(t, 20*time.Second, servingRE)[1]
	return server, url, apitest.CLI{URL: url, AccessKey: apitest.AccessKey, SecretKey: apitest.SecretKey, Region: apitest.Region}
}

// createFlowLog runs `aws ec2 create-flow-logs ARGS` as cli and returns
// the id of the one flow log it must have created.
func createFlowLog(t *testing.T, cli apitest.CLI, args ...string) string {
	t.Helper()
	var out struct {
		FlowLogIds   []string
		Unsuccessful []any
	}
	cli.JSON(t, &out, append([]string{"ec2", "create-flow-logs"}, args...)...)
	if len(out.FlowLogIds) != 1 || len(out.Unsuccessful) != 0 {
		t.Fatalf("create-flow-logs %v: %+v", args, out)
	}
	return out.FlowLogIds[0]
}

// newIAMUser makes an IAM user with one inline policy (named as the
// user) as admin and returns the CLI signing with the user's new key.
func newIAMUser(t *testing.T, admin apitest.CLI, url, name, policy string) apitest.CLI {
	t.Helper()
	admin.JSON(t, nil, "iam", "create-user", "--user-name", name)
	admin.JSON(t, nil, "iam", "put-user-policy", "--user-name", name, "--policy-name", name, "--policy-document", policy)
	var key struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	admin.JSON(t, &key, "iam", "create-access-key", "--user-name", name)
	return apitest.CLI{URL: url, AccessKey: key.AccessKey.AccessKeyId, SecretKey: key.AccessKey.SecretAccessKey, Region: apitest.Region}
}

// vpcOf is the VPC of the network interface with address ip, which the
// agent registered.
func vpcOf(t *testing.T, cli apitest.CLI, ip string) string {
	t.Helper()
	var enis struct{ NetworkInterfaces []struct{ VpcId string } }
	cli.JSON(t, &enis, "ec2", "describe-network-interfaces", "--filters", "Name=addresses.private-ip-address,Values="+ip)
	if len(enis.NetworkInterfaces) != 1 {
		t.Fatalf("describe-network-interfaces: %+v", enis)
	}
	return enis.NetworkInterfaces[0].VpcId
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildFlowlog builds the binary under test.
func buildFlowlog(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowlog")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/flowlog/flowlog/cmd/flowlog").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// readDir reads every record of the text objects under dir.
func readDir(t *testing.T, dir string) []flow.Record {
	t.Helper()
	var recs []flow.Record
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
		rd := flow.NewReader(zr, flow.ReaderOptions{})
		for {
			var r flow.Record
			if err := rd.Next(&r); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			recs = append(recs, r)
		}
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return recs
}

// waitObjects waits until dir holds an object.
func waitObjects(t *testing.T, dir string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for countObjects(dir) == 0 {
		if time.Since(start) > within {
			t.Fatalf("no object in %s within %s", dir, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

func countObjects(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

var servingRE = regexp.MustCompile(`msg=serving url=(http://127\.0\.0\.1:[0-9]+)`)

// TestEndToEnd runs `flowlog serve` and `flowlog agent` (following it, in
// two network namespaces joined by a veth pair) and drives them with the
// AWS CLI: the agent's links show in describe-vpcs/-subnets/-network-
// interfaces; a file flow log and a cloud-watch-logs flow log created with
// create-flow-logs run within seconds (kinesis-data-firehose flow logs:
// TestFirehoseEndToEnd); traffic between the namespaces lands in
// the directory and in the server's CloudWatch Logs (read back with
// get-log-events) once the flow logs are deleted (which flushes their open
// records); a deleted flow log writes nothing more.
func TestEndToEnd(t *testing.T) {
	t.Parallel() // own namespaces, servers and directories; mostly waiting
	apitest.RequireCLI(t)
	lab := netlab.New(t)
	began := time.Now()
	bin := buildFlowlog(t)
	t.Logf("built flowlog in %s", time.Since(began).Round(time.Millisecond))

	nsA, nsB := lab.Netns("a"), lab.Netns("b")
	pA, pB := netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("10.77.0.2/24")
	lab.Veth(netlab.End{Netns: nsA, Name: "e2ea", Addrs: []netip.Prefix{pA}, NoIPv6: true},
		netlab.End{Netns: nsB, Name: "e2eb", Addrs: []netip.Prefix{pB}, NoIPv6: true})

	dir := t.TempDir()
	server, url, cli := startServer(t, bin, dir)

	secret := writeFile(t, filepath.Join(dir, "agent.secret"), apitest.SecretKey+"\n")
	agentCfg := writeFile(t, filepath.Join(dir, "agent.yaml"), fmt.Sprintf(`account-id: "%s"
region: %s
source: afpacket
netns: [%s, %s]
interfaces:
  include: [e2e*]
metrics-address: 127.0.0.1:0
spool:
  dir: %s
log:
  level: debug
server:
  url: %s
  access-key-id: %s
  secret-access-key-file: %s
  status-interval: 2s
  poll-wait: 10s
`, apitest.AccountID, apitest.Region, nsA, nsB, filepath.Join(dir, "spool"), url, apitest.AccessKey, secret))
	agent := start(t, "flowlog agent", bin, "agent", "--config", agentCfg)
	agent.wait(t, 20*time.Second, regexp.MustCompile(`msg=registered .*interfaces=2 `))

	// What the agent registered.
	var enis struct {
		NetworkInterfaces []struct {
			NetworkInterfaceId, SubnetId, VpcId, MacAddress, PrivateIpAddress string
		}
	}
	cli.JSON(t, &enis, "ec2", "describe-network-interfaces", "--filters", "Name=addresses.private-ip-address,Values=10.77.0.1,10.77.0.2")
	if len(enis.NetworkInterfaces) != 2 {
		t.Fatalf("describe-network-interfaces: %+v", enis)
	}
	eni := map[string]string{}
	for _, e := range enis.NetworkInterfaces {
		eni[e.PrivateIpAddress] = e.NetworkInterfaceId
	}
	vpc, subnet := enis.NetworkInterfaces[0].VpcId, enis.NetworkInterfaces[0].SubnetId
	var vpcs struct {
		Vpcs []struct{ VpcId, CidrBlock string }
	}
	cli.JSON(t, &vpcs, "ec2", "describe-vpcs", "--vpc-ids", vpc)
	if len(vpcs.Vpcs) != 1 || vpcs.Vpcs[0].CidrBlock != "10.77.0.0/24" {
		t.Fatalf("describe-vpcs %s: %+v", vpc, vpcs)
	}
	var subnets struct {
		Subnets []struct{ SubnetId, VpcId, CidrBlock string }
	}
	cli.JSON(t, &subnets, "ec2", "describe-subnets", "--subnet-ids", subnet)
	if len(subnets.Subnets) != 1 || subnets.Subnets[0].VpcId != vpc || subnets.Subnets[0].CidrBlock != "10.77.0.0/24" {
		t.Fatalf("describe-subnets %s: %+v", subnet, subnets)
	}

	create := func(args ...string) string {
		t.Helper()
		return createFlowLog(t, cli, args...)
	}
	// running is how long after invoked the agent logged that it runs
	// the flow log (the CLI itself takes most of a second to start).
	running := func(id string, invoked time.Time) time.Duration {
		t.Helper()
		m := agent.wait(t, 5*time.Second, regexp.MustCompile(`^time=(\S+) .*msg="flow log added" flow_log=`+id))
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatal(err)
		}
		return at.Sub(invoked)
	}
	records := filepath.Join(dir, "records")
	const format = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${vpc-id} ${subnet-id}"
	invoked := time.Now()
	fileInvoked := invoked
	fileLog := create("--resource-type", "VPC", "--resource-ids", vpc, "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", records, "--log-format", format, "--max-aggregation-interval", "60")
	t.Logf("file flow log %s running %s after create-flow-logs was invoked", fileLog, running(fileLog, invoked).Round(time.Millisecond))
	// The delivery role of the cloud-watch-logs flow log: the agent
	// publishes with its sessions.
	cli.JSON(t, nil, "iam", "create-role", "--role-name", "flow-logs", "--assume-role-policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"vpc-flow-logs.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	cli.JSON(t, nil, "iam", "put-role-policy", "--role-name", "flow-logs", "--policy-name", "publish", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogGroups","logs:DescribeLogStreams"],"Resource":"*"}]}`)
	invoked = time.Now()
	cwlLog := create("--resource-type", "Subnet", "--resource-ids", subnet, "--traffic-type", "ALL",
		"--log-destination-type", "cloud-watch-logs", "--log-group-name", "e2e-flow-logs",
		"--deliver-logs-permission-arn", "arn:aws:iam::"+apitest.AccountID+":role/flow-logs", "--max-aggregation-interval", "60")
	t.Logf("cloud-watch-logs flow log %s running %s after create-flow-logs was invoked", cwlLog, running(cwlLog, invoked).Round(time.Millisecond))

	port := uint16(20000 + rand.IntN(20000))
	src, dst := netip.AddrPortFrom(pA.Addr(), port), netip.AddrPortFrom(pB.Addr(), 8080)
	if err := netlab.TCP(nsA, src, nsB, dst, 2000, 6000, false); err != nil {
		t.Fatal(err)
	}

	if os.Getenv("FLOWLOG_E2E_WINDOW") != "" {
		// Opt-in (up to a minute longer): the records of the first
		// window, published when it closes, without a delete to flush.
		waitObjects(t, records, 70*time.Second)
		end := fileInvoked.Truncate(time.Minute).Add(time.Minute) // windows are aligned to the minute
		t.Logf("first object in the directory %s after create-flow-logs was invoked: its window ended %s after, published %s after the end",
			time.Since(fileInvoked).Round(time.Millisecond), end.Sub(fileInvoked).Round(time.Millisecond), time.Since(end).Round(time.Millisecond))
	}

	type described struct {
		FlowLogId, DeliverLogsStatus, DeliverLogsErrorMessage string
	}
	describe := func() map[string]described {
		t.Helper()
		var out struct{ FlowLogs []described }
		cli.JSON(t, &out, "ec2", "describe-flow-logs", "--filter", "Name=resource-id,Values="+vpc+","+subnet+","+eni["10.77.0.2"])
		m := map[string]described{}
		for _, d := range out.FlowLogs {
			m[d.FlowLogId] = d
		}
		return m
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := describe()
		if d[fileLog].DeliverLogsStatus == "SUCCESS" && d[cwlLog].DeliverLogsStatus == "SUCCESS" {
			t.Logf("describe-flow-logs: %s and %s SUCCESS", fileLog, cwlLog)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe-flow-logs: %+v", d)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Deleting flushes the open records: they are in the directory at once.
	deleted := time.Now()
	cli.JSON(t, nil, "ec2", "delete-flow-logs", "--flow-log-ids", fileLog, cwlLog)
	agent.wait(t, 15*time.Second, regexp.MustCompile(`msg="flow log removed" flow_log=`+fileLog))
	agent.wait(t, 15*time.Second, regexp.MustCompile(`msg="flow log removed" flow_log=`+cwlLog))
	t.Logf("delete-flow-logs -> both stopped and flushed after %s", time.Since(deleted).Round(time.Millisecond))
	var packets int64
	for _, r := range readDir(t, records) {
		if r.LogStatus == flow.LogStatusOK && r.SrcAddr == src.Addr() && r.DstAddr == dst.Addr() && r.SrcPort == src.Port() && r.DstPort == dst.Port() {
			if r.InterfaceID != eni["10.77.0.1"] && r.InterfaceID != eni["10.77.0.2"] || r.VPCID != vpc || r.SubnetID != subnet || r.AccountID != apitest.AccountID {
				t.Errorf("record ids: %+v", r)
			}
			packets += int64(r.Packets)
		}
	}
	if packets == 0 {
		t.Fatalf("no record of %s -> %s in %s", src, dst, records)
	}

	// The same connection in CloudWatch Logs, read back with the CLI.
	var events struct{ Events []struct{ Message string } }
	cli.JSON(t, &events, "logs", "get-log-events", "--log-group-name", "e2e-flow-logs", "--log-stream-name", eni["10.77.0.1"]+"-all", "--start-from-head")
	want := fmt.Sprintf(" %s %s %d %d 6 ", src.Addr(), dst.Addr(), src.Port(), dst.Port())
	found := false
	for _, e := range events.Events {
		found = found || strings.Contains(e.Message, want) && strings.HasPrefix(e.Message, "2 "+apitest.AccountID+" "+eni["10.77.0.1"]+" ")
	}
	if !found {
		t.Fatalf("get-log-events: no event with %q in %+v", want, events.Events)
	}

	// Deleted means no more records.
	objects := countObjects(records)
	if err := netlab.TCP(nsA, netip.AddrPortFrom(pA.Addr(), port+1), nsB, dst, 100, 100, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if n := countObjects(records); n != objects {
		t.Errorf("%d objects when the flow log was deleted, %d now", objects, n)
	}
	agent.stop(t)
	server.stop(t)
	t.Logf("end to end in %s", time.Since(began).Round(time.Millisecond))
}
