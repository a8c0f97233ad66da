// Package corpus_test is the end-to-end correctness test of `flowlog read`
// against the real captures in ../shared/corpora/pcap: for every capture it
// computes the expected flow records independently from the tshark truth
// (*.packets.tsv) and compares them, record for record, with what the
// flowlog binary prints.
package corpus_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gapKind names a way the expectation departs from reading the tsv at face
// value.
type gapKind string

const (
	gapSimplePacketTime   gapKind = "spb-time"
	gapGlobalInterface    gapKind = "global-interface"
	gapIPv6ChainFromBytes gapKind = "ipv6-chain-bytes"
)

// tsvGaps is the one table of every place where the expected records are not
// the tsv taken literally. The test fails when an entry is not needed any
// more or when the expectation departs from the tsv anywhere not listed.
var tsvGaps = []struct {
	capture string
	kind    gapKind
	frames  []int
	reason  string
}{
	{"gopacket-le-test202.pcapng", gapSimplePacketTime, []int{5, 8},
		"simple packet blocks carry no timestamp and tshark prints none; rule 7 gives them the previous packet's (frames 4 and 6)"},
	{"gopacket-le-test202.pcapng", gapGlobalInterface, []int{5, 6, 8, 9, 11},
		"tshark's frame.interface_id counts IDBs per section; rule 8 counts across sections: section 2's IDB is interface 2, section 3's second IDB is interface 4"},
	{"tcpdump-ipv6-srh-tlv-hmac.pcap", gapIPv6ChainFromBytes, []int{1},
		"frame.protocols ends at the routing header, whose next header is 59 (no next header): protocol 59, read from the bytes"},
	{"tcpdump-ipv6-next-header-oobr-1.pcap", gapIPv6ChainFromBytes, []int{1},
		"hop-by-hop header captured, the routing header it names is not: the chain runs off, protocol 43 (rule 4), read from the bytes"},
	{"zeek-ip6-ext-trunc.pcap", gapIPv6ChainFromBytes, []int{1},
		"not one byte of the hop-by-hop header is captured: the chain runs off, protocol 0 (rule 4), read from the bytes"},
}

// knownExcludedTraffic are captures known (from their MANIFEST notes) to
// carry traffic rule 9 excludes, so that the no-exclusions runs cannot
// pass vacuously there.
var knownExcludedTraffic = []string{"tcpdump-dhcp-rfc4388.pcap", "gopacket-le-test202.pcapng", "ndpi-1kxun.pcap"}

const format = "${interface-id} ${pkt-srcaddr} ${pkt-dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${type} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${flow-direction}"

var (
	flowlogBin    string // built by TestMain
	buildErr      error
	inventoryPath string
	corpusDir     string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	corpusDir = filepath.Join(root, "..", "shared", "corpora", "pcap")
	tmp, err := os.MkdirTemp("", "flowlog-corpus-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	var inv strings.Builder
	inv.WriteString("interfaces:\n")
	for i := range 64 {
		fmt.Fprintf(&inv, "  - index: %d\n    interface-id: %s\n", i, interfaceID(i))
	}
	inventoryPath = filepath.Join(tmp, "inventory.yaml")
	if err := os.WriteFile(inventoryPath, []byte(inv.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	touchSources(root)
	flowlogBin = filepath.Join(tmp, "flowlog")
	build := exec.Command("go", "build", "-o", flowlogBin, "github.com/flowlog/flowlog/cmd/flowlog")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/flowlog: %w\n%s", err, out)
	}
	return m.Run()
}

// touchSources stats every Go source of the module from this process, so
// that `go test`'s result cache is invalidated when the binary's sources
// change (the build itself runs in a child process the cache cannot see).
func touchSources(root string) {
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if n := d.Name(); strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" {
			_, _ = os.Stat(path)
		}
		return nil
	})
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the test directory")
		}
		dir = parent
	}
}

// captureKind is what the MANIFEST says about a file: tshark is the
// independent judge of whether it can be read at all.
type captureKind int

