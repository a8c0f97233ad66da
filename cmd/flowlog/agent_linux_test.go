package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch/logstest"
	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
)

var (
	pA = netip.MustParsePrefix("10.91.0.1/24")
	pB = netip.MustParsePrefix("10.91.0.2/24")
)

// agentProc is `flowlog agent` running as a child process.
type agentProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []map[string]any // JSON log lines
	stderr bytes.Buffer
	done   chan error
}

// startAgent runs the agent binary with args (--log-format json is added)
// and waits until the log says each of want was attached.
func startAgent(t *testing.T, args []string, want ...string) *agentProc {
	t.Helper()
	p := &agentProc{t: t, done: make(chan error, 1)}
	p.cmd = exec.Command(flowlogBinary(t), append(append([]string{"agent"}, args...), "--log-format", "json")...)
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.Write(append(sc.Bytes(), '\n'))
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines = append(p.lines, m)
			}
			p.mu.Unlock()
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", p.log())
		}
	})
	for _, w := range want {
		p.waitLog(w, 5*time.Second)
	}
	return p
}

func (p *agentProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLog waits for a log line: "attached NAME" or a message.
func (p *agentProc) waitLog(what string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, m := range p.lines {
			if m["msg"] == what || (strings.HasPrefix(what, "attached ") && m["msg"] == "attached" && m["interface"] == strings.TrimPrefix(what, "attached ")) {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("no log %q within %s", what, within)
}

// signal sends sig and, for SIGTERM, waits for the exit and its status.
func (p *agentProc) stop(sig syscall.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatal("agent did not exit after the signal")
	}
	return p.cmd.ProcessState.ExitCode()
}

// udpCounts sums the OK records under dir by destination port and
// interface: packets and bytes.
func udpCounts(t *testing.T, dir string) map[uint16]map[string][2]uint64 {
	t.Helper()
	out := map[uint16]map[string][2]uint64{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log.gz") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		rd := flow.NewReader(zr, flow.ReaderOptions{})
		for {
			var r flow.Record
			if err := rd.Next(&r); err == io.EOF {
				return nil
			} else if err != nil {
				t.Fatal(err)
			}
			if r.LogStatus != flow.LogStatusOK || r.Protocol != 17 {
				continue
			}
			if out[r.DstPort] == nil {
				out[r.DstPort] = map[string][2]uint64{}
			}
			c := out[r.DstPort][r.InterfaceID]
			c[0] += r.Packets
			c[1] += r.Bytes
			out[r.DstPort][r.InterfaceID] = c
		}
	})
	return out
}

func sendUDP(t *testing.T, nsA, nsB string, port uint16, n int) {
	t.Helper()
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = 72
	}
	if err := netlab.UDP(nsA, netip.AddrPortFrom(pA.Addr(), port), nsB, netip.AddrPortFrom(pB.Addr(), port), sizes); err != nil {
		t.Fatal(err)
	}
}

// checkUDP asserts that each interface recorded n packets (100 bytes each)
// to port, on both ends of the veth (two interfaces).
func checkUDP(t *testing.T, counts map[uint16]map[string][2]uint64, port uint16, n uint64) {
	t.Helper()
	if len(counts[port]) != 2 {
		t.Errorf("port %d: records on %d interfaces, want 2: %v", port, len(counts[port]), counts[port])
	}
	for eni, c := range counts[port] {
		if c[0] != n || c[1] != n*100 {
			t.Errorf("port %d on %s: %d packets %d bytes, want %d and %d", port, eni, c[0], c[1], n, n*100)
		}
	}
}

func agentLab(t *testing.T) (*netlab.Lab, string, string) {
	lab := netlab.New(t)
	nsA, nsB := lab.Netns("a"), lab.Netns("b")
	lab.Veth(netlab.End{Netns: nsA, Name: "va", Addrs: []netip.Prefix{pA}, NoIPv6: true},
		netlab.End{Netns: nsB, Name: "vb", Addrs: []netip.Prefix{pB}, NoIPv6: true})
	return lab, nsA, nsB
}

