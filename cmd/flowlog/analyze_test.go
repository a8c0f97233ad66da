package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

const corpusDir = "../../../shared/corpora"

func samplesPath(name string) string { return filepath.Join(corpusDir, "aws-samples", name) }

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// flowlogBinary builds the flowlog command once per test run.
func flowlogBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowlog-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "flowlog")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestAnalyzeIssueExamples(t *testing.T) {
	dir := t.TempDir()
	// A small tree of gzip'd logs, as AWS delivers them.
	for _, name := range []string{"v3-tcp-flags-1-syn-synack.log", "v3-tcp-flags-2-fin.log", "default-rejected-rdp.log", "default-sg-nacl-ping.log"} {
		data, err := os.ReadFile(samplesPath(name))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		if err := os.WriteFile(filepath.Join(dir, name+".gz"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := flowlog(t, nil, "analyze", "connections", dir, "--host", "10.0.0.62", "--port", "5001")
	if code != 0 {
		t.Fatalf("connections: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "interface\tproto\tclient\tserver\tinitiator_by\tverdict") ||
		!strings.Contains(lines[2], "\t52.213.180.42:43418\t10.0.0.62:5001\tflags\tclosed by FIN by both\tcomplete\t2019-08-26T19:47:55Z\t2019-08-26T19:51:53Z\t15844\t23395289\t1231\t64020") {
		t.Fatalf("connections output:\n%s", out)
	}

	code, out, stderr = flowlog(t, nil, "analyze", "rejected", dir, "--since", "2015-05-29T16:00:00Z")
	if code != 0 || out != "srcaddr\tdstaddr\tdstport\tprotocol\trecords\tpackets\tbytes\tshare\tfirst\tlast\n"+
		"172.31.16.139\t203.0.113.12\t0\t1\t1\t4\t336\t100.0%\t2015-05-29T16:31:34Z\t2015-05-29T16:32:22Z\n" {
		t.Fatalf("rejected: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr = flowlog(t, nil, "analyze", "top", "--by", "srcaddr,dstport", "--metric", "bytes", filepath.Join(dir, "*.log.gz"))
	if code != 0 || !strings.HasPrefix(out, "srcaddr\tdstport\trecords\tpackets\tbytes\tshare\tfirst\tlast\n52.213.180.42\t5001\t3\t15852\t23395857\t") {
		t.Fatalf("top: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr = flowlog(t, nil, "analyze", "filter", "--where", `action = "REJECT" and dstport in (22, 3389)`, "--output", "json", filepath.Join(dir, "default-rejected-rdp.log.gz"), filepath.Join(dir, "v3-tcp-flags-2-fin.log.gz"))
	if code != 0 || out != `{"version":2,"account-id":"123456789010","interface-id":"eni-1235b8ca123456789","srcaddr":"172.31.9.69","dstaddr":"172.31.9.12","srcport":49761,"dstport":3389,"protocol":6,"packets":20,"bytes":4249,"start":1418530010,"end":1418530070,"action":"REJECT","log-status":"OK"}`+"\n" {
		t.Fatalf("filter: exit %d\n%s%s", code, out, stderr)
	}

	// Nothing matching is not an error.
	code, out, _ = flowlog(t, nil, "analyze", "filter", "--where", "dstport = 1", dir)
	if code != 0 || out != "" {
		t.Fatalf("no match: exit %d, %q", code, out)
	}
	code, out, _ = flowlog(t, nil, "analyze", "connections", "--host", "192.0.2.99", dir)
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("no conversation: exit %d, %q", code, out)
	}
}

func TestAnalyzeSummaryReportsSkipDataProminently(t *testing.T) {
	code, out, stderr := flowlog(t, nil, "analyze", "summary", samplesPath("default-skipdata.log"), samplesPath("default-nodata.log"), samplesPath("default-accepted-ssh.log"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "!! EVIDENCE GAP: flow records were lost (SKIPDATA) in 1 window(s) on 1 interface(s).\n") ||
		!strings.Contains(out, "!!   eni-11111111aaaaaaaaa  2015-05-10T18:01:16Z – 2015-05-10T18:02:14Z  (1 window(s))") ||
		!strings.Contains(out, "records      3: 1 OK, 1 NODATA, 1 SKIPDATA") ||
		!strings.Contains(out, "no traffic (NODATA windows)\n  eni-1235b8ca123456789  2015-05-10T18:01:16Z – 2015-05-10T18:02:14Z  (1 window(s))") {
		t.Fatalf("summary:\n%s", out)
	}
	if !strings.Contains(stderr, "warning: 1 SKIPDATA records") {
		t.Errorf("stderr %q", stderr)
	}
	code, out, _ = flowlog(t, nil, "analyze", "summary", "-o", "json", samplesPath("default-skipdata.log"))
	var s struct {
		Gaps   bool `json:"evidence_gaps"`
		Skip   int  `json:"skipdata_records"`
		Window []struct {
			Interface, Start, End string
		} `json:"skipdata_windows"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || code != 0 || !s.Gaps || s.Skip != 1 || len(s.Window) != 1 || s.Window[0].Start != "2015-05-10T18:01:16Z" {
		t.Fatalf("summary json: %v %+v\n%s", err, s, out)
	}
}

func TestAnalyzeUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"analyze", "filter", "--where", "dstport = )", "x"}, "--where: column 11: expected a value after \"=\", found \")\"\n  dstport = )\n            ^"},
		{[]string{"analyze", "top", "--by", "srcadr", "x"}, `--by: unknown field "srcadr"; did you mean srcaddr?`},
		{[]string{"analyze", "top", "--metric", "flows", "x"}, `--metric "flows": want bytes, packets or records`},
		{[]string{"analyze", "top", "--since", "yesterday", "x"}, `--since: time "yesterday"`},
		{[]string{"analyze", "top", "--since", "1h", "--until", "2h", "x"}, "is before --since"},
		{[]string{"analyze", "connections", "--protocol", "tcpp", "x"}, `--protocol "tcpp"`},
		{[]string{"analyze", "connections", "--host", "10.0.0", "x"}, `--host: "10.0.0" is not an IP address or CIDR prefix`},
		{[]string{"analyze", "connections", "--port", "70000", "x"}, `--port "70000"`},
		{[]string{"analyze", "connections", "-o", "text", "x"}, `--output "text": want table, json or csv`},
		{[]string{"analyze", "filter", "-o", "table", "x"}, `--output "table": want text, json or csv`},
		{[]string{"analyze", "summary", "-o", "csv", "x"}, "summary prints table or json"},
		{[]string{"analyze", "top", "--format", "${nope}", "x"}, "--format"},
		{[]string{"analyze", "top", "--progress", "sometimes", "x"}, `--progress "sometimes"`},
		{[]string{"analyze", "top", "--no-such-flag"}, "unknown flag"},
	} {
		code, _, stderr := flowlog(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d with %q", c.args, code, stderr, exitUsage, c.msg)
		}
	}
}

func TestAnalyzeUnreadableInputs(t *testing.T) {
	// A missing file: nothing can be listed.
	code, _, stderr := flowlog(t, nil, "analyze", "top", "/nonexistent/flows.log")
	if code != exitError || !strings.Contains(stderr, "/nonexistent/flows.log") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
	// Not a flow log at all.
	code, _, stderr = flowlog(t, nil, "analyze", "summary", filepath.Join(corpusDir, "aws-logs", "beats-2.log"))
	if code != exitError || !strings.Contains(stderr, "no flow log records could be read") || !strings.Contains(stderr, "beats-2.log: line 1:") {
		t.Errorf("not a flow log: exit %d, %q", code, stderr)
	}
	// A corrupt gzip among good inputs: the others are reported, and the
	// exit status says the results are incomplete.
	bad := filepath.Join(t.TempDir(), "bad.log.gz")
	if err := os.WriteFile(bad, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := flowlog(t, nil, "analyze", "connections", bad, samplesPath("v3-tcp-flags-3-short-connection.log"))
	if code != exitError || !strings.Contains(out, "closed by FIN by both") || !strings.Contains(stderr, "cannot read "+bad) || !strings.Contains(stderr, "1 of 2 inputs could not be read") {
		t.Errorf("corrupt gzip: exit %d\n%s%s", code, out, stderr)
	}
	// Some bad lines: reported, not fatal.
	code, _, stderr = flowlog(t, strings.NewReader("version srcaddr\n2 10.0.0.1\n2 nope\n"), "analyze", "top")
	if code != exitOK || !strings.Contains(stderr, "skipped 1 unreadable lines:\n  standard input: line 3: field srcaddr") {
		t.Errorf("bad line: exit %d, %q", code, stderr)
	}
}

func TestAnalyzeFormatFlagAndStdin(t *testing.T) {
	in := "3 eni-1 10.0.0.9 10.0.0.5 50001 443 6 2\n3 eni-1 10.0.0.5 10.0.0.9 443 50001 6 18\n"
	code, out, stderr := flowlog(t, strings.NewReader(in), "analyze", "connections", "-o", "csv",
		"--format", "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags}", "-")
	if code != 0 || out != "interface,proto,client,server,initiator_by,verdict,handshake,first,last,packets_c2s,bytes_c2s,packets_s2c,bytes_s2c\n"+
		"eni-1,tcp,10.0.0.9:50001,10.0.0.5:443,flags,established,complete,-,-,-,-,-,-\n" {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

func TestAnalyzeProgressBar(t *testing.T) {
	code, _, stderr := flowlog(t, nil, "analyze", "top", "--progress", "always", samplesPath("v3-tcp-flags-1-syn-synack.log"))
	if code != 0 || !strings.Contains(stderr, "reading") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = flowlog(t, nil, "analyze", "top", samplesPath("v3-tcp-flags-1-syn-synack.log"))
	if code != 0 || stderr != "" {
		t.Fatalf("auto, not a terminal: exit %d, stderr %q", code, stderr)
	}
}

// TestAnalyzeInterruptPrintsPartialResults sends SIGINT to a real
// flowlog process reading a pipe that stays open: it prints the top
// talkers of what it read and exits 1.
func TestAnalyzeInterruptPrintsPartialResults(t *testing.T) {
	cmd := exec.Command(flowlogBinary(t), "analyze", "top", "--metric", "records", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var lines strings.Builder
	lines.WriteString("version srcaddr dstport packets bytes\n")
	for i := range 3000 {
		fmt.Fprintf(&lines, "2 10.0.%d.%d 443 1 60\n", i%3, i%7)
	}
	if _, err := io.WriteString(stdin, lines.String()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("flowlog did not stop on SIGINT")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError {
		t.Fatalf("exit %v, stderr %q", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "interrupted: the results above cover only what was read before") {
		t.Errorf("stderr %q", errOut.String())
	}
	rows := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(rows) != 11 || !strings.HasPrefix(rows[0], "srcaddr\trecords") {
		t.Fatalf("partial results:\n%s", out.String())
	}
	total := 0
	for _, r := range rows[1:] {
		n, _ := strconv.Atoi(strings.Split(r, "\t")[1])
		total += n
	}
	if total < 3000*10/21 { // the 10 largest of 21 groups hold at least 10/21 of the records
		t.Errorf("the top 10 hold %d records", total)
	}
}

// tcpFlagsFormat is the format the end-to-end test records captures in.
const tcpFlagsFormat = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"

// truthConv is a TCP conversation as derived from tshark's per-packet
// truth, independently of flowlog.
type truthConv struct {
	a, b            string // endpoints, a < b
	initiator       string // the endpoint that sent SYN without ACK first; "" if none
	flags           map[string]uint8
	packets, octets map[string]uint64
}

// tsharkConversations reads a capture's packets.tsv and pairs its TCP
// packets into conversations by their unordered address:port pairs.
func tsharkConversations(t *testing.T, path string) map[string]*truthConv {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	col := map[string]int{}
	for i, name := range strings.Split(sc.Text(), "\t") {
		col[name] = i
	}
	convs := map[string]*truthConv{}
	for sc.Scan() {
		v := strings.Split(sc.Text(), "\t")
		protos := strings.Split(v[col["frame.protocols"]], ":")
		i := slices.IndexFunc(protos, func(p string) bool { return p == "ip" || p == "ipv6" })
		if i < 0 || i+1 >= len(protos) || protos[i+1] != "tcp" {
			continue // only packets whose outer transport is TCP
		}
		src, dst := v[col["ip.src"]], v[col["ip.dst"]]
		if protos[i] == "ipv6" {
			src, dst = "["+v[col["ipv6.src"]]+"]", "["+v[col["ipv6.dst"]]+"]"
		}
		from, to := src+":"+v[col["tcp.srcport"]], dst+":"+v[col["tcp.dstport"]]
		raw, err := strconv.ParseUint(strings.TrimPrefix(v[col["tcp.flags"]], "0x"), 16, 16)
		if err != nil {
			t.Fatalf("tcp.flags %q", v[col["tcp.flags"]])
		}
		length, _ := strconv.ParseUint(v[col["ip.len"]], 10, 64)
		if protos[i] == "ipv6" {
			length, _ = strconv.ParseUint(v[col["ipv6.plen"]], 10, 64)
			length += 40
		}
		a, b := from, to
		if b < a {
			a, b = b, a
		}
		c := convs[a+" "+b]
		if c == nil {
			c = &truthConv{a: a, b: b, flags: map[string]uint8{}, packets: map[string]uint64{}, octets: map[string]uint64{}}
			convs[a+" "+b] = c
		}
		const syn, ack = 0x02, 0x10
		if raw&(syn|ack) == syn && c.initiator == "" {
			c.initiator = from
		}
		c.flags[from] |= flow.ReportedTCPFlags(uint8(raw))
		c.packets[from]++
		c.octets[from] += length
	}
	return convs
}

// flagWords names reported flags as connections --output json does.
func flagWords(f uint8) string {
	var w []string
	switch {
	case f&0x12 == 0x12:
		w = append(w, "SYN-ACK")
	case f&0x02 != 0:
		w = append(w, "SYN")
	}
	if f&0x01 != 0 {
		w = append(w, "FIN")
	}
	if f&0x04 != 0 {
		w = append(w, "RST")
	}
	return strings.Join(w, ",")
}

// truthVerdict is what a conversation's packets say happened, by the
// rules of connections (the side, where both did something, is left out).
func truthVerdict(c *truthConv, client, server string) string {
	cf, sf := c.flags[client], c.flags[server]
	switch {
	case sf&0x04 != 0 && cf&0x02 != 0 && sf&0x12 != 0x12 && sf&0x01 == 0 && cf&0x04 == 0:
		return "answered by RST"
	case cf&0x04 != 0 && sf&0x04 != 0:
		return "reset by "
	case cf&0x04 != 0:
		return "reset by client"
	case sf&0x04 != 0:
		return "reset by server"
	case cf&0x01 != 0 && sf&0x01 != 0:
		return "closed by FIN by "
	case cf&0x01 != 0:
		return "closed by FIN by client"
	case sf&0x01 != 0:
		return "closed by FIN by server"
	case cf&0x02 != 0 && sf&0x12 == 0x12:
		return "established"
	case cf&0x02 != 0 && c.packets[server] == 0:
		return "no answer to SYN"
	}
	return "still open"
}

// TestAnalyzeAgreesWithTshark records real captures with flowlog read in a
// format with tcp-flags, then checks that analyze connections finds the
// TCP conversations tshark sees in the same captures: their number, their
// endpoints, who initiated them, which of SYN, SYN-ACK, FIN and RST each
// side sent, and the packets and bytes each way.
func TestAnalyzeAgreesWithTshark(t *testing.T) {
	bin := flowlogBinary(t)
	for _, c := range []struct {
		capture string
		viaDest bool // through a --dest directory (else a pipe)
	}{
		// zeek-ssh spans three years: through a pipe (a directory would
		// hold an object for every 5 minutes of NODATA records).
		{"zeek-ssh.pcap", false},
		{"ndpi-tcp_scan.pcapng", true},
	} {
		t.Run(c.capture, func(t *testing.T) {
			capture := filepath.Join(corpusDir, "pcap", c.capture)
			var analyzed []byte
			var err error
			if c.viaDest {
				dest := t.TempDir()
				if out, err := exec.Command(bin, "read", "--format", tcpFlagsFormat, "--interval", "60", "--dest", dest, capture).CombinedOutput(); err != nil {
					t.Fatalf("read: %v\n%s", err, out)
				}
				analyzed, err = exec.Command(bin, "analyze", "connections", "-o", "json", dest).Output()
			} else {
				read := exec.Command(bin, "read", "--format", tcpFlagsFormat, capture)
				analyze := exec.Command(bin, "analyze", "connections", "-o", "json", "-")
				pipe, perr := read.StdoutPipe()
				if perr != nil {
					t.Fatal(perr)
				}
				analyze.Stdin = pipe
				if err := read.Start(); err != nil {
					t.Fatal(err)
				}
				analyzed, err = analyze.Output()
				if werr := read.Wait(); werr != nil {
					t.Fatalf("read: %v", werr)
				}
			}
			if err != nil {
				t.Fatalf("analyze: %v", err)
			}
			truth := tsharkConversations(t, capture+".packets.tsv")
			var got []struct {
				Client, Server, InitiatorBy, Verdict string `json:"-"`
				J                                    map[string]any
			}
			for _, line := range strings.Split(strings.TrimSpace(string(analyzed)), "\n") {
				var j map[string]any
				if err := json.Unmarshal([]byte(line), &j); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				got = append(got, struct {
					Client, Server, InitiatorBy, Verdict string `json:"-"`
					J                                    map[string]any
				}{j["client"].(string), j["server"].(string), j["initiator_by"].(string), j["verdict"].(string), j})
			}
			if len(got) != len(truth) {
				t.Fatalf("%d conversations, tshark sees %d", len(got), len(truth))
			}
			verdicts := map[string]int{}
			for _, g := range got {
				a, b := g.Client, g.Server
				if b < a {
					a, b = b, a
				}
				tc := truth[a+" "+b]
				if tc == nil {
					t.Errorf("conversation %s – %s is not in tshark's", g.Client, g.Server)
					continue
				}
				verdicts[g.Verdict]++
				if want := truthVerdict(tc, g.Client, g.Server); !strings.HasPrefix(g.Verdict, want) {
					t.Errorf("%s – %s: verdict %q, tshark's packets say %q", a, b, g.Verdict, want)
				}
				if tc.initiator != "" && (g.Client != tc.initiator || g.InitiatorBy != "flags") {
					t.Errorf("%s – %s: initiator %s by %s, tshark: %s sent the SYN", a, b, g.Client, g.InitiatorBy, tc.initiator)
				}
				for _, d := range []struct{ from, key string }{{g.Client, "client_to_server"}, {g.Server, "server_to_client"}} {
					dir := g.J[d.key].(map[string]any)
					var words []string
					for _, w := range dir["tcp_flags"].([]any) {
						words = append(words, w.(string))
					}
					if strings.Join(words, ",") != flagWords(tc.flags[d.from]) {
						t.Errorf("%s – %s: %s sent %v, tshark: %s", a, b, d.from, words, flagWords(tc.flags[d.from]))
					}
					if uint64(dir["packets"].(float64)) != tc.packets[d.from] || uint64(dir["bytes"].(float64)) != tc.octets[d.from] {
						t.Errorf("%s – %s: %s sent %v packets %v bytes, tshark: %d, %d", a, b, d.from, dir["packets"], dir["bytes"], tc.packets[d.from], tc.octets[d.from])
					}
				}
			}
			t.Logf("%d conversations: %v", len(got), verdicts)
		})
	}
}

// followProc is a `flowlog analyze connections --follow -o json` running
// as a real process.
type followProc struct {
	cmd    *exec.Cmd
	lines  chan string
	errOut bytes.Buffer
}

// startFollowProc starts `flowlog analyze connections --follow -o json`
// with args, in an environment of env and a HOME of its own.
func startFollowProc(t *testing.T, env []string, args ...string) *followProc {
	t.Helper()
	p := &followProc{lines: make(chan string, 10)}
	p.cmd = exec.Command(flowlogBinary(t), append([]string{"analyze", "connections", "--follow", "-o", "json"}, args...)...)
	p.cmd.Env = append([]string{"HOME=" + t.TempDir()}, env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

// conversation waits for the next conversation printed.
func (p *followProc) conversation(t *testing.T) map[string]any {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("output ended; stderr %q", p.errOut.String())
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("no conversation printed; stderr %q", p.errOut.String())
	}
	return nil
}

// next waits for the next conversation printed and checks its client and
// packets from the client (a record read twice doubles them).
func (p *followProc) next(t *testing.T, client string, packets float64) {
	t.Helper()
	c := p.conversation(t)
	c2s, _ := c["client_to_server"].(map[string]any)
	if c["client"] != client || c2s["packets"] != packets {
		t.Fatalf("conversation %v; want %s with %v packets from the client", c, client, packets)
	}
}

// interrupt sends SIGINT and checks that the conversation still open
// (client, packets from it) is printed, then nothing more, and that the
// process exits 0 within 3 s.
func (p *followProc) interrupt(t *testing.T, client string, packets float64) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	p.next(t, client, packets)
	if err := p.end(t); err != nil {
		t.Fatalf("exit: %v; stderr %q", err, p.errOut.String())
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("exited %v after SIGINT", took)
	}
}

// end checks that the output ends with nothing more, and returns the
// exit error.
func (p *followProc) end(t *testing.T) error {
	t.Helper()
	if l, ok := <-p.lines; ok {
		t.Fatalf("more output: %s", l)
	}
	return p.cmd.Wait()
}

// TestAnalyzeFollowDirectory runs connections --follow on a directory as
// a real process: conversations appear as their records close, new files
// are picked up, and Ctrl-C prints what is still open and exits 0.
func TestAnalyzeFollowDirectory(t *testing.T) {
	dir := t.TempDir()
	copyTo := func(name string) {
		data, err := os.ReadFile(samplesPath(name))
		if err != nil {
			t.Fatal(err)
		}
		// Written aside and renamed, as objects are published.
		tmp := filepath.Join(dir, ".tmp-"+name)
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	copyTo("v3-tcp-flags-1-syn-synack.log")
	copyTo("v3-tcp-flags-2-fin.log")
	p := startFollowProc(t, nil, "--poll", "50ms", "--idle", "48h", dir)
	if c := p.conversation(t); c["client"] != "52.213.180.42:43418" || c["verdict"] != "closed by FIN by both" {
		t.Fatalf("first: %v", c)
	}
	copyTo("v3-tcp-flags-3-short-connection.log")
	if c := p.conversation(t); c["client"] != "52.213.180.42:43638" || c["verdict"] != "closed by FIN by both" {
		t.Fatalf("second: %v", c)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if c := p.conversation(t); c["client"] != "52.213.180.42:43416" || c["verdict"] != "established" {
		t.Fatalf("after Ctrl-C: %v", c)
	}
	if err := p.end(t); err != nil {
		t.Fatalf("exit: %v; stderr %q", err, p.errOut.String())
	}
}
