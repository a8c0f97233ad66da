package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// controlServer is a real `flowlog serve` API (EC2 + agent protocol) on
// loopback that a test can stop and start again on the same address and
// store.
type controlServer struct {
	url, addr string
	stop      func()
}

func startControl(t *testing.T, dir, addr string) *controlServer {
	t.Helper()
	return startControlTLS(t, dir, addr, "", "")
}

// startControlTLS serves https with the certificate and key files when
// given.
func startControlTLS(t *testing.T, dir, addr, certFile, keyFile string) *controlServer {
	t.Helper()
	ctx := context.Background()
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ec2.New(ctx, db, ec2.Options{AccountID: apitest.AccountID, Region: apitest.Region})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Options{
		Credentials: api.StaticKeys{AccountID: apitest.AccountID, Keys: []api.AccessKey{{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}}},
		Services:    []api.Service{svc, control.NewService(svc, control.ServiceOptions{PollWait: 2 * time.Second})},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for try := 0; ; try++ {
		if ln, err = net.Listen("tcp", addr); err == nil || try == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the address of a stopped server
	}
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	// The grace is above HTTP/2's 1 s GOAWAY wait.
	go func() { done <- api.ListenAndServe(sctx, ln, srv, 5*time.Second, certFile, keyFile) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && err != http.ErrServerClosed {
				t.Errorf("control server: %v", err)
			}
			db.Close()
		})
	}
	t.Cleanup(stop)
	scheme := "http://"
	if certFile != "" {
		scheme = "https://"
	}
	return &controlServer{url: scheme + ln.Addr().String(), addr: ln.Addr().String(), stop: stop}
}

func (s *controlServer) cli() apitest.CLI {
	return apitest.CLI{URL: s.url, AccessKey: apitest.AccessKey, SecretKey: apitest.SecretKey, Region: apitest.Region}
}

// serverConfig is the lab's configuration following srv, without flow logs.
func (l *lab) serverConfig(srv *controlServer) Config {
	cfg := l.config("afpacket")
	cfg.AccountID = apitest.AccountID
	cfg.Server = &Server{URL: srv.url, AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey,
		StatusInterval: time.Second, PollWait: 2 * time.Second}
	return cfg
}

