package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	"github.com/flowlog/flowlog/internal/capture/pcapfile"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/policy"
	"github.com/flowlog/flowlog/internal/sink"
)

// udpFrame builds an Ethernet/IPv4/UDP frame with payload bytes of data.
func udpFrame(src, dst string, sport, dport uint16, payload int) []byte {
	ip := make([]byte, 20+8+payload)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8], ip[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], dport)
	binary.BigEndian.PutUint16(ip[24:], uint16(8+payload))
	eth := make([]byte, 14, 14+len(ip))
	eth[12], eth[13] = 0x08, 0x00
	return append(eth, ip...)
}

type pkt struct {
	sec   int64
	frame []byte
}

func capture(t *testing.T, pkts []pkt) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapfile.NewWriter(&buf, 1, 65535, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.sec*1e9, p.frame, uint32(len(p.frame))); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func testConfig(t *testing.T, interval int64) ReadConfig {
	t.Helper()
	inv, err := inventory.New(nil, inventory.Overrides{InterfaceID: "eni-00000000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := flow.ParseFormat("${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${packets} ${bytes} ${start} ${end} ${log-status}")
	if err != nil {
		t.Fatal(err)
	}
	return ReadConfig{
		Format:      f,
		Aggregate:   aggregate.Config{Interval: interval},
		TrafficType: TrafficAll,
		Exclusions:  policy.DefaultExclusions(),
		Inventory:   inv,
	}
}

func readToText(t *testing.T, data []byte, cfg ReadConfig) (string, ReadStats) {
	t.Helper()
	var out bytes.Buffer
	st, err := Read(context.Background(), bytes.NewReader(data), "test.pcap", cfg, NewStreamSink(&out, cfg.Format, false, false))
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), st
}

// t0 is the start of a 600 s window: 2018-06-20T16:20:00Z.
const t0 = 1529511600

func TestNoDataBetweenFirstAndLastPacket(t *testing.T) {
	a := udpFrame("10.0.0.1", "10.0.0.2", 1000, 2000, 10)
	out, st := readToText(t, capture(t, []pkt{{t0 + 5, a}, {t0 + 1800 + 7, a}}), testConfig(t, 600))
	want := strings.Join([]string{
		"eni-00000000000000000 10.0.0.1 10.0.0.2 1000 2000 1 38 1529511605 1529511605 OK",
		"eni-00000000000000000 - - - - - - 1529512200 1529512800 NODATA",
		"eni-00000000000000000 - - - - - - 1529512800 1529513400 NODATA",
		"eni-00000000000000000 10.0.0.1 10.0.0.2 1000 2000 1 38 1529513407 1529513407 OK",
	}, "\n") + "\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if st.Records != 4 || st.NoData != 2 || st.Recorded != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestExclusionsAndNonIP(t *testing.T) {
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	pkts := []pkt{
		{t0, udpFrame("10.0.0.1", "169.254.169.254", 1000, 80, 0)},
		{t0, udpFrame("0.0.0.0", "255.255.255.255", 68, 67, 300)},
		{t0, arp},
		{t0, udpFrame("10.0.0.1", "10.0.0.2", 1000, 53, 20)},
	}
	cfg := testConfig(t, 60)
	out, st := readToText(t, capture(t, pkts), cfg)
	if st.Excluded != 2 || st.NotIP != 1 || st.Recorded != 1 || strings.Count(out, "\n") != 1 {
		t.Errorf("default exclusions: stats %+v, output %q", st, out)
	}
	cfg.Exclusions = policy.NoExclusions()
	out, st = readToText(t, capture(t, pkts), cfg)
	if st.Excluded != 0 || st.Recorded != 3 || strings.Count(out, "\n") != 3 {
		t.Errorf("no exclusions: stats %+v, output %q", st, out)
	}
}

// A packet that arrives long after its window was closed is still
// counted, in an extra record of its window, and reaches the directory
// destination in an extra object of its period.
func TestLatePacketIsNotLost(t *testing.T) {
	a := udpFrame("10.0.0.1", "10.0.0.2", 1000, 2000, 10)
	b := udpFrame("10.0.0.3", "10.0.0.4", 1000, 2000, 10)
	data := capture(t, []pkt{{t0 + 1, a}, {t0 + 700, b}, {t0 + 2, a}})
	cfg := testConfig(t, 60)
	out, _ := readToText(t, data, cfg)
	var packets int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(line, " OK") {
			packets += int(line[len("eni-00000000000000000 10.0.0.1 10.0.0.2 1000 2000 ")] - '0')
		}
	}
	if packets != 3 {
		t.Errorf("records count %d packets, want 3:\n%s", packets, out)
	}

	root := t.TempDir()
	dir, err := sink.NewDir(sink.DirConfig{
		Root:   root,
		Layout: sink.Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-1234abcd"},
		Format: cfg.Format,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Read(context.Background(), bytes.NewReader(data), "test.pcap", cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst := dir.Stats(); dst.Records != int64(st.Records) || dst.LostRecords != 0 {
		t.Errorf("directory holds %d records (lost %d), read produced %d", dst.Records, dst.LostRecords, st.Records)
	}
	var late int
	for _, key := range dir.Published() {
		if strings.Contains(key, "_20180620T1620Z_") {
			late++
		}
		if _, err := os.Stat(filepath.Join(root, key)); err != nil {
			t.Error(err)
		}
	}
	if late != 2 {
		t.Errorf("objects of the 16:20 period: %d, want 2 (the window's and the late record's): %v", late, dir.Published())
	}
}

// pcapngMicro builds a little-endian pcapng with one Ethernet interface
// (microsecond timestamps) and one enhanced packet block per packet; unlike
// pcap it can hold timestamps past 2106.
func pcapngMicro(pkts []pkt) []byte {
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b := le.AppendUint32(nil, typ)
		b = le.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		return le.AppendUint32(b, uint32(12+len(body)))
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	out := block(0x0a0d0d0a, shb)
	idb := le.AppendUint16(nil, 1) // Ethernet
	idb = le.AppendUint16(idb, 0)
	idb = le.AppendUint32(idb, 65535)
	out = append(out, block(1, idb)...)
	for _, p := range pkts {
		us := uint64(p.sec) * 1e6
		epb := le.AppendUint32(nil, 0)
		epb = le.AppendUint32(epb, uint32(us>>32))
		epb = le.AppendUint32(epb, uint32(us))
		epb = le.AppendUint32(epb, uint32(len(p.frame)))
		epb = le.AppendUint32(epb, uint32(len(p.frame)))
		out = append(out, block(6, append(epb, p.frame...))...)
	}
	return out
}

func TestImplausibleTimestampsAreNotRecorded(t *testing.T) {
	a := udpFrame("10.0.0.1", "10.0.0.2", 1000, 2000, 10)
	// A corrupt timestamp in 2500 would otherwise make ~26 M empty windows
	// of NODATA records between the two packets.
	out, st := readToText(t, pcapngMicro([]pkt{{t0, a}, {16725225600, a}}), testConfig(t, 60))
	if st.BadTime != 1 || st.Recorded != 1 || strings.Count(out, "\n") != 1 {
		t.Errorf("stats %+v, output %q", st, out)
	}
	// The same capture with a sane second timestamp records both.
	_, st = readToText(t, pcapngMicro([]pkt{{t0, a}, {t0 + 30, a}}), testConfig(t, 60))
	if st.BadTime != 0 || st.Recorded != 2 {
		t.Errorf("stats %+v", st)
	}
}

// windowSink keeps records like an object destination (not a stream: no
// NODATA runs in one call), calls onAdvance at every window boundary, and
// says whether Close was called.
type windowSink struct {
	recs      []flow.Record
	advances  int
	onAdvance func(n int)
	closed    bool
}

func (s *windowSink) Write(recs []flow.Record) error { s.recs = append(s.recs, recs...); return nil }
func (s *windowSink) Advance(int64) error {
	s.advances++
	s.onAdvance(s.advances)
	return nil
}
func (s *windowSink) Close() error { s.closed = true; return nil }

// TestInterruptInNoDataWindows: two packets a year apart make 52,560
// NODATA windows for a destination that takes them window by window. An
// interrupt among them ends the read at the next window (it used to go on
// writing every one: the context was looked at between packets only), the
// sink still gets Close to publish what it holds, and the error names the
// first window not written.
func TestInterruptInNoDataWindows(t *testing.T) {
	a := udpFrame("10.0.0.1", "10.0.0.2", 1000, 2000, 10)
	const year = 365 * 24 * 3600
	data := capture(t, []pkt{{t0 + 5, a}, {t0 + year + 5, a}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &windowSink{onAdvance: func(n int) {
		if n == 10 {
			cancel()
		}
	}}
	st, err := Read(ctx, bytes.NewReader(data), "test.pcap", testConfig(t, 600), sink)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// Window 0 (the first packet), then NODATA windows 1..9; the 10th
	// boundary cancelled, so the window from t0+10*600 on is not written.
	const want = "read test.pcap: context canceled: records were written for the windows before 2018-06-20T18:00:00Z, none after"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if len(sink.recs) != 10 || sink.recs[9].End != t0+10*600 || st.NoData != 9 {
		t.Errorf("%d records (last ends %d), %d NODATA: want 10 ending at %d, 9 NODATA", len(sink.recs), sink.recs[len(sink.recs)-1].End, st.NoData, t0+10*600)
	}
	if !sink.closed {
		t.Error("the sink was not closed: what it holds would not be published")
	}
}