const (
	readable   captureKind = iota
	unreadable             // flowlog must exit 1 naming the file
	cutShort               // flowlog must exit 3, or 0 with --allow-truncated
)

func readManifest(t *testing.T) map[string]captureKind {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]captureKind{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		f := strings.Split(line, "\t")
		notes := f[len(f)-1]
		switch {
		case strings.Contains(notes, "tshark could not read the file"):
			kinds[f[0]] = unreadable
		case strings.Contains(notes, "cut short"):
			kinds[f[0]] = cutShort
		default:
			kinds[f[0]] = readable
		}
	}
	return kinds
}

// prepared is a capture with its expected packets, computed once.
type prepared struct {
	name       string
	path       string
	walk       walkedCapture
	pkts       []packet
	interfaces int
}

func prepare(t *testing.T, name string) prepared {
	t.Helper()
	p := prepared{name: name, path: filepath.Join(corpusDir, name)}
	var err error
	p.walk, err = walkCapture(p.path)
	if err != nil {
		t.Fatalf("walk %s: %v", name, err)
	}
	p.interfaces = p.walk.interfaces
	tsv, err := os.ReadFile(p.path + ".packets.tsv")
	if err != nil {
		t.Fatal(err)
	}
	var gaps []gapUse
	p.pkts, gaps, err = expectPackets(tsv, p.walk)
	if err != nil {
		t.Fatalf("expect %s: %v", name, err)
	}
	checkGaps(t, name, gaps)
	return p
}

// checkGaps holds the expectation to the tsvGaps table, both ways.
func checkGaps(t *testing.T, capture string, used []gapUse) {
	t.Helper()
	listed := map[gapUse]bool{}
	for _, g := range tsvGaps {
		if g.capture != capture {
			continue
		}
		for _, f := range g.frames {
			listed[gapUse{f, g.kind}] = true
		}
	}
	seen := map[gapUse]bool{}
	for _, u := range used {
		seen[u] = true
		if !listed[u] {
			t.Errorf("%s frame %d: expectation departs from the tsv (%s) but tsvGaps does not list it", capture, u.frame, u.kind)
		}
	}
	for u := range listed {
		if !seen[u] {
			t.Errorf("%s frame %d: tsvGaps lists %s, but the expectation did not need it", capture, u.frame, u.kind)
		}
	}
}

func captureNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, pattern := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join(corpusDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatalf("no captures in %s", corpusDir)
	}
	return names
}

// TestCorpus runs `flowlog read` on every capture, with both intervals where
// the capture is short enough and with and without the default exclusions,
// and compares the output with the expectation.
func TestCorpus(t *testing.T) {
	kinds := readManifest(t)
	for _, name := range captureNames(t) {
		kind, ok := kinds[name]
		if !ok {
			t.Errorf("%s is not in MANIFEST.tsv", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if buildErr != nil {
				t.Fatal(buildErr)
			}
			switch kind {
			case unreadable:
				testUnreadable(t, name)
				return
			case cutShort:
				testCutShort(t, prepare(t, name))
				return
			}
			p := prepare(t, name)
			intervals := []int64{600}
			if span(p.pkts) < 86400 {
				intervals = append(intervals, 60)
			}
			for _, interval := range intervals {
				for _, exclusions := range []bool{true, false} {
					variant := fmt.Sprintf("interval=%d", interval)
					if !exclusions {
						variant += ",no-exclusions"
					}
					t.Run(variant, func(t *testing.T) {
						t.Parallel()
						var extra []string
						if !exclusions {
							extra = append(extra, "--no-exclusions")
						}
						res := runFlowlog(t, p.path, interval, extra...)
						if res.exit != 0 {
							t.Fatalf("exit code %d, want 0; stderr:\n%s", res.exit, res.stderr)
						}
						if strings.TrimSpace(res.stderr) == "" {
							t.Errorf("stderr is empty, want a summary line")
						}
						compare(t, p, interval, exclusions, res)
					})
				}
			}
			if !slices.ContainsFunc(p.pkts, excluded) {
				if slices.Contains(knownExcludedTraffic, name) {
					t.Errorf("%s has DHCP, but the expectation excludes nothing", name)
				}
				return
			}
			// Rule 9 must matter on the captures that have excluded traffic:
			// the no-exclusions expectation has records the default lacks.
			with, without := aggregate(p.pkts, p.interfaces, 600, true), aggregate(p.pkts, p.interfaces, 600, false)
			if countPackets(with.ok) >= countPackets(without.ok) {
				t.Errorf("excluded packets present but the expectations do not differ")
			}
		})
	}
}

