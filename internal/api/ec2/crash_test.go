package ec2_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
)

// buildFlowlog builds the flowlog binary once per test binary run.
var buildFlowlog = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "flowlog-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "flowlog")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/flowlog/flowlog/cmd/flowlog").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// serveProc is a running `flowlog serve`.
type serveProc struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	logs *strings.Builder
	mu   *sync.Mutex
}

var servingURL = regexp.MustCompile(`msg=serving url=(http://\S+)`)

// startServe runs `flowlog serve` on a free loopback port with the test
// administrator's key and waits for its "serving" line.
func startServe(t *testing.T, bin, dataDir string) *serveProc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "server.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata-dir: %s\naccount-id: %q\nregion: %s\naccess-keys:\n  - access-key-id: %s\n    secret-access-key: %s\n",
		dataDir, apitest.AccountID, apitest.Region, apitest.AccessKey, apitest.SecretKey)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan error, 1), logs: &strings.Builder{}, mu: &sync.Mutex{}}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := servingURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case p.url = <-urlc:
	case err := <-p.done:
		t.Fatalf("flowlog serve exited: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("flowlog serve did not start in 30 s\n%s", p.log())
	}
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// kill -9 `flowlog serve` while 20 clients create flow logs: after a
// restart every create a client saw succeed is there, and the store is
// consistent (integrity check, every flow log with all its tags, every
// client token's flow logs present, the token still answers the same).
func TestServeSurvivesKill9DuringCreates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the flowlog binary: not in -short")
	}
	bin, err := buildFlowlog()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	srv := startServe(t, bin, dataDir)
	sg := newSigner(srv.url)
	ctx := context.Background()
	const clients, perAgent = 20, 200
	for c := range clients {
		var rr control.RegisterResult
		if err := sg.agent(ctx, control.OpRegister, registration(fmt.Sprintf("k%02d", c), fmt.Sprintf("vpc-%08d", c), perAgent), &rr); err != nil {
			t.Fatal(err)
		}
	}
	type acked struct{ token, id string }
	var (
		mu      sync.Mutex
		ok      []acked
		calls   atomic.Int64
		wg      sync.WaitGroup
		failure atomic.Value
	)
	for c := range clients {
		wg.Go(func() {
			agent := fmt.Sprintf("k%02d", c)
			for i := range perAgent {
				token := fmt.Sprintf("%s-%d", agent, i)
				p := url.Values{"ResourceType": {"NetworkInterface"}, "ResourceId.1": {fmt.Sprintf("eni-%s%04d", agent, i)}, "TrafficType": {"ALL"},
					"LogDestinationType": {"file"}, "LogDestination": {"/var/log/flows"}, "ClientToken": {token},
					"TagSpecification.1.ResourceType": {"vpc-flow-log"}, "TagSpecification.1.Tag.1.Key": {"client"}, "TagSpecification.1.Tag.1.Value": {agent},
					"TagSpecification.1.Tag.2.Key": {"n"}, "TagSpecification.1.Tag.2.Value": {fmt.Sprint(i)}}
				var out xmlCreate
				calls.Add(1)
				if err := sg.query(ctx, "CreateFlowLogs", p, &out); err != nil {
					return // the server died under us: this create is unknown
				}
				if len(out.FlowLogIDs) != 1 {
					failure.Store(fmt.Sprintf("create %s: %+v", token, out))
					return
				}
				mu.Lock()
				ok = append(ok, acked{token, out.FlowLogIDs[0]})
				mu.Unlock()
			}
		})
	}
	// Let the writes run, then kill -9 in the middle of them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(ok)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatal(f)
	}
	t.Logf("killed after %d creates acknowledged, %d attempted", len(ok), calls.Load())
	if len(ok) == 0 || int(calls.Load()) == len(ok) {
		t.Fatalf("the kill did not land during writes: %d acknowledged of %d", len(ok), calls.Load())
	}

	// The store as the crash left it.
	db := openRO(t, dataDir)
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q, %v", integrity, err)
	}
	var half int
	if err := db.QueryRow(`SELECT count(*) FROM ec2_flow_logs f WHERE (SELECT count(*) FROM ec2_flow_log_tags t WHERE t.flow_log_id = f.id) != 2`).Scan(&half); err != nil || half != 0 {
		t.Fatalf("%d flow logs without both tags (%v)", half, err)
	}
	var orphanTokens int
	if err := db.QueryRow(`SELECT count(*) FROM ec2_client_tokens c WHERE NOT EXISTS (SELECT 1 FROM ec2_flow_logs f WHERE f.client_token = c.token)`).Scan(&orphanTokens); err != nil || orphanTokens != 0 {
		t.Fatalf("%d client tokens without their flow log (%v)", orphanTokens, err)
	}
	var stored int
	if err := db.QueryRow(`SELECT count(*) FROM ec2_flow_logs`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Restart: every acknowledged create is served.
	srv = startServe(t, bin, dataDir)
	sg = newSigner(srv.url)
	have := map[string]bool{}
	token := ""
	for {
		q := url.Values{"MaxResults": {"1000"}}
		if token != "" {
			q.Set("NextToken", token)
		}
		var d xmlDescribe
		if err := sg.query(ctx, "DescribeFlowLogs", q, &d); err != nil {
			t.Fatal(err)
		}
		for _, fl := range d.FlowLogs {
			have[fl.ID] = true
		}
		if token = d.NextToken; token == "" {
			break
		}
	}
	if len(have) != stored {
		t.Fatalf("restarted server describes %d flow logs, the store has %d", len(have), stored)
	}
	for _, a := range ok {
		if !have[a.id] {
			t.Fatalf("acknowledged flow log %s (token %s) lost", a.id, a.token)
		}
	}
	// And the AWS CLI sees it, tags and all.
	cli := apitest.CLI{URL: srv.url, AccessKey: apitest.AccessKey, SecretKey: apitest.SecretKey, Region: apitest.Region}
	var d cliDescribe
	cli.JSON(t, &d, "ec2", "describe-flow-logs", "--flow-log-ids", ok[0].id)
	if len(d.FlowLogs) != 1 || len(d.FlowLogs[0].Tags) != 2 || d.FlowLogs[0].LogDestination != "/var/log/flows" {
		t.Fatalf("aws ec2 describe-flow-logs after restart: %+v", d.FlowLogs)
	}
	// A retry after the restart gets the first answer.
	a := ok[len(ok)/2]
	agent, i, _ := strings.Cut(a.token, "-")
	p := url.Values{"ResourceType": {"NetworkInterface"}, "ResourceId.1": {"eni-" + agent + fmt.Sprintf("%04s", i)}, "TrafficType": {"ALL"},
		"LogDestinationType": {"file"}, "LogDestination": {"/var/log/flows"}, "ClientToken": {a.token},
		"TagSpecification.1.ResourceType": {"vpc-flow-log"}, "TagSpecification.1.Tag.1.Key": {"client"}, "TagSpecification.1.Tag.1.Value": {agent},
		"TagSpecification.1.Tag.2.Key": {"n"}, "TagSpecification.1.Tag.2.Value": {i}}
	var out xmlCreate
	if err := sg.query(ctx, "CreateFlowLogs", p, &out); err != nil || len(out.FlowLogIDs) != 1 || out.FlowLogIDs[0] != a.id {
		t.Fatalf("retry of %s after restart: %+v, %v (want %s)", a.token, out, err, a.id)
	}
	t.Logf("after restart: %d flow logs stored, all %d acknowledged present, %d committed but unacknowledged", stored, len(ok), stored-len(ok))
	// SIGTERM stops it cleanly.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Fatalf("flowlog serve after SIGTERM: %v\n%s", err, srv.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("flowlog serve did not stop on SIGTERM")
	}
}
