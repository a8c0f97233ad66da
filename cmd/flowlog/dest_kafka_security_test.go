package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/sink/kafka"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
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