// TestAgentSignals runs the agent as a process, for both sources:
// SIGTERM flushes every open record (the window is far from over), and a
// restart with the same spool and destination loses nothing; SIGHUP
// reloads the configuration file, adding a flow log without losing the
// first one's records.
func TestAgentSignals(t *testing.T) {
	for _, source := range []string{"afpacket", "ebpf"} {
		t.Run(source, func(t *testing.T) {
			_, nsA, nsB := agentLab(t)
			dir := t.TempDir()
			dest, destB, spool := filepath.Join(dir, "dest"), filepath.Join(dir, "destB"), filepath.Join(dir, "spool")
			config := filepath.Join(dir, "agent.yaml")
			writeConfig := func(extra string) {
				t.Helper()
				yaml := "source: " + source + "\nnetns: [" + nsA + ", " + nsB + "]\ninterfaces: {include: [\"v*\"]}\n" +
					"metrics-address: 127.0.0.1:0\nspool: {dir: " + spool + "}\n" +
					"flow-logs:\n  - destination: " + dest + "\n    interval: 600\n" + extra
				if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			writeConfig("")
			args := []string{"--config", config}
			p := startAgent(t, args, "attached va", "attached vb")
			if strings.Contains(p.log(), "not permitted") || strings.Contains(p.log(), "falling back") {
				t.Fatalf("source %s did not start as asked:\n%s", source, p.log())
			}
			sendUDP(t, nsA, nsB, 7001, 3)
			writeConfig("  - destination: " + destB + "\n    resource: " + nsA + "/va\n    interval: 60\n")
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			p.waitLog("configuration reloaded", 5*time.Second)
			sendUDP(t, nsA, nsB, 7002, 4)
			time.Sleep(200 * time.Millisecond)
			if code := p.stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d after SIGTERM", code)
			}
			counts := udpCounts(t, dest)
			checkUDP(t, counts, 7001, 3)
			checkUDP(t, counts, 7002, 4)
			countsB := udpCounts(t, destB)
			if len(countsB[7001]) != 0 || len(countsB[7002]) != 1 {
				t.Errorf("the flow log added by SIGHUP: %v", countsB)
			}

			// Restart: the same flow logs pick up where they stopped.
			p = startAgent(t, args, "attached va", "attached vb")
			sendUDP(t, nsA, nsB, 7003, 5)
			time.Sleep(200 * time.Millisecond)
			if code := p.stop(syscall.SIGINT); code != 0 {
				t.Fatalf("exit %d after SIGINT", code)
			}
			counts = udpCounts(t, dest)
			checkUDP(t, counts, 7001, 3)
			checkUDP(t, counts, 7002, 4)
			checkUDP(t, counts, 7003, 5)
		})
	}
}