func countPackets(recs []okRecord) (n uint64) {
	for _, r := range recs {
		n += r.packets
	}
	return n
}

func span(pkts []packet) int64 {
	if len(pkts) == 0 {
		return 0
	}
	lo, hi := pkts[0].second, pkts[0].second
	for _, p := range pkts {
		lo, hi = min(lo, p.second), max(hi, p.second)
	}
	return hi - lo
}

func testUnreadable(t *testing.T, name string) {
	res := runFlowlog(t, filepath.Join(corpusDir, name), 600)
	if res.exit != 1 {
		t.Errorf("exit code %d, want 1", res.exit)
	}
	if !strings.Contains(res.stderr, name) {
		t.Errorf("stderr does not name %s:\n%s", name, res.stderr)
	}
	if len(res.ok) != 0 || res.nodataCount() != 0 {
		t.Errorf("printed %d records for an unreadable file", len(res.ok)+res.nodataCount())
	}
}

func testCutShort(t *testing.T, p prepared) {
	if !p.walk.truncated {
		t.Fatalf("MANIFEST says %s is cut short, the walker read it to the end", p.name)
	}
	res := runFlowlog(t, p.path, 600)
	if res.exit != 3 {
		t.Errorf("without --allow-truncated: exit code %d, want 3; stderr:\n%s", res.exit, res.stderr)
	}
	if strings.TrimSpace(res.stderr) == "" {
		t.Errorf("without --allow-truncated: stderr is empty")
	}
	compare(t, p, 600, true, res)

	res = runFlowlog(t, p.path, 600, "--allow-truncated")
	if res.exit != 0 {
		t.Errorf("with --allow-truncated: exit code %d, want 0; stderr:\n%s", res.exit, res.stderr)
	}
	// The cut record starts at walk.cutOffset; its data 16 bytes later.
	offsets := regexp.MustCompile(fmt.Sprintf(`\b(%d|%d)\b`, p.walk.cutOffset, p.walk.cutOffset+16))
	if !offsets.MatchString(res.stderr) {
		t.Errorf("with --allow-truncated: stderr does not name the offset of the cut (%d):\n%s", p.walk.cutOffset, res.stderr)
	}
	compare(t, p, 600, true, res)
}

// runResult is one flowlog run, its output already parsed.
type runResult struct {
	exit   int
	stderr string
	ok     []okRecord
	nodata [][]int64 // NODATA starts per interface
	// problems are lines that break the format or the order rule; they are
	// found while streaming and reported by compare.
	problems []string
}

func (r runResult) nodataCount() (n int) {
	for _, s := range r.nodata {
		n += len(s)
	}
	return n
}

func runFlowlog(t *testing.T, capture string, interval int64, extra ...string) runResult {
	t.Helper()
	// The largest capture takes a second or two; a run this long hangs.
	const timeout = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"read", "--interval", strconv.FormatInt(interval, 10),
		"--inventory", inventoryPath, "--format", format}, extra...)
	args = append(args, capture)
	cmd := exec.CommandContext(ctx, flowlogBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	res := parseOutput(stdout, interval)
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	res.stderr = stderr.String()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("flowlog %s: killed after %v (hangs?); stderr:\n%s", strings.Join(args, " "), timeout, res.stderr)
	case errors.As(err, &exitErr):
		res.exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run flowlog: %v", err)
	}
	return res
}

const wantHeader = "interface-id pkt-srcaddr pkt-dstaddr srcport dstport protocol tcp-flags type packets bytes start end action log-status flow-direction"

