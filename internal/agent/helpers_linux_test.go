package agent

import (
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent/netlab"
)

// testFormat has every field the live tests check.
const testFormat = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${flow-direction} ${tcp-flags} ${pkt-srcaddr} ${pkt-dstaddr} ${subnet-id} ${vpc-id} ${instance-id} ${type}"

var (
	pA   = netip.MustParsePrefix("10.88.0.1/24")
	pB   = netip.MustParsePrefix("10.88.0.2/24")
	pA6  = netip.MustParsePrefix("2001:db8:88::1/64")
	pB6  = netip.MustParsePrefix("2001:db8:88::2/64")
	host = "0123456789abcdef0123456789abcdef"
)

// sources are the capture sources every live test runs with.
var sources = []string{"afpacket", "ebpf"}

// lab is a two-namespace network: va (in nsA) and vb (in nsB) joined by a
// veth pair with IPv4 and IPv6 addresses.
type lab struct {
	*netlab.Lab
	nsA, nsB string
	a, b     netlab.End
	root     string // temporary directory: machine id, destination, spool
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{Lab: netlab.New(t), root: t.TempDir()}
	l.nsA, l.nsB = l.Netns("a"), l.Netns("b")
	l.a, l.b = l.Veth(
		netlab.End{Netns: l.nsA, Name: "va", Addrs: []netip.Prefix{pA, pA6}},
		netlab.End{Netns: l.nsB, Name: "vb", Addrs: []netip.Prefix{pB, pB6}},
	)
	if err := os.MkdirAll(filepath.Join(l.root, "host/etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.root, "host/etc/machine-id"), []byte(host+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// config is an agent configuration capturing in the lab's namespaces
// (only links named v*), with a spool in the lab's directory and a flow
// log per entry of logs (each with its destination directory set).
func (l *lab) config(source string, logs ...FlowLog) Config {
	c := Config{
		AccountID:      "123456789012",
		Region:         "eu-test-1",
		Source:         source,
		Netns:          Netns{l.nsA, l.nsB},
		Interfaces:     Interfaces{Include: []string{"v*"}},
		MetricsAddress: "127.0.0.1:0",
		Spool:          Spool{Dir: filepath.Join(l.root, "spool")},
		Log:            Log{Level: "debug"},
		AFPacket:       afpacketConfigForTests(),
	}
	for i, fl := range logs {
		if fl.Destination == "" {
			fl.Destination = filepath.Join(l.root, "dest", string(rune('a'+i)))
		}
		if fl.Format == "" {
			fl.Format = testFormat
		}
		if fl.Interval == 0 {
			fl.Interval = 60
		}
		c.FlowLogs = append(c.FlowLogs, fl)
	}
	return c
}

// start starts an agent for cfg with the lab's machine id and waits until
// every link named in want is attached.
func (l *lab) start(t *testing.T, cfg Config, want ...string) *Agent {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, Deps{Logger: log, HostRoot: filepath.Join(l.root, "host")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		if strings.Contains(err.Error(), "not permitted") || strings.Contains(err.Error(), "not supported") {
			skipUnlessCI(t, "source "+cfg.Source+": "+err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	waitAttached(t, a, 3*time.Second, want...)
	return a
}

func skipUnlessCI(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
}

// waitAttached waits until the links named in want (netns/name or name)
// are attached.
func waitAttached(t *testing.T, a *Agent, within time.Duration, want ...string) []Interface {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ifs := a.Interfaces()
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name, i.Netns+"/"+i.Name)
		}
		missing := false
		for _, w := range want {
			if !slices.Contains(names, w) {
				missing = true
			}
		}
		if !missing {
			return ifs
		}
		if time.Now().After(deadline) {
			t.Fatalf("attached %v, want %v within %s", names, want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// readRecords reads every record of every object under dir.
func readRecords(t *testing.T, dir string) []flow.Record {
	t.Helper()
	var recs []flow.Record
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log.gz") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		rd := flow.NewReader(zr, flow.ReaderOptions{})
		for {
			var r flow.Record
			err := rd.Next(&r)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return recs
}

// byInterface groups OK records by interface id and flow, summing them
// over windows.
type flowTotals struct {
	netlab.Totals
	Action    flow.Action
	Direction flow.Direction
	Start     int64
	End       int64
	Records   int
	SrcAddr   netip.Addr
	DstAddr   netip.Addr
	PktSrc    netip.Addr
	PktDst    netip.Addr
}

func sumRecords(recs []flow.Record) map[string]map[netlab.Flow]*flowTotals {
	out := map[string]map[netlab.Flow]*flowTotals{}
	for _, r := range recs {
		if r.LogStatus != flow.LogStatusOK {
			continue
		}
		m := out[r.InterfaceID]
		if m == nil {
			m = map[netlab.Flow]*flowTotals{}
			out[r.InterfaceID] = m
		}
		k := netlab.Flow{Src: r.PktSrcAddr, Dst: r.PktDstAddr, SrcPort: r.SrcPort, DstPort: r.DstPort, Protocol: r.Protocol}
		if r.Action == flow.ActionReject {
			k.Protocol |= 0 // same key; REJECT totals are kept apart below
		}
		ft := m[k]
		if ft == nil {
			ft = &flowTotals{Action: r.Action, Direction: r.FlowDirection, Start: r.Start, End: r.End,
				SrcAddr: r.SrcAddr, DstAddr: r.DstAddr, PktSrc: r.PktSrcAddr, PktDst: r.PktDstAddr}
			m[k] = ft
		}
		ft.Packets += r.Packets
		ft.Bytes += r.Bytes
		ft.TCPFlags |= r.TCPFlags
		ft.Start = min(ft.Start, r.Start)
		ft.End = max(ft.End, r.End)
		ft.Records++
	}
	return out
}

// statusRecords returns the NODATA and SKIPDATA records of an interface.
func statusRecords(recs []flow.Record, eni string, status flow.LogStatus) []flow.Record {
	var out []flow.Record
	for _, r := range recs {
		if r.InterfaceID == eni && r.LogStatus == status {
			out = append(out, r)
		}
	}
	return out
}

func eniOf(t *testing.T, ifs []Interface, netns, name string) string {
	t.Helper()
	for _, i := range ifs {
		if i.Netns == netns && i.Name == name {
			return i.Resolved.InterfaceID
		}
	}
	t.Fatalf("%s/%s not attached: %v", netns, name, ifs)
	return ""
}
