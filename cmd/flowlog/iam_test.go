package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/audit"
)

// serveProc is a `flowlog serve` process.
type serveProc struct {
	cmd     *exec.Cmd
	url     string
	metrics string      // the /metrics URL, when metrics-address is set
	stdout  chan string // lines of stdout
}

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(flowlogBinary(t), append([]string{"serve"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &serveProc{cmd: cmd, stdout: make(chan string, 100)}
	urls := make(chan string, 1)
	var logs strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		re := regexp.MustCompile(`url=(https?://\S+)`)
		metricsRE := regexp.MustCompile(`address=(http://\S+/metrics)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			// The metrics line comes first; the url's send orders it
			// before the reader.
			if m := metricsRE.FindStringSubmatch(sc.Text()); m != nil {
				p.metrics = m[1]
			}
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	go func() {
		defer close(p.stdout)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.stdout <- sc.Text()
		}
	}()
	select {
	case p.url = <-urls:
	case <-done:
		t.Fatalf("flowlog serve exited before serving:\n%s", logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("flowlog serve did not serve within 30 s:\n%s", logs.String())
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("flowlog serve after SIGTERM: %v", err)
	}
}

func writeServerConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "server.yaml")
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\ndata-dir: %s\naccount-id: %q\n", filepath.Join(dir, "data"), apitest.AccountID)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// flowlog serve --init on an empty store prints the first administrator's
// key once; the key works with the aws CLI; a least-privilege user is
// refused; every call is in the audit trail after SIGTERM, within the
// flush interval; iam simulate explains the refusal.
func TestServeInitAuditAndSimulate(t *testing.T) {
	apitest.RequireCLI(t)
	dir := t.TempDir()
	cfgPath := writeServerConfig(t, dir)
	dataDir := filepath.Join(dir, "data")
	srv := startServe(t, "--config", cfgPath, "--init")
	var id, secret string
	for line := range srv.stdout {
		if v, ok := strings.CutPrefix(line, "aws_access_key_id = "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "aws_secret_access_key = "); ok {
			secret = v
			break
		}
	}
	if id == "" || secret == "" {
		t.Fatal("serve --init printed no key")
	}
	admin := apitest.CLI{URL: srv.url, AccessKey: id, SecretKey: secret, Region: apitest.Region}
	var me struct{ User struct{ Arn string } }
	admin.JSON(t, &me, "iam", "get-user")
	if me.User.Arn != "arn:aws:iam::"+apitest.AccountID+":user/admin" {
		t.Fatalf("get-user as the --init key = %+v", me)
	}
	admin.JSON(t, nil, "iam", "create-user", "--user-name", "agent-1")
	var k struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	admin.JSON(t, &k, "iam", "create-access-key", "--user-name", "agent-1")
	admin.JSON(t, nil, "iam", "put-user-policy", "--user-name", "agent-1", "--policy-name", "describe",
		"--policy-document", `{"Version":"2012-10-17","Statement":{"Sid":"Describe","Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}}`)
	agent := apitest.CLI{URL: srv.url, AccessKey: k.AccessKey.AccessKeyId, SecretKey: k.AccessKey.SecretAccessKey, Region: apitest.Region}
	r := agent.Run(t, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d", "--traffic-type", "ALL",
		"--log-destination-type", "s3", "--log-destination", "arn:aws:s3:::bucket")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "UnauthorizedOperation") {
		t.Fatalf("create-flow-logs without ec2:CreateFlowLogs: exit %d, %s", r.ExitCode, r.Stderr)
	}
	srv.stop(t)

	// The denied call is in the trail, though SIGTERM came within the
	// flush interval.
	code, out, stderr := flowlog(t, nil, "audit", "--data-dir", dataDir, "--since", "1h", "--result", "denied", "--output", "json")
	if code != 0 {
		t.Fatalf("audit: exit %d: %s", code, stderr)
	}
	var ev audit.Event
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Action != "CreateFlowLogs" || ev.Principal != "arn:aws:iam::"+apitest.AccountID+":user/agent-1" ||
		ev.ErrorCode != "UnauthorizedOperation" || ev.SourceIP != "127.0.0.1" {
		t.Fatalf("audit --result denied = %q (%v)", out, err)
	}
	code, out, _ = flowlog(t, nil, "audit", "--data-dir", dataDir, "--principal", "admin", "--action", "iam:*")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 5 || lines[0] != "TIME\tRESULT\tPRINCIPAL\tSOURCE\tACTION\tRESOURCES\tERROR" ||
		!strings.Contains(lines[1], "\tallowed\tarn:aws:iam::"+apitest.AccountID+":user/admin\t127.0.0.1\tiam:GetUser\t") {
		t.Fatalf("audit --principal admin:\n%s", out)
	}
	if code, _, stderr := flowlog(t, nil, "audit", "--data-dir", dataDir, "--result", "maybe"); code != exitUsage || !strings.Contains(stderr, "--result") {
		t.Fatalf("audit --result maybe: exit %d, %s", code, stderr)
	}

	// simulate: the refusal explained; exit 4.
	code, out, stderr = flowlog(t, nil, "iam", "simulate", "--config", cfgPath, "--principal", "agent-1", "--action", "ec2:CreateFlowLogs",
		"--resource", "arn:aws:ec2:us-east-1:"+apitest.AccountID+":vpc/vpc-0a1b2c3d")
	if code != exitDenied || !strings.Contains(out, "decision:  implicitDeny") ||
		!strings.Contains(out, "no statement of the 1 policies of arn:aws:iam::"+apitest.AccountID+":user/agent-1 allows ec2:CreateFlowLogs") ||
		!strings.Contains(out, "inline policy describe of user agent-1") {
		t.Fatalf("simulate CreateFlowLogs: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = flowlog(t, nil, "iam", "simulate", "--config", cfgPath, "--principal", "arn:aws:iam::"+apitest.AccountID+":user/agent-1",
		"--action", "ec2:DescribeFlowLogs", "--context", "aws:SourceIp=10.1.2.3", "--output", "json")
	var ex struct {
		Decision string
		Allowed  bool
		Deciding struct {
			Policy, Sid, Effect string
			Statement           int
		} `json:"decidingStatement"`
		Context map[string][]string
	}
	if err := json.Unmarshal([]byte(out), &ex); code != 0 || err != nil || !ex.Allowed || ex.Deciding.Sid != "Describe" ||
		ex.Deciding.Policy != "inline policy describe of user agent-1" || ex.Context["aws:sourceip"][0] != "10.1.2.3" || ex.Context["aws:username"][0] != "agent-1" {
		t.Fatalf("simulate DescribeFlowLogs: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	if code, _, stderr := flowlog(t, nil, "iam", "simulate", "--config", cfgPath, "--principal", "nobody", "--action", "ec2:CreateFlowLogs"); code != exitError || !strings.Contains(stderr, "no such user or role") {
		t.Fatalf("simulate unknown principal: exit %d, %s", code, stderr)
	}

	// --init again: users exist, nothing is printed.
	srv = startServe(t, "--config", cfgPath, "--init")
	srv.stop(t)
	if rest, _ := io.ReadAll(chanReader(srv.stdout)); len(rest) != 0 {
		t.Fatalf("second --init printed %q", rest)
	}

	// A key file others can read: serve refuses to start, naming the fix.
	keyFile := filepath.Join(dataDir, "iam.key")
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	outb, err := exec.Command(flowlogBinary(t), "serve", "--config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "run chmod 600 "+keyFile) {
		t.Fatalf("serve with a world-readable key file: %v\n%s", err, outb)
	}
}

// chanReader reads the lines left in c.
func chanReader(c chan string) io.Reader {
	var b strings.Builder
	for l := range c {
		b.WriteString(l + "\n")
	}
	return strings.NewReader(b.String())
}
