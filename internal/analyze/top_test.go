package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

func runTop(t *testing.T, rc ReadConfig, opt TopOptions, mode string, rejected bool, paths ...string) (string, Stats) {
	t.Helper()
	var out bytes.Buffer
	f := Top
	if rejected {
		f = Rejected
	}
	st, err := f(context.Background(), listInputs(t, paths...), rc, opt, Output{W: &out, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), st
}

func TestTopGroupsBucketsAndShares(t *testing.T) {
	dir := t.TempDir()
	data := "version interface-id srcaddr dstaddr dstport protocol packets bytes start end action log-status\n" +
		"2 eni-a 10.0.0.1 10.0.0.9 443 6 10 1000 3600 3660 ACCEPT OK\n" +
		"2 eni-a 10.0.0.1 10.0.0.9 443 6 5 500 3700 3760 ACCEPT OK\n" +
		"2 eni-a 10.0.0.2 10.0.0.9 22 6 1 100 3610 3620 REJECT OK\n" +
		"2 eni-b 2001:db8::1 2001:db8::9 443 6 4 4000 7300 7310 ACCEPT OK\n" +
		"2 eni-b 10.0.0.1 10.0.0.9 443 6 1 10 7200 7210 ACCEPT OK\n" +
		"2 eni-c - - - - - - 7200 7259 - NODATA\n"
	p := filepath.Join(dir, "a.log")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := runTop(t, ReadConfig{}, TopOptions{}, ModeTable, false, p)
	want := "srcaddr\trecords\tpackets\tbytes\tshare\tfirst\tlast\n" +
		"2001:db8::1\t1\t4\t4000\t71.3%\t1970-01-01T02:01:40Z\t1970-01-01T02:01:50Z\n" +
		"10.0.0.1\t3\t16\t1510\t26.9%\t1970-01-01T01:00:00Z\t1970-01-01T02:00:10Z\n" +
		"10.0.0.2\t1\t1\t100\t1.8%\t1970-01-01T01:00:10Z\t1970-01-01T01:00:20Z\n"
	if out != want {
		t.Errorf("top:\n%s\nwant:\n%s", out, want)
	}
	out, _ = runTop(t, ReadConfig{}, TopOptions{By: []flow.FieldID{flow.FieldInterfaceID, flow.FieldDstPort}, Metric: MetricRecords, Bucket: time.Hour}, ModeCSV, false, p)
	want = "bucket,interface_id,dstport,records,packets,bytes,share,first,last\n" +
		"1970-01-01T01:00:00Z,eni-a,443,2,15,1500,66.7%,1970-01-01T01:00:00Z,1970-01-01T01:02:40Z\n" +
		"1970-01-01T01:00:00Z,eni-a,22,1,1,100,33.3%,1970-01-01T01:00:10Z,1970-01-01T01:00:20Z\n" +
		"1970-01-01T02:00:00Z,eni-b,443,2,5,4010,100.0%,1970-01-01T02:00:00Z,1970-01-01T02:01:50Z\n"
	if out != want {
		t.Errorf("top by interface, port, hourly:\n%s\nwant:\n%s", out, want)
	}
	out, st := runTop(t, ReadConfig{}, TopOptions{Limit: 1, Metric: MetricPackets}, ModeJSON, false, p)
	if out != `{"srcaddr":"10.0.0.1","records":3,"packets":16,"bytes":1510,"share":0.761905,"first":"1970-01-01T01:00:00Z","last":"1970-01-01T02:00:10Z"}`+"\n" ||
		!hasNote(st, "2 more groups not shown") {
		t.Errorf("top json limit 1: %s %q", out, st.Notes)
	}
	out, _ = runTop(t, ReadConfig{}, TopOptions{}, ModeTable, true, p)
	if out != "srcaddr\tdstaddr\tdstport\tprotocol\trecords\tpackets\tbytes\tshare\tfirst\tlast\n10.0.0.2\t10.0.0.9\t22\t6\t1\t1\t100\t100.0%\t1970-01-01T01:00:10Z\t1970-01-01T01:00:20Z\n" {
		t.Errorf("rejected:\n%s", out)
	}
}

// TestTopWorkersAgree splits the synthetic records into many files and
// groups them with one worker and with several: same answer.
func TestTopWorkersAgree(t *testing.T) {
	paths := writeSplit(t, t.TempDir(), synthRecords, 6, rand.New(rand.NewPCG(7, 8)))
	opt := TopOptions{By: []flow.FieldID{flow.FieldInterfaceID, flow.FieldSrcAddr, flow.FieldTCPFlags, flow.FieldAction}, Metric: MetricPackets}
	one, _ := runTop(t, ReadConfig{Workers: 1}, opt, ModeJSON, false, paths...)
	many, _ := runTop(t, ReadConfig{Workers: 4}, opt, ModeJSON, false, paths...)
	if one != many || strings.Count(one, "\n") != 16 {
		t.Fatalf("one worker:\n%s\nfour:\n%s", one, many)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(one, "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["interface-id"] != "eni-a" || first["srcaddr"] != "10.0.0.9" || first["tcp-flags"] != 0.0 || first["action"] != "ACCEPT" || first["packets"] != 20.0 {
		t.Errorf("first group %v", first)
	}
}

// TestDecodeKeyRendersLikeAppend holds group keys to Format.Append for
// every field, with values and without.
func TestDecodeKeyRendersLikeAppend(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	strs := []string{"eni-0123", "x y", "ünïcode", "a\tb"}
	for range 2000 {
		var r flow.Record
		for id := flow.FieldID(0); int(id) < flow.NumFields; id++ {
			if rng.IntN(3) == 0 {
				continue
			}
			r.Present = r.Present.With(id)
		}
		r.Version, r.SrcPort, r.DstPort, r.Protocol = uint8(rng.Uint32()), uint16(rng.Uint32()), uint16(rng.Uint32()), uint8(rng.Uint32())
		r.Packets, r.Bytes, r.Start, r.End = rng.Uint64(), rng.Uint64(), int64(rng.Uint64()), -int64(rng.Uint32())
		r.TCPFlags, r.TrafficPath = uint8(rng.Uint32()), uint8(rng.Uint32())
		r.SrcAddr = netip.AddrFrom4([4]byte{1, 2, 3, byte(rng.Uint32())})
		r.DstAddr = netip.MustParseAddr("2001:db8::7")
		r.PktSrcAddr = netip.MustParseAddr("::ffff:10.1.2.3")
		r.PktDstAddr = netip.MustParseAddr("::")
		r.Action, r.LogStatus, r.FlowDirection = flow.Action(rng.IntN(3)), flow.LogStatus(rng.IntN(4)), flow.Direction(rng.IntN(3))
		r.AccountID, r.InterfaceID, r.Type, r.RejectReason = strs[rng.IntN(4)], strs[rng.IntN(4)], strs[rng.IntN(4)], strs[rng.IntN(4)]
		r.ECS[3] = strs[rng.IntN(4)]
		var by []flow.FieldID
		var key []byte
		for id := flow.FieldID(0); int(id) < flow.NumFields; id++ {
			by = append(by, id)
			key = appendKey(key, &r, id)
		}
		got := decodeKey(key, by, false)
		for i, id := range by {
			f, _ := flow.ParseFormat("${" + id.String() + "}")
			if want := string(f.Append(nil, &r)); got[i] != want {
				t.Fatalf("%s: decoded %q, Append %q", id, got[i], want)
			}
		}
	}
}
