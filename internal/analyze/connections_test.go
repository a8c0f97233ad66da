package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// connJSON is one line of `connections --output json`.
type connJSON struct {
	Interface   string   `json:"interface"`
	Protocol    int      `json:"protocol"`
	Client      string   `json:"client"`
	Server      string   `json:"server"`
	InitiatorBy string   `json:"initiator_by"`
	Verdict     string   `json:"verdict"`
	Handshake   string   `json:"handshake"`
	FlagsKnown  bool     `json:"tcp_flags_known"`
	First       string   `json:"first"`
	Last        string   `json:"last"`
	ToServer    dirJSON  `json:"client_to_server"`
	ToClient    dirJSON  `json:"server_to_client"`
	Extra       struct{} `json:"-"`
}

type dirJSON struct {
	Records  uint64   `json:"records"`
	Packets  uint64   `json:"packets"`
	Bytes    uint64   `json:"bytes"`
	Accepted uint64   `json:"accepted_records"`
	Rejected uint64   `json:"rejected_records"`
	TCPFlags []string `json:"tcp_flags"`
}

// listInputs lists the inputs of args.
func listInputs(t testing.TB, args ...string) []Input {
	t.Helper()
	var ins []Input
	l := &Lister{}
	for _, a := range args {
		if err := l.List(context.Background(), a, func(in Input) error { ins = append(ins, in); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return ins
}

func sample(t testing.TB, name string) string {
	return filepath.Join(corpora(t), "aws-samples", name)
}

// conns runs Connections with JSON output.
func conns(t testing.TB, rc ReadConfig, opt ConnOptions, paths ...string) ([]connJSON, Stats) {
	t.Helper()
	var out bytes.Buffer
	st, err := Connections(context.Background(), listInputs(t, paths...), rc, opt, Output{W: &out, Mode: ModeJSON})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Failed) > 0 || st.SkippedLines > 0 {
		t.Fatalf("failed %v, skipped %d lines: %v", st.Failed, st.SkippedLines, st.LineErrors)
	}
	var cs []connJSON
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var c connJSON
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		cs = append(cs, c)
	}
	return cs, st
}

// want is the part of a conversation a test asserts.
type want struct {
	client, server, by, verdict, handshake string
}

func checkConns(t *testing.T, got []connJSON, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("%d conversations, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Client != w.client || g.Server != w.server || g.InitiatorBy != w.by || g.Verdict != w.verdict || g.Handshake != w.handshake {
			t.Errorf("conversation %d: %s → %s by %s: %q (handshake %q); want %s → %s by %s: %q (handshake %q)",
				i, g.Client, g.Server, g.InitiatorBy, g.Verdict, g.Handshake, w.client, w.server, w.by, w.verdict, w.handshake)
		}
	}
}