// TestAgentWithoutPrivileges runs the agent as an unprivileged user: the
// error names the capabilities and, for eBPF, suggests AF_PACKET.
func TestAgentWithoutPrivileges(t *testing.T) {
	netlab.Require(t) // to switch to another user
	bin := flowlogBinary(t)
	dir, err := os.MkdirTemp("", "flowlog-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	nb := filepath.Join(dir, "flowlog")
	if err := os.WriteFile(nb, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for source, wants := range map[string][]string{
		"ebpf":     {"CAP_BPF", "CAP_NET_ADMIN", "--source afpacket"},
		"afpacket": {"CAP_NET_RAW"},
	} {
		cmd := exec.Command(nb, "agent", "--source", source, "--dest", filepath.Join(dir, "dest"), "--spool-dir", filepath.Join(dir, "spool"),
			"--metrics-address", "none")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errorsAs(err, &ee) || ee.ExitCode() != exitError {
			t.Errorf("%s as nobody: %v\n%s", source, err, out)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s as nobody: output lacks %q:\n%s", source, w, out)
			}
		}
	}
}

// TestAgentCheck lists the host's interfaces with the ids they get.
func TestAgentCheck(t *testing.T) {
	_, nsA, _ := agentLab(t)
	code, out, stderr := flowlog(t, nil, "agent", "--dest", "/tmp/flows", "--netns", nsA, "--resource", nsA+"/va", "--check")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"configuration OK: source ebpf, 1 flow log(s)", "FLOW LOG", nsA + "/va", "10.91.0.1", "(not covered)"} {
		if !strings.Contains(out, want) {
			t.Errorf("--check output lacks %q:\n%s", want, out)
		}
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// TestAgentToKafka runs the agent with a Kafka destination (kfake, a
// Kafka wire-protocol server in the test process) behind its spool: every
// record arrives as one message keyed by its interface id.
func TestAgentToKafka(t *testing.T) {
	_, nsA, nsB := agentLab(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "flows"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	format := "${interface-id} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${log-status}"
	p := startAgent(t, []string{"--source", "afpacket", "--netns", nsA + "," + nsB, "--interface", "v*",
		"--dest", "kafka://" + cluster.ListenAddrs()[0] + "/flows", "--interval", "60", "--format", format,
		"--spool-dir", filepath.Join(t.TempDir(), "spool"), "--metrics-address", "none"}, "attached va", "attached vb")
	sendUDP(t, nsA, nsB, 7201, 3)
	time.Sleep(200 * time.Millisecond)
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("flows"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var udp []string
	keys := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(udp) < 2 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if !strings.HasPrefix(v, string(r.Key)+" ") {
				t.Errorf("message %q keyed %q", v, r.Key)
			}
			if strings.Contains(v, " 7201 7201 17 ") {
				udp = append(udp, v)
				keys[string(r.Key)] = true
			}
		})
		cancel()
	}
	if len(udp) != 2 || len(keys) != 2 {
		t.Fatalf("UDP records in Kafka: %q", udp)
	}
	for _, v := range udp {
		if !strings.HasSuffix(v, " 7201 7201 17 3 300 OK") {
			t.Errorf("record %q, want 3 packets, 300 bytes", v)
		}
	}
}

// TestAgentToS3 runs the agent with an S3 destination (versitygw, a real
// S3 server) behind its spool: the objects land under the AWS key layout
// and hold every packet.
func TestAgentToS3(t *testing.T) {
	_, nsA, nsB := agentLab(t)
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey) // also isolates the AWS environment
	s3test.CreateBucket(t, client, "agent-bucket")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	p := startAgent(t, []string{"--source", "afpacket", "--netns", nsA + "," + nsB, "--interface", "v*",
		"--dest", "s3://agent-bucket/flows", "--endpoint-url", srv.URL, "--s3-path-style", "--interval", "60",
		"--account-id", "123456789012", "--region", "eu-test-1",
		"--spool-dir", filepath.Join(t.TempDir(), "spool"), "--metrics-address", "none"}, "attached va", "attached vb")
	sendUDP(t, nsA, nsB, 7301, 6)
	time.Sleep(200 * time.Millisecond)
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	objects := s3test.Objects(t, client, "agent-bucket", "flows/")
	if len(objects) == 0 {
		t.Fatal("no object in the bucket")
	}
	// Copy them into a directory and count as for the directory destination.
	dir := t.TempDir()
	for key, body := range objects {
		if !strings.HasPrefix(key, "flows/AWSLogs/123456789012/vpcflowlogs/eu-test-1/") || !strings.HasSuffix(key, ".log.gz") {
			t.Errorf("object key %s", key)
		}
		path := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkUDP(t, udpCounts(t, dir), 7301, 6)
}

// TestAgentToCloudWatch runs the agent with a CloudWatch Logs destination
// (logstest, a server that checks the wire protocol and signatures): one
// stream "<interface-id>-all" per interface, one event per record.
func TestAgentToCloudWatch(t *testing.T) {
	_, nsA, nsB := agentLab(t)
	srv := logstest.New(t)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": srv.URL(), "AWS_ACCESS_KEY_ID": logstest.AccessKey,
		"AWS_SECRET_ACCESS_KEY": logstest.SecretKey, "AWS_SESSION_TOKEN": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"), "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	group := "/flowlog/agent"
	format := "${interface-id} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${log-status}"
	p := startAgent(t, []string{"--source", "afpacket", "--netns", nsA + "," + nsB, "--interface", "v*",
		"--dest", "arn:aws:logs:" + logstest.Region + ":123456789012:log-group:" + group, "--interval", "60", "--format", format,
		"--spool-dir", filepath.Join(t.TempDir(), "spool"), "--metrics-address", "none"}, "attached va", "attached vb")
	sendUDP(t, nsA, nsB, 7401, 2)
	time.Sleep(200 * time.Millisecond)
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	streams := srv.Streams(group)
	if len(streams) != 2 {
		t.Fatalf("streams %v, want one per interface", streams)
	}
	for _, s := range streams {
		eni := strings.TrimSuffix(s, "-all")
		var udp []string
		for _, e := range srv.Events(group, s) {
			if !strings.HasPrefix(e.Message, eni+" ") {
				t.Errorf("stream %s has %q", s, e.Message)
			}
			if strings.Contains(e.Message, " 7401 7401 17 ") {
				udp = append(udp, e.Message)
			}
		}
		if len(udp) != 1 || !strings.HasSuffix(udp[0], " 2 200 OK") {
			t.Errorf("stream %s: UDP records %q", s, udp)
		}
	}
}