// orderKey is rule 13's sort order, with the window first.
type orderKey struct {
	window, start int64
	iface         int
	ok            bool // NODATA sorts before OK records
	rest          flowKey
}

func compareOrder(a, b orderKey) int {
	if c := cmpInt(a.window, b.window); c != 0 {
		return c
	}
	if c := cmpInt(a.start, b.start); c != 0 {
		return c
	}
	if c := cmpInt(a.iface, b.iface); c != 0 {
		return c
	}
	if a.ok != b.ok {
		if a.ok {
			return 1
		}
		return -1
	}
	return compareKeys(a.rest, b.rest)
}

// parseOutput reads flowlog's stdout as it streams: the header, then each
// record, checking the record's shape and the output order as it goes.
func parseOutput(r io.Reader, interval int64) runResult {
	var res runResult
	problem := func(format string, args ...any) {
		if len(res.problems) < 20 {
			res.problems = append(res.problems, fmt.Sprintf(format, args...))
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var prev orderKey
	for n := 0; sc.Scan(); n++ {
		line := sc.Text()
		if n == 0 {
			if line != wantHeader {
				problem("header %q, want %q", line, wantHeader)
			}
			continue
		}
		key, rec, nodata, err := parseLine(line, interval)
		if err != nil {
			problem("line %d %q: %v", n+1, line, err)
			continue
		}
		if n > 1 && compareOrder(prev, key) >= 0 {
			problem("line %d %q is out of order (rule 13) after the line before", n+1, line)
		}
		prev = key
		if nodata {
			for len(res.nodata) <= key.iface {
				res.nodata = append(res.nodata, nil)
			}
			res.nodata[key.iface] = append(res.nodata[key.iface], key.start)
			continue
		}
		res.ok = append(res.ok, rec)
	}
	if err := sc.Err(); err != nil {
		problem("read stdout: %v", err)
	}
	return res
}

func parseLine(line string, interval int64) (key orderKey, rec okRecord, nodata bool, err error) {
	f := strings.Split(line, " ")
	if len(f) != 15 {
		return key, rec, false, fmt.Errorf("%d fields, want 15", len(f))
	}
	idText, ok := strings.CutPrefix(f[0], "eni-")
	iface, aerr := strconv.Atoi(idText)
	if !ok || aerr != nil || interfaceID(iface) != f[0] || iface >= 64 {
		return key, rec, false, fmt.Errorf("interface-id %q is not one of the inventory's", f[0])
	}
	nums := func(fields ...string) []int64 {
		out := make([]int64, len(fields))
		for i, s := range fields {
			v, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil && err == nil {
				err = fmt.Errorf("field %q: %w", s, perr)
			}
			out[i] = v
		}
		return out
	}
	startEnd := nums(f[10], f[11])
	if err != nil {
		return key, rec, false, err
	}
	start, end := startEnd[0], startEnd[1]
	key = orderKey{window: floorDiv(start, interval) * interval, start: start, iface: iface}

	if f[13] == "NODATA" {
		if dashes := strings.Join(append(f[1:10:10], f[12], f[14]), " "); dashes != "- - - - - - - - - - -" {
			return key, rec, true, fmt.Errorf("NODATA record with fields set")
		}
		if start%interval != 0 || end != start+interval {
			return key, rec, true, fmt.Errorf("NODATA record is not one whole window")
		}
		return key, rec, true, nil
	}
	if f[13] != "OK" || f[12] != "ACCEPT" {
		return key, rec, false, fmt.Errorf("log-status %s action %s, want OK ACCEPT", f[13], f[12])
	}
	src, err1 := netip.ParseAddr(f[1])
	dst, err2 := netip.ParseAddr(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return key, rec, false, err
	}
	v := nums(f[3], f[4], f[5], f[6], f[8], f[9])
	if err != nil {
		return key, rec, false, err
	}
	wantType := map[bool]string{false: "IPv4", true: "IPv6"}[src.Is6()]
	if f[7] != wantType || src.Is6() != dst.Is6() {
		return key, rec, false, fmt.Errorf("type %s for %s -> %s", f[7], src, dst)
	}
	if start > end || floorDiv(end, interval)*interval != key.window {
		return key, rec, false, fmt.Errorf("start %d and end %d not in one window", start, end)
	}
	rec = okRecord{
		flowKey:  flowKey{key.window, iface, src, dst, uint16(v[0]), uint16(v[1]), uint8(v[2])},
		tcpFlags: uint8(v[3]), packets: uint64(v[4]), bytes: uint64(v[5]),
		start: start, end: end, dir: f[14], line: line,
	}
	key.ok, key.rest = true, rec.flowKey
	return key, rec, false, nil
}

// compare reports every difference between a run and the expectation, the
// first 20 in detail.
func compare(t *testing.T, p prepared, interval int64, exclusions bool, res runResult) {
	t.Helper()
	want := aggregate(p.pkts, p.interfaces, interval, exclusions)
	var diffs []string
	for _, pr := range res.problems {
		diffs = append(diffs, "output: "+pr)
	}

	got := slices.Clone(res.ok)
	slices.SortFunc(got, func(a, b okRecord) int { return compareKeys(a.flowKey, b.flowKey) })
	i, j := 0, 0
	for i < len(want.ok) || j < len(got) {
		c := 0
		switch {
		case i == len(want.ok):
			c = 1
		case j == len(got):
			c = -1
		default:
			c = compareKeys(want.ok[i].flowKey, got[j].flowKey)
		}
		switch {
		case c < 0:
			diffs = append(diffs, fmt.Sprintf("missing:    %s   (frames %v)", want.ok[i].render(), want.ok[i].frames))
			i++
		case c > 0:
			diffs = append(diffs, fmt.Sprintf("unexpected: %s", got[j].line))
			j++
		default:
			if w, g := want.ok[i].render(), got[j].line; w != g {
				diffs = append(diffs, fmt.Sprintf("differs:    want %s   (frames %v)\n                got  %s", w, want.ok[i].frames, g))
			}
			i++
			j++
		}
	}

	// NODATA: the windows of each interface from first to last without a
	// recorded packet, in ascending order (the order check already made
	// the printed ones unique).
	for iface := 0; iface < max(p.interfaces, len(res.nodata)); iface++ {
		var gotStarts []int64
		if iface < len(res.nodata) {
			gotStarts = slices.Clone(res.nodata[iface])
			slices.Sort(gotStarts)
		}
		if iface >= p.interfaces {
			diffs = append(diffs, fmt.Sprintf("unexpected: %d NODATA records for %s, the capture has %d interfaces", len(gotStarts), interfaceID(iface), p.interfaces))
			continue
		}
		k := 0
		if want.any {
			for w := want.first; w <= want.last; w += interval {
				for k < len(gotStarts) && gotStarts[k] < w {
					diffs = append(diffs, "unexpected: "+nodataLine(iface, gotStarts[k], interval))
					k++
				}
				present := k < len(gotStarts) && gotStarts[k] == w
				switch {
				case present && want.busy[iface][w]:
					diffs = append(diffs, "unexpected: "+nodataLine(iface, w, interval)+"   (the interface has records in this window)")
				case !present && !want.busy[iface][w]:
					diffs = append(diffs, "missing:    "+nodataLine(iface, w, interval))
				}
				if present {
					k++
				}
			}
		}
		for ; k < len(gotStarts); k++ {
			diffs = append(diffs, "unexpected: "+nodataLine(iface, gotStarts[k], interval)+"   (outside the capture's windows)")
		}
	}

	if len(diffs) > 0 {
		shown := diffs[:min(len(diffs), 20)]
		t.Errorf("%s, interval %d, exclusions %v: %d differences (want %d OK records, got %d; got %d NODATA), first %d:\n%s",
			p.name, interval, exclusions, len(diffs), len(want.ok), len(got), res.nodataCount(), len(shown), strings.Join(shown, "\n"))
	}
}

func nodataLine(iface int, start, interval int64) string {
	return fmt.Sprintf("%s - - - - - - - - - %d %d - NODATA -", interfaceID(iface), start, start+interval)
}
