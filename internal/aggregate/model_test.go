package aggregate

import (
	"bufio"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// checkTotals checks that every packet given to the table is in exactly one
// OK record or counted as skipped.
func checkTotals(t testing.TB, got *output, tab *Table) {
	t.Helper()
	var packets uint64
	for _, it := range got.items {
		for _, r := range it.recs {
			packets += r.Counts.Packets
		}
	}
	s := tab.Stats()
	if packets+s.SkippedPackets != s.Packets {
		t.Fatalf("records hold %d packets and %d were skipped, of %d added", packets, s.SkippedPackets, s.Packets)
	}
	if s.Active != 0 {
		t.Fatalf("%d flows held after Flush", s.Active)
	}
	ok, noData, skipData, batches := got.count()
	if uint64(ok) != s.Records || uint64(noData) != s.NoDataRecords || uint64(skipData) != s.SkipDataRecords || uint64(batches) != s.Windows {
		t.Fatalf("stats %+v, output has %d OK %d NODATA %d SKIPDATA records in %d batches", s, ok, noData, skipData, batches)
	}
}

// fuzzAddrs are the addresses fuzz inputs pick from.
var fuzzAddrs = [16]netip.Addr{
	{}, v4a, v4b, v4c, v6a, v6b, v6m,
	netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("::"),
	netip.MustParseAddr("::1"), netip.MustParseAddr("ffff::1"), netip.MustParseAddr("10.0.0.3"),
	netip.MustParseAddr("172.16.0.1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("1.1.1.1"),
}

var (
	fuzzLateness = [8]int64{0, NoLateness, 1, 5, 59, 61, 600, 3000}
	fuzzMaxFlows = [16]int{0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987}
	fuzzProtos   = [4]uint8{6, 17, 1, 58}
	fuzzFlags    = [4]uint8{0, 0x02, 0x12, 0x11}
	fuzzScale    = [4]int64{1, 7, 60, 600}
	fuzzPorts    = [16]uint16{0, 1, 22, 53, 80, 123, 443, 1024, 3306, 8080, 33000, 40000, 50000, 60000, 65534, 65535}
)

const fuzzRecord = 5

// decodeFuzz turns bytes into a config and events: one config byte, then
// five bytes per event (see encodeFuzz).
func decodeFuzz(data []byte) (Config, []event) {
	if len(data) == 0 {
		return Config{Interval: 60}, nil
	}
	cfg := Config{Interval: 60, Lateness: fuzzLateness[data[0]>>1&7], MaxFlows: fuzzMaxFlows[data[0]>>4]}
	if data[0]&1 != 0 {
		cfg.Interval = 600
	}
	ts := int64(1_000_000_000)
	var events []event
	for b := data[1:]; len(b) >= fuzzRecord; b = b[fuzzRecord:] {
		var ev event
		ev.key.Interface = uint32(b[0] & 3)
		if b[0]&0x0c == 0x0c {
			ev.addIface = true
			events = append(events, ev)
			continue
		}
		ev.key.Src = fuzzAddrs[b[0]>>4]
		ev.key.Dst = fuzzAddrs[b[1]&15]
		ev.key.SrcPort = fuzzPorts[b[1]>>4]
		ev.key.DstPort = fuzzPorts[(b[1]>>4+b[0])&15]
		ev.key.Protocol = fuzzProtos[b[2]&3]
		ev.key.Action = flow.Action(b[2] >> 2 & 3)
		ev.dir = flow.Direction(b[2] >> 4 & 3)
		ev.flags = fuzzFlags[b[2]>>6]
		ts += int64(int8(b[3])) * fuzzScale[b[4]&3]
		ev.ts = ts
		ev.length = uint32(b[4]>>2) * 40
		events = append(events, ev)
	}
	return cfg, events
}

// encodeFuzz is the inverse of decodeFuzz for packets whose fields are in
// the fuzz tables; others are mapped onto them by hashing.
func encodeFuzz(cfgByte byte, pkts []packet) []byte {
	out := []byte{cfgByte}
	prev := int64(1_000_000_000)
	if len(pkts) > 0 {
		prev = pkts[0].ts
	}
	pick := func(a netip.Addr) byte {
		for i, f := range fuzzAddrs {
			if f == a {
				return byte(i)
			}
		}
		h := fnv.New32a()
		b, _ := a.MarshalBinary()
		h.Write(b)
		return byte(h.Sum32() % 16)
	}
	for _, p := range pkts {
		d := p.ts - prev
		scale := byte(0)
		if d > 127 || d < -128 {
			scale = 2
			d /= 60
		}
		d = max(-128, min(127, d))
		prev += d * fuzzScale[scale]
		proto := byte(0)
		for i, pr := range fuzzProtos {
			if pr == p.key.Protocol {
				proto = byte(i)
			}
		}
		out = append(out,
			pick(p.key.Src)<<4|byte(p.key.Interface&3),
			pick(p.key.Dst)|byte(p.key.SrcPort%16)<<4,
			proto|byte(p.key.Action&3)<<2|byte(p.dir&3)<<4|(p.flags&3)<<6,
			byte(int8(d)),
			scale|byte(min(p.length/40, 63))<<2)
	}
	return out
}

// TestRandomStreams compares the table with the reference on random
// streams: disorder within and beyond the lateness, gaps, tiny capacities,
// interfaces added along the way.
func TestRandomStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for iter := range 400 {
		data := make([]byte, 1+fuzzRecord*(50+r.IntN(600)))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		// Mostly small time steps, so windows fill up and close in order.
		for i := 1 + 3; i < len(data); i += fuzzRecord {
			if r.IntN(10) < 8 {
				data[i] = byte(r.IntN(4))
				data[i+1] &^= 3
			}
		}
		cfg, events := decodeFuzz(data)
		got, want, tab := run(t, cfg, events)
		diffOutputs(t, got, want)
		checkTotals(t, got, tab)
		if t.Failed() {
			t.Fatalf("iteration %d", iter)
		}
	}
}

// corpusDir finds ../shared/corpora beside the module root.
func corpusDir(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "corpora", "pcap")
	if _, err := os.Stat(c); err != nil {
		t.Skipf("corpora not found: %v", err)
	}
	return c
}

