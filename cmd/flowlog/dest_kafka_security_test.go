package main

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent"
	"github.com/flowlog/flowlog/internal/sink/kafka"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
)

// runFlowlog runs the flowlog command (this test binary as flowlog, see
// flowlogProcess) with env added to the environment.
func runFlowlog(t *testing.T, env map[string]string, args ...string) (code int, out string, took time.Duration) {
	t.Helper()
	p := flowlogProcess(args...)
	for k, v := range env {
		p.Env = append(p.Env, k+"="+v)
	}
	began := time.Now()
	b, err := p.CombinedOutput()
	took = time.Since(began)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(b), took
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(b), took
}

// TestReadToKafkaSecured: `flowlog read --dest 'kafka://…?tls=true&sasl=scram-sha-512'`
// with the CA, user and password in FLOWLOG_KAFKA_* puts every record in
// the topic, which `flowlog analyze` reads back over the same; a wrong
// password or a plaintext URL for a TLS broker fails at once saying so;
// tls-insecure-skip-verify is warned about.
func TestReadToKafkaSecured(t *testing.T) {
	p := kafkatest.NewPKI(t)
	c := kafkatest.Cluster(t, p, false, "SCRAM-SHA-512", "flows")
	env := p.Env(false, true)
	dest := "kafka://" + c.ListenAddrs()[0] + "/flows?tls=true&sasl=scram-sha-512"
	want := recordLines(t, samplePath)

	if code, out, _ := runFlowlog(t, env, "read", "--dest", dest, samplePath); code != 0 {
		t.Fatalf("read --dest %s: exit %d: %s", dest, code, out)
	}
	code, out, _ := runFlowlog(t, env, "analyze", "summary", "--output", "json", dest)
	if code != 0 || !strings.Contains(out, `"records":`+strconv.Itoa(len(want))+",") {
		t.Fatalf("analyze summary %s: exit %d: %s; want %d records", dest, code, out, len(want))
	}

	wrong := p.Env(false, true)
	wrong[kafka.EnvPassword] = "wrong"
	code, out, took := runFlowlog(t, wrong, "read", "--dest", dest, samplePath)
	if code == 0 || !strings.Contains(out, `kafka SASL: the broker closed the connection instead of accepting user "flowlog"`) || took > 5*time.Second || strings.Contains(out, "wrong") {
		t.Fatalf("wrong password: exit %d after %v: %s", code, took, out)
	}
	code, out, took = runFlowlog(t, nil, "read", "--dest", "kafka://"+c.ListenAddrs()[0]+"/flows", samplePath)
	if code == 0 || !strings.Contains(out, "add tls=true") || took > 5*time.Second {
		t.Fatalf("plaintext URL for a TLS broker: exit %d after %v: %s", code, took, out)
	}
	code, out, _ = runFlowlog(t, nil, "read", "--dest", dest, samplePath)
	if code != exitUsage || !strings.Contains(out, "no username: set FLOWLOG_KAFKA_USERNAME") {
		t.Fatalf("no credentials: exit %d: %s", code, out)
	}
	insecure := map[string]string{kafka.EnvUsername: kafkatest.User, kafka.EnvPassword: kafkatest.Password}
	code, out, _ = runFlowlog(t, insecure, "read", "--dest", dest+"&tls-insecure-skip-verify=true", samplePath)
	if code != 0 || !strings.Contains(out, "flowlog: warning: kafka tls-insecure-skip-verify=true: the brokers' certificates are not checked") {
		t.Fatalf("insecure: exit %d: %s", code, out)
	}
}

// TestAgentKafkaSecured: the agent's kafka opener (also for flow logs it
// follows from a server, whose URL is passed through) secures its sink
// with the URL's query and the agent's FLOWLOG_KAFKA_* environment:
// mutual TLS and SCRAM-SHA-256 here; the records arrive. A wrong password
// fails the opening at once; brokers that are down do not.
func TestAgentKafkaSecured(t *testing.T) {
	p := kafkatest.NewPKI(t)
	c := kafkatest.Cluster(t, p, true, "SCRAM-SHA-256", "flows")
	for k, v := range p.Env(true, true) {
		t.Setenv(k, v)
	}
	fl := agent.FlowLog{ID: "fl-0123456789abcdef0", Destination: "kafka://" + c.ListenAddrs()[0] + "/flows?tls=true&sasl=scram-sha-256"}
	d, err := openAgentKafka(context.Background(), fl, fl.ID, flow.DefaultFormat(), nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := sinktest.Window(7, 1529511600, 20, 2)
	if err := d.Sink.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := d.Sink.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runFlowlog(t, nil, "analyze", "summary", "--output", "json", fl.Destination)
	if code != 0 || !strings.Contains(out, `"records":20,`) {
		t.Fatalf("analyze summary: exit %d: %s", code, out)
	}

	t.Setenv(kafka.EnvPassword, "wrong")
	began := time.Now()
	if _, err := openAgentKafka(context.Background(), fl, fl.ID, flow.DefaultFormat(), nil); err == nil || !strings.Contains(err.Error(), "kafka SASL: ") || time.Since(began) > 3*time.Second {
		t.Fatalf("a wrong password: after %v: %v", time.Since(began), err)
	}
	t.Setenv(kafka.EnvPassword, kafkatest.Password)
	down := agent.FlowLog{ID: fl.ID, Destination: "kafka://127.0.0.1:1/flows?tls=true&sasl=scram-sha-256"}
	d, err = openAgentKafka(context.Background(), down, fl.ID, flow.DefaultFormat(), nil)
	if err != nil {
		t.Fatalf("brokers down are no reason not to open (the spool delivers later): %v", err)
	}
	d.Sink.(interface{ Abort() }).Abort()
	d.Sink.Close()

	t.Setenv(kafka.EnvCertFile, "")
	if _, err := openAgentKafka(context.Background(), fl, fl.ID, flow.DefaultFormat(), nil); err == nil || !strings.Contains(err.Error(), "FLOWLOG_KAFKA_CERT_FILE and FLOWLOG_KAFKA_KEY_FILE go together") {
		t.Fatalf("a key without its certificate: %v", err)
	}
}