// logBuffer keeps the agent's log lines for assertions (and shows them).
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	w.mu.Unlock()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// count is how many lines hold every one of parts.
func (w *logBuffer) count(parts ...string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for line := range strings.SplitSeq(w.b.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func (l *lab) startLogged(t *testing.T, cfg Config) (*Agent, *logBuffer) {
	t.Helper()
	lb := &logBuffer{t: t}
	a, err := New(cfg, Deps{Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), HostRoot: filepath.Join(l.root, "host"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	return a, lb
}

// eventually retries cond every 100 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

type describedENI struct {
	NetworkInterfaceId, SubnetId, VpcId, MacAddress, PrivateIpAddress string
}

// registeredENIs is what describe-network-interfaces shows, by address.
func registeredENIs(t *testing.T, cli apitest.CLI) map[string]describedENI {
	t.Helper()
	var out struct{ NetworkInterfaces []describedENI }
	cli.JSON(t, &out, "ec2", "describe-network-interfaces")
	m := map[string]describedENI{}
	for _, e := range out.NetworkInterfaces {
		m[e.PrivateIpAddress] = e
	}
	return m
}

type describedFlowLog struct {
	FlowLogId, DeliverLogsStatus, DeliverLogsErrorMessage, ResourceId string
}

func describeFlowLog(t *testing.T, cli apitest.CLI, id string) describedFlowLog {
	t.Helper()
	var out struct{ FlowLogs []describedFlowLog }
	cli.JSON(t, &out, "ec2", "describe-flow-logs", "--flow-log-ids", id)
	if len(out.FlowLogs) != 1 {
		t.Fatalf("describe-flow-logs %s: %+v", id, out)
	}
	return out.FlowLogs[0]
}

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

func runs(a *Agent, id string) bool { return slices.Contains(a.FlowLogIDs(), id) }

// TestFollowServer: the agent registers its links (describe-network-
// interfaces shows them with their ids, MAC and addresses), a flow log
// created with the AWS CLI runs within seconds, one whose destination
// cannot be opened is FAILED with the reason in describe-flow-logs while
// the other delivers (SUCCESS), and a deleted one stops with its open
// records flushed to its directory.
func TestFollowServer(t *testing.T) {
	t.Parallel() // its own namespaces, server and directories
	apitest.RequireCLI(t)
	l := newLab(t)
	srv := startControl(t, t.TempDir(), "127.0.0.1:0")
	cli := srv.cli()
	a, _ := l.startLogged(t, l.serverConfig(srv))

	var enis map[string]describedENI
	took := eventually(t, 10*time.Second, "both lab links registered", func() bool {
		enis = registeredENIs(t, cli)
		return enis[pA.Addr().String()].NetworkInterfaceId != "" && enis[pB.Addr().String()].NetworkInterfaceId != ""
	})
	t.Logf("links registered %s after start", took.Round(time.Millisecond))
	va := enis[pA.Addr().String()]
	if va.MacAddress != l.a.MAC.String() || !strings.HasPrefix(va.SubnetId, "subnet-") || !strings.HasPrefix(va.VpcId, "vpc-") {
		t.Errorf("registered va: %+v (mac %s)", va, l.a.MAC)
	}
	var vpcs struct {
		Vpcs []struct{ VpcId, CidrBlock string }
	}
	cli.JSON(t, &vpcs, "ec2", "describe-vpcs", "--vpc-ids", va.VpcId)
	if len(vpcs.Vpcs) != 1 || vpcs.Vpcs[0].CidrBlock != "10.88.0.0/24" {
		t.Errorf("describe-vpcs %s: %+v", va.VpcId, vpcs)
	}

	dirA := filepath.Join(l.root, "dest-a")
	created := time.Now()
	id := createFlowLog(t, cli, "--resource-type", "VPC", "--resource-ids", va.VpcId, "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", dirA, "--log-format", testFormat, "--max-aggregation-interval", "60")
	returned := time.Now()
	eventually(t, 5*time.Second, "created flow log running", func() bool { return runs(a, id) })
	waitAttached(t, a, 5*time.Second, l.nsA+"/va", l.nsB+"/vb")
	t.Logf("create-flow-logs -> running and attached: %s after the CLI returned (%s after it started)",
		time.Since(returned).Round(time.Millisecond), time.Since(created).Round(time.Millisecond))

	// A destination the agent cannot open: the other flow log runs on.
	bad := createFlowLog(t, cli, "--resource-type", "Subnet", "--resource-ids", va.SubnetId, "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", "/proc/flowlog-cannot-be-created")
	eventually(t, 10*time.Second, "FAILED status of the unopenable flow log", func() bool {
		d := describeFlowLog(t, cli, bad)
		return d.DeliverLogsStatus == "FAILED" && strings.Contains(d.DeliverLogsErrorMessage, "/proc/flowlog-cannot-be-created")
	})
	if !runs(a, id) || runs(a, bad) {
		t.Fatalf("running %v: want %s and not %s", a.FlowLogIDs(), id, bad)
	}

	// SIGHUP's reload keeps the server's flow logs; the server section
	// itself stays until a restart.
	cfg := l.serverConfig(srv)
	cfg.Log.Level = "info"
	if warnings, err := a.Reload(cfg); err != nil || !runs(a, id) || len(warnings) != 1 || !strings.Contains(warnings[0], "log changed") {
		t.Fatalf("reload with the server: %v, warnings %q, running %v", err, warnings, a.FlowLogIDs())
	}
	noServer := l.config("afpacket", FlowLog{Resource: "vpc"})
	if _, err := a.Reload(noServer); err == nil || !strings.Contains(err.Error(), "server: removed") || !runs(a, id) {
		t.Fatalf("reload without the server: %v, running %v", err, a.FlowLogIDs())
	}

	// A link that appears is registered.
	pC := netip.MustParsePrefix("10.88.7.1/24")
	l.Veth(netlab.End{Netns: l.nsA, Name: "vc", Addrs: []netip.Prefix{pC}, NoIPv6: true},
		netlab.End{Netns: l.nsB, Name: "vd", Addrs: []netip.Prefix{netip.MustParsePrefix("10.88.7.2/24")}, NoIPv6: true})
	took = eventually(t, 5*time.Second, "new link registered", func() bool {
		return registeredENIs(t, cli)[pC.Addr().String()].NetworkInterfaceId != ""
	})
	t.Logf("new link registered within %s", took.Round(time.Millisecond))

	port := uint16(20000 + rand.IntN(20000))
	src, dst := netip.AddrPortFrom(pA.Addr(), port), netip.AddrPortFrom(pB.Addr(), 8080)
	if err := netlab.TCP(l.nsA, src, l.nsB, dst, 1000, 3000, false); err != nil {
		t.Fatal(err)
	}
	if d := describeFlowLog(t, cli, id); d.DeliverLogsStatus != "SUCCESS" {
		t.Errorf("running flow log: %+v", d)
	}

	deleted := time.Now()
	cli.JSON(t, nil, "ec2", "delete-flow-logs", "--flow-log-ids", id)
	eventually(t, 5*time.Second, "deleted flow log stopped", func() bool { return !runs(a, id) })
	t.Logf("delete-flow-logs -> stopped (records flushed): %s", time.Since(deleted).Round(time.Millisecond))
	recs := readRecords(t, dirA)
	byENI := sumRecords(recs)
	k := netlab.Flow{Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Protocol: 6}
	ft := byENI[va.NetworkInterfaceId][k]
	if ft == nil || ft.Packets == 0 {
		t.Fatalf("no record of %v on %s after delete (flush): %d records", k, va.NetworkInterfaceId, len(recs))
	}
	// Stopped means stopped: new traffic writes nothing more.
	files := countFiles(t, dirA)
	if err := netlab.TCP(l.nsA, netip.AddrPortFrom(pA.Addr(), port+1), l.nsB, dst, 100, 100, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if n := countFiles(t, dirA); n != files {
		t.Errorf("%d objects after the delete, %d now", files, n)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestFollowServerDown: an agent restarted while the server is down runs
// the flow logs it last received (from its state file), says once that the
// server cannot be reached rather than at every try, and follows the
// server again when it is back: a flow log deleted then stops.
func TestFollowServerDown(t *testing.T) {
	t.Parallel() // its own namespaces, server and directories
	apitest.RequireCLI(t)
	l := newLab(t)
	store := t.TempDir()
	srv := startControl(t, store, "127.0.0.1:0")
	cli := srv.cli()
	cfg := l.serverConfig(srv)
	a, _ := l.startLogged(t, cfg)
	var enis map[string]describedENI
	eventually(t, 10*time.Second, "lab links registered", func() bool {
		enis = registeredENIs(t, cli)
		return enis[pA.Addr().String()].VpcId != ""
	})
	va := enis[pA.Addr().String()]
	dirA := filepath.Join(l.root, "dest-a")
	id := createFlowLog(t, cli, "--resource-type", "VPC", "--resource-ids", va.VpcId, "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", dirA, "--log-format", testFormat, "--max-aggregation-interval", "60")
	eventually(t, 5*time.Second, "flow log running", func() bool { return runs(a, id) })
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	srv.stop()

	// Restarted without a server: the saved set runs.
	a2, logs := l.startLogged(t, cfg)
	if !runs(a2, id) {
		t.Fatalf("restarted with the server down: running %v, want %s", a2.FlowLogIDs(), id)
	}
	waitAttached(t, a2, 5*time.Second, l.nsA+"/va", l.nsB+"/vb")
	port := uint16(20000 + rand.IntN(20000))
	src, dst := netip.AddrPortFrom(pA.Addr(), port), netip.AddrPortFrom(pB.Addr(), 8080)
	if err := netlab.TCP(l.nsA, src, l.nsB, dst, 500, 500, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // tries at about 0, 0.5-1 and 1.5-3 s
	if n := logs.count("server call failing", "call=Register"); n != 1 {
		t.Errorf("%d warnings that Register fails, want 1 (once per state change)", n)
	}

	// The server is back (same address and store).
	srv2 := startControl(t, store, srv.addr)
	eventually(t, 40*time.Second, "registered again", func() bool { return logs.count("server call works again", "call=Register") == 1 })
	cli = srv2.cli()
	cli.JSON(t, nil, "ec2", "delete-flow-logs", "--flow-log-ids", id)
	eventually(t, 5*time.Second, "deleted flow log stopped", func() bool { return !runs(a2, id) })
	ft := sumRecords(readRecords(t, dirA))[va.NetworkInterfaceId][netlab.Flow{Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Protocol: 6}]
	if ft == nil || ft.Packets == 0 {
		t.Fatalf("traffic sent while the server was down is not in %s", dirA)
	}
}

// TestServerFlowLogMapping: each destination type maps onto the agent's
// destination; bad definitions are errors the agent reports as FAILED.
func TestServerFlowLogMapping(t *testing.T) {
	srv := &Server{S3EndpointURL: "http://127.0.0.1:7070", S3PathStyle: true}
	base := control.FlowLog{FlowLogID: "fl-0123456789abcdef0", ResourceID: "vpc-0123456789abcdef0", TrafficType: "ALL", MaxAggregationInterval: 60}
	for _, c := range []struct {
		typ, dest, group, format string
		want                     string // destination, or error text
		ok                       bool
	}{
		{"file", "/var/log/fl", "", "", "/var/log/fl", true},
		{"file", "relative/dir", "", "", "absolute path", false},
		{"s3", "arn:aws:s3:::bucket/prefix", "", "", "arn:aws:s3:::bucket/prefix", true},
		{"cloud-watch-logs", "", "my-group", "", "cloudwatch://my-group", true},
		{"cloud-watch-logs", "arn:aws:logs:us-east-1:123456789012:log-group:other:*", "", "", "cloudwatch://other", true},
		{"kafka", "kafka://127.0.0.1:9092/flows", "", "", "kafka://127.0.0.1:9092/flows", true},
		{"kinesis-data-firehose", "arn:aws:firehose:us-east-1:123456789012:deliverystream/x", "", "", "arn:aws:firehose:us-east-1:123456789012:deliverystream/x", true},
		{"kinesis-data-firehose", "arn:aws:firehose:us-east-1:123456789012:deliverystream/a/b", "", "", "want arn:aws:firehose:", false},
		{"kinesis-data-firehose", "firehose://x", "", "", "want arn:aws:firehose:", false},
		{"carrier-pigeon", "x", "", "", "not one the agent knows", false},
		{"file", "/var/log/fl", "", "${nope}", "format: ", false},
	} {
		in := base
		in.LogDestinationType, in.LogDestination, in.LogGroupName, in.LogFormat = c.typ, c.dest, c.group, c.format
		fl, err := ServerFlowLog(in, srv)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s %s: %v", c.typ, c.dest, err)
		case c.ok && fl.Destination != c.want:
			t.Errorf("%s %s: destination %q, want %q", c.typ, c.dest, fl.Destination, c.want)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %s: error %v, want %q", c.typ, c.dest, err, c.want)
		}
		if c.ok && (fl.ID != base.FlowLogID || fl.Resource != base.ResourceID || fl.Interval != 60 || fl.Format != "default") {
			t.Errorf("%s: %+v", c.typ, fl)
		}
		if c.ok && c.typ == "s3" && (fl.EndpointURL != srv.S3EndpointURL || !fl.S3PathStyle) {
			t.Errorf("s3 endpoint not applied: %+v", fl)
		}
	}
}

// TestServerConfig: the server section's keys are checked, flow-logs next
// to it are refused, and a secret file or configuration file holding a
// secret that others can read is refused.
func TestServerConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(apitest.SecretKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, err := Load(write("a.yaml", "server:\n  url: http://127.0.0.1:8080\n  access-key-id: AKIA0\n  secret-access-key-file: "+secret+"\n", 0o644))
	if err == nil || !strings.Contains(err.Error(), "other users can read it") {
		t.Fatalf("readable secret file: %v", err)
	}
	os.Chmod(secret, 0o600)
	cfg, err := Load(filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Secret() != apitest.SecretKey || cfg.Server.StateFile != filepath.Join(DefaultSpoolDir, stateFileName) {
		t.Errorf("server %+v", cfg.Server)
	}
	if b, _ := cfg.Dump(); strings.Contains(string(b), apitest.SecretKey) {
		t.Errorf("dump shows the secret read from the file:\n%s", b)
	}
	_, err = Load(write("b.yaml", "server:\n  url: http://127.0.0.1:8080\n  access-key-id: AKIA0\n  secret-access-key: inline-secret\n", 0o644))
	if err == nil || !strings.Contains(err.Error(), "server.secret-access-key") {
		t.Fatalf("inline secret in a readable file: %v", err)
	}
	if _, err := Load(write("c.yaml", "server:\n  url: http://127.0.0.1:8080\n  access-key-id: AKIA0\n  secret-access-key: inline-secret\n", 0o600)); err != nil {
		t.Fatal(err)
	}
	_, err = Load(write("d.yaml", "server:\n  url: ftp://x\n  secret-access-key: s\n  secret-access-key-file: /f\n  poll-wait: 1h\nflow-logs:\n  - destination: /tmp/x\n", 0o600))
	for _, want := range []string{"line 2: server.url", "server.access-key-id: not set", "not both", "server.poll-wait", "flow-logs: not with server"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want %q", err, want)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flowlog test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestFollowServerTLS: an agent follows an https server whose certificate
// its ca-file trusts; without ca-file the certificate is refused (and
// said so, once).
func TestFollowServerTLS(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	cert, key := selfSigned(t, t.TempDir())
	srv := startControlTLS(t, t.TempDir(), "127.0.0.1:0", cert, key)

	cfg := l.serverConfig(srv)
	cfg.Server.CAFile = cert
	_, logs := l.startLogged(t, cfg)
	eventually(t, 10*time.Second, "registered over https", func() bool { return logs.count("msg=registered") > 0 })

	untrusting := l.serverConfig(srv)
	untrusting.Spool.Dir = filepath.Join(l.root, "spool2")
	untrusting.MetricsAddress = "none"
	_, logs2 := l.startLogged(t, untrusting)
	eventually(t, 10*time.Second, "certificate refused", func() bool {
		return logs2.count("server call failing", "call=Register", "certificate") == 1
	})
	if logs2.count("msg=registered") != 0 {
		t.Fatal("registered with a server whose certificate it does not trust")
	}
}