// readTruth reads a capture's tshark truth as a packet stream: one packet
// per IP frame, keyed by the outer IP header and, for TCP/UDP, the ports.
// It is an approximation of the decode rules, good enough to drive the
// table with real timing, addresses and interfaces.
func readTruth(t testing.TB, path string) []packet {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	col := map[string]int{}
	var out []packet
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(col) == 0 {
			for i, name := range fields {
				col[name] = i
			}
			continue
		}
		get := func(name string) string { return fields[col[name]] }
		num := func(name string) uint64 {
			v := get(name)
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil && v != "" {
				t.Fatalf("%s: %s %q: %v", path, name, v, err)
			}
			return n
		}
		var p packet
		sec, _, _ := strings.Cut(get("frame.time_epoch"), ".")
		ts, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			continue // frames without a timestamp
		}
		p.ts = ts
		p.key.Interface = uint32(num("frame.interface_id"))
		src, dst := get("ip.src"), get("ip.dst")
		if src != "" {
			p.key.Protocol = uint8(num("ip.proto"))
			p.length = uint32(num("ip.len"))
		} else if src, dst = get("ipv6.src"), get("ipv6.dst"); src != "" {
			p.key.Protocol = uint8(num("ipv6.nxt"))
			p.length = uint32(num("ipv6.plen")) + 40
		} else {
			continue
		}
		p.key.Src, _ = netip.ParseAddr(src)
		p.key.Dst, _ = netip.ParseAddr(dst)
		p.key.Action = flow.ActionAccept
		switch p.key.Protocol {
		case 6:
			p.key.SrcPort, p.key.DstPort = uint16(num("tcp.srcport")), uint16(num("tcp.dstport"))
			p.flags = uint8(num("tcp.flags"))
		case 17:
			p.key.SrcPort, p.key.DstPort = uint16(num("udp.srcport")), uint16(num("udp.dstport"))
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCorpora runs every capture's packets through the table and the
// reference, and checks the NODATA count against the per-window truth:
// every (window, interface) from the first to the last window without a
// packet gets exactly one.
func TestCorpora(t *testing.T) {
	dir := corpusDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.packets.tsv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus truth files in %s: %v", dir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".packets.tsv")
		pkts := readTruth(t, file)
		if len(pkts) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ifaces := map[uint32]bool{}
			for _, p := range pkts {
				ifaces[p.key.Interface] = true
			}
			for _, cfg := range []Config{{Interval: 60}, {Interval: 600}, {Interval: 60, MaxFlows: 7}} {
				var events []event
				for i := range ifaces {
					events = append(events, iface(i))
				}
				for _, p := range pkts {
					events = append(events, event{packet: p})
				}
				got, want, tab := run(t, cfg, events)
				diffOutputs(t, got, want)
				checkTotals(t, got, tab)
				if cfg.MaxFlows != 0 {
					continue
				}
				busy := map[[2]int64]bool{}
				first, last := int64(1<<62), int64(-1<<62)
				for _, p := range pkts {
					w := floorDiv(p.ts, cfg.Interval) * cfg.Interval
					busy[[2]int64{w, int64(p.key.Interface)}] = true
					first, last = min(first, w), max(last, w)
				}
				windows := (last-first)/cfg.Interval + 1
				wantNoData := uint64(windows*int64(len(ifaces))) - uint64(len(busy))
				if s := tab.Stats(); s.NoDataRecords != wantNoData || s.LatePackets != 0 {
					t.Errorf("interval %d: %d NODATA records, %d late packets; want %d and 0",
						cfg.Interval, s.NoDataRecords, s.LatePackets, wantNoData)
				}
			}
		})
	}
}

// FuzzTable compares the table with the reference on arbitrary streams.
func FuzzTable(f *testing.F) {
	dir := corpusDir(f)
	for i, name := range []string{"ndpi-tcp_scan.pcapng", "zeek-pcapng-multi-interface.pcapng", "tcpdump-babel.pcap",
		"ndpi-mongodb.pcap", "gopacket-le-test202.pcapng", "zeek-icmp6.pcap"} {
		pkts := readTruth(f, filepath.Join(dir, name+".packets.tsv"))
		if len(pkts) > 300 {
			pkts = pkts[:300]
		}
		f.Add(encodeFuzz(byte(i*37), pkts))
	}
	f.Add([]byte{0x10, 0x0c, 0, 0, 0, 0, 0x10, 0x21, 0x02, 10, 1, 0x10, 0x21, 0x02, 0xf0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, events := decodeFuzz(data)
		got, want, tab := run(t, cfg, events)
		diffOutputs(t, got, want)
		checkTotals(t, got, tab)
	})
}