func hasNote(st Stats, sub string) bool {
	for _, n := range st.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// TestConnectionsAWSSamples analyzes every sample AWS publishes and
// asserts the verdict a person reading the AWS documentation would give.
func TestConnectionsAWSSamples(t *testing.T) {
	all := ConnOptions{Protocol: -1}
	tcp := ConnOptions{}
	cases := []struct {
		files []string
		opt   ConnOptions
		want  []want
		note  string
	}{
		{[]string{"v3-tcp-flags-1-syn-synack.log"}, tcp, []want{
			{"52.213.180.42:43416", "10.0.0.62:5001", "flags", "established", "complete"},
			{"52.213.180.42:43418", "10.0.0.62:5001", "flags", "established", "complete"},
		}, ""},
		// The FIN window alone has no SYN: the initiator is a guess
		// from the ports, and says so.
		{[]string{"v3-tcp-flags-2-fin.log"}, tcp, []want{
			{"52.213.180.42:43418", "10.0.0.62:5001", "ports", "closed by FIN by both", "not seen"},
		}, ""},
		// Two windows in two files: one conversation with its
		// handshake from the first and its end from the second.
		{[]string{"v3-tcp-flags-2-fin.log", "v3-tcp-flags-1-syn-synack.log"}, tcp, []want{
			{"52.213.180.42:43416", "10.0.0.62:5001", "flags", "established", "complete"},
			{"52.213.180.42:43418", "10.0.0.62:5001", "flags", "closed by FIN by both", "complete"},
		}, ""},
		{[]string{"v3-tcp-flags-3-short-connection.log"}, tcp, []want{
			{"52.213.180.42:43638", "10.0.0.62:5001", "flags", "closed by FIN by both", "complete"},
		}, ""},
		{[]string{"transit-gateway-server-eni.log"}, tcp, []want{
			{"10.20.33.164:39812", "10.40.2.236:80", "flags", "closed by FIN by both", "complete"},
		}, ""},
		// Each transit gateway ENI sees one direction; the packet
		// addresses still name the client.
		{[]string{"transit-gateway-tgw-eni-request.log"}, tcp, []want{
			{"10.20.33.164:39812", "10.40.2.236:80", "flags", "closed by FIN by client", "SYN only"},
		}, ""},
		{[]string{"transit-gateway-tgw-eni-response.log"}, tcp, []want{
			{"10.20.33.164:39812", "10.40.2.236:80", "flags", "closed by FIN by server", "SYN-ACK only"},
		}, ""},
		{[]string{"v5-service-traffic-path-flow-direction.log"}, tcp, []want{
			{"10.0.0.71:34210", "52.95.128.179:80", "flags", "closed by FIN by both", "complete"},
		}, ""},
		{[]string{"default-accepted-ssh.log"}, tcp, []want{
			{"172.31.16.139:20641", "172.31.16.21:22", "ports", "one-way (reply not logged)", ""},
		}, "no tcp-flags"},
		{[]string{"default-ipv6-ssh.log"}, tcp, []want{
			{"[2001:db8:1234:a100:8d6e:3477:df66:f105]:34892", "[2001:db8:1234:a102:3304:8879:34cf:4071]:22", "ports", "one-way (reply not logged)", ""},
		}, "no tcp-flags"},
		{[]string{"default-rejected-rdp.log"}, tcp, []want{
			{"172.31.9.69:49761", "172.31.9.12:3389", "ports", "rejected", ""},
		}, "no tcp-flags"},
		// The ping is allowed in by the security group, and its reply
		// dropped by the stateless network ACL.
		{[]string{"default-sg-nacl-ping.log"}, all, []want{
			{"203.0.113.12", "172.31.16.139", "time", "reply rejected", ""},
		}, ""},
		{[]string{"default-sg-nacl-ping.log"}, tcp, nil, ""},
		{[]string{"default-nodata.log"}, all, nil, ""},
		{[]string{"default-skipdata.log"}, all, nil, ""},
		// No ports, protocol or flags: conversations by packet address.
		{[]string{"nat-gateway-eni.log"}, tcp, []want{
			{"10.0.0.220", "203.0.113.5", "unknown", "answered", ""},
			{"10.0.1.5", "203.0.113.5", "unknown", "answered", ""},
		}, "no protocol field"},
		{[]string{"nat-gateway-instance-eni.log"}, tcp, []want{
			{"10.0.1.5", "203.0.113.5", "unknown", "answered", ""},
		}, "no protocol field"},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(strings.Join(c.files, "+"), func(t *testing.T) {
			var paths []string
			for _, f := range c.files {
				paths = append(paths, sample(t, f))
				covered[f] = true
			}
			got, st := conns(t, ReadConfig{}, c.opt, paths...)
			checkConns(t, got, c.want...)
			if c.note != "" && !hasNote(st, c.note) {
				t.Errorf("notes %q do not say %q", st.Notes, c.note)
			}
			if c.note == "" && len(st.Notes) > 0 {
				t.Errorf("unexpected notes %q", st.Notes)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(corpora(t), "aws-samples", "*.log"))
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("sample %s has no asserted verdict", filepath.Base(f))
		}
	}
}

func TestConnectionsCountsEachWay(t *testing.T) {
	got, _ := conns(t, ReadConfig{}, ConnOptions{}, sample(t, "v3-tcp-flags-1-syn-synack.log"), sample(t, "v3-tcp-flags-2-fin.log"))
	c := got[1]
	if c.ToServer.Bytes != 100701+23294588 || c.ToServer.Packets != 70+15774 || c.ToClient.Bytes != 632+63388 || c.ToClient.Packets != 12+1219 {
		t.Errorf("counts %+v / %+v", c.ToServer, c.ToClient)
	}
	if c.First != "2019-08-26T19:47:55Z" || c.Last != "2019-08-26T19:51:53Z" {
		t.Errorf("first %s last %s", c.First, c.Last)
	}
	if strings.Join(c.ToServer.TCPFlags, ",") != "SYN,FIN" || strings.Join(c.ToClient.TCPFlags, ",") != "SYN-ACK,FIN" {
		t.Errorf("flags %v / %v", c.ToServer.TCPFlags, c.ToClient.TCPFlags)
	}
}

func TestConnectionsNoDataSkipDataCounted(t *testing.T) {
	_, st := conns(t, ReadConfig{}, ConnOptions{Protocol: -1}, sample(t, "default-nodata.log"), sample(t, "default-skipdata.log"))
	if st.NoData != 1 || st.SkipData != 1 || st.Records != 2 {
		t.Fatalf("stats %+v", st)
	}
}
