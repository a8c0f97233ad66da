package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const agentGoldens = "../../internal/agent/testdata/config"

// TestAgentDumpConfig prints the effective configuration of a file with
// every key: the agent package's golden.
func TestAgentDumpConfig(t *testing.T) {
	code, out, stderr := flowlog(t, nil, "agent", "--config", filepath.Join(agentGoldens, "full/in.yaml"), "--dump-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(filepath.Join(agentGoldens, "full/expected.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("--dump-config:\n%s\nwant:\n%s", out, want)
	}
}

func TestAgentFlagsOnly(t *testing.T) {
	code, out, stderr := flowlog(t, nil, "agent", "--dest", "/var/log/flows", "--interval", "60", "--source", "afpacket",
		"--netns", "blue,red", "--traffic-type", "reject", "--dump-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"source: afpacket\n", "netns:\n  - blue\n  - red\n", "  - resource: vpc\n    traffic-type: REJECT\n    format: default\n    interval: 60\n    destination: /var/log/flows\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	// Flags override the file; --dest adds a flow log to the file's.
	code, out, stderr = flowlog(t, nil, "agent", "-c", filepath.Join(agentGoldens, "minimal/in.yaml"), "--source", "afpacket",
		"--dest", "./more", "--dump-config")
	if code != 0 || !strings.Contains(out, "source: afpacket\n") || !strings.Contains(out, "destination: /var/log/flowlogs\n") ||
		!strings.Contains(out, "destination: ./more\n") {
		t.Errorf("exit %d, dump:\n%s%s", code, out, stderr)
	}
}

func TestAgentConfigErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"agent", "--check"}, exitUsage, "no flow log"},
		{[]string{"agent", "--dest", "/x", "--interval", "30", "--check"}, exitUsage, "flow-logs[0].interval: 30: want 60 or 600"},
		{[]string{"agent", "--format", "${srcaddr}", "--check"}, exitUsage, "--format describes the flow log of --dest"},
		{[]string{"agent", "-c", filepath.Join(agentGoldens, "err-unknown-key/in.yaml"), "--check"}, exitError, `[4:5] unknown field "fomat"`},
		{[]string{"agent", "-c", filepath.Join(agentGoldens, "err-values/in.yaml"), "--check"}, exitError, "line 11: flow-logs[0].interval: 300"},
		{[]string{"agent", "-c", "/nonexistent/agent.yaml"}, exitError, "read config"},
		{[]string{"agent", "extra"}, exitUsage, "no arguments"},
	} {
		code, _, stderr := flowlog(t, nil, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
