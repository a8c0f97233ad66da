package corpus_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExpectationTotals checks the expectation against the plainest possible
// reading of each tsv, without flowlog: every frame whose first IP header
// has both addresses counts once, with ip.len or ipv6.plen+40 bytes. The
// records aggregated without exclusions must hold exactly those totals, per
// address family.
func TestExpectationTotals(t *testing.T) {
	kinds := readManifest(t)
	for _, name := range captureNames(t) {
		if kinds[name] == unreadable {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := prepare(t, name)
			tsv, err := os.ReadFile(filepath.Join(corpusDir, name+".packets.tsv"))
			if err != nil {
				t.Fatal(err)
			}
			var wantPkts, wantBytes [2]uint64 // IPv4, IPv6
			lines := bytes.Split(bytes.TrimRight(tsv, "\n"), []byte("\n"))
			col := map[string]int{}
			for i, h := range strings.Split(string(lines[0]), "\t") {
				col[h] = i
			}
			for _, l := range lines[1 : 1+min(len(lines)-1, len(p.walk.frames))] {
				f := strings.Split(string(l), "\t")
				family := ""
				for _, proto := range strings.Split(f[col["frame.protocols"]], ":") {
					if proto == "ip" || proto == "ipv6" {
						family = proto
						break
					}
				}
				switch {
				case family == "ip" && f[col["ip.src"]] != "":
					n, _ := strconv.ParseUint(f[col["ip.len"]], 10, 64)
					wantPkts[0]++
					wantBytes[0] += n
				case family == "ipv6" && f[col["ipv6.src"]] != "":
					n, _ := strconv.ParseUint(f[col["ipv6.plen"]], 10, 64)
					wantPkts[1]++
					wantBytes[1] += n + 40
				}
			}
			for _, interval := range []int64{60, 600} {
				var gotPkts, gotBytes [2]uint64
				e := aggregate(p.pkts, p.interfaces, interval, false)
				for _, r := range e.ok {
					fam := 0
					if r.src.Is6() {
						fam = 1
					}
					gotPkts[fam] += r.packets
					gotBytes[fam] += r.bytes
					if r.start < r.window || r.end >= r.window+interval || r.start > r.end {
						t.Errorf("record %s outside its window %d", r.render(), r.window)
					}
				}
				if gotPkts != wantPkts || gotBytes != wantBytes {
					t.Errorf("interval %d: records hold %v packets %v bytes, tsv has %v packets %v bytes",
						interval, gotPkts, gotBytes, wantPkts, wantBytes)
				}
			}
		})
	}
}

// TestExpectationRules pins rule outcomes on captures where the answer is
// known from reading the capture by hand, so a slip in the expectation
// code cannot pass silently.
func TestExpectationRules(t *testing.T) {
	type want struct {
		frame          int
		iface          int
		second         int64
		proto          uint8
		srcPort        uint16
		dstPort        uint16
		bytes          uint64
		tcpFlags       uint8
		dir            string
		excludedByRule bool
	}
	cases := []struct {
		capture string
		want    []want
	}{
		// IPv4 fragments: the later fragment takes the ports of the first.
		{"zeek-fragmented-1.pcap", []want{
			{frame: 1, second: 950988235, proto: 17, srcPort: 123, dstPort: 137, bytes: 38, dir: "-"},
			{frame: 2, second: 950988235, proto: 17, srcPort: 123, dstPort: 137, bytes: 136, dir: "-"},
			{frame: 3, second: 950988235, proto: 17, srcPort: 123, dstPort: 137, bytes: 324, dir: "-"},
		}},
		{"zeek-fragmented-syn.pcap", []want{
			{frame: 1, second: 1756907829, proto: 6, srcPort: 12345, dstPort: 80, bytes: 44, tcpFlags: 2, dir: "-"},
			{frame: 2, second: 1756907829, proto: 6, srcPort: 12345, dstPort: 80, bytes: 36, dir: "-"},
		}},
		// Pcapng sections: SPB time from the packet before, IDBs numbered
		// across sections, DHCP excluded, custom blocks (frames 1, 7, 10) not packets.
		{"gopacket-le-test202.pcapng", []want{
			{frame: 2, iface: 0, second: 1340954905, proto: 17, srcPort: 68, dstPort: 67, bytes: 300, dir: "-", excludedByRule: true},
			{frame: 3, iface: 0, second: 1340954905, proto: 17, srcPort: 67, dstPort: 68, bytes: 328, dir: "-", excludedByRule: true},
			{frame: 4, iface: 1, second: 1340954905, proto: 17, srcPort: 17500, dstPort: 17500, bytes: 164, dir: "-"},
			{frame: 5, iface: 2, second: 1340954905, proto: 17, srcPort: 68, dstPort: 67, bytes: 300, dir: "-", excludedByRule: true},
			{frame: 6, iface: 2, second: 1340954905, proto: 17, srcPort: 67, dstPort: 68, bytes: 328, dir: "-", excludedByRule: true},
			{frame: 8, iface: 2, second: 1340954905, proto: 17, srcPort: 68, dstPort: 67, bytes: 300, dir: "-", excludedByRule: true},
			{frame: 9, iface: 2, second: 1340954905, proto: 17, srcPort: 67, dstPort: 68, bytes: 328, dir: "-", excludedByRule: true},
			{frame: 11, iface: 4, second: 1340954905, proto: 17, srcPort: 17500, dstPort: 17500, bytes: 164, dir: "-"},
		}},
		// IPv6 chains: no next header after SRH; a chain that runs off.
		{"tcpdump-ipv6-srh-tlv-hmac.pcap", []want{{frame: 1, second: 1634894886, proto: 59, bytes: 88, dir: "-"}}},
		{"tcpdump-ipv6-next-header-oobr-1.pcap", []want{{frame: 1, second: 808464432, proto: 43, bytes: 12376, dir: "-"}}},
		{"zeek-ip6-ext-trunc.pcap", []want{{frame: 1, second: 1334094648, proto: 0, bytes: 60, dir: "-"}}},
		// Many extension headers, all fragment headers atomic: UDP with ports.
		{"libpcap-ipv6_ext_headers.pcap", []want{{frame: 1, second: 1744385687, proto: 17, srcPort: 12345, dstPort: 54321, bytes: 858, dir: "-"}}},
		// IPv4 header with options exactly captured; header not captured.
		{"tcpdump-ip_ts_opts_asan.pcap", []want{{frame: 1, second: 1174372174, proto: 1, bytes: 65319, dir: "-"}}},
		{"zeek-ip4-trunc.pcap", nil},
		{"zeek-ipv4-truncated-broken-header.pcap", nil},
	}
	for _, c := range cases {
		p := prepare(t, c.capture)
		if c.want == nil {
			if len(p.pkts) != 0 {
				t.Errorf("%s: %d packets recorded, want none", c.capture, len(p.pkts))
			}
			continue
		}
		if len(p.pkts) != len(c.want) {
			t.Errorf("%s: %d packets, want %d", c.capture, len(p.pkts), len(c.want))
			continue
		}
		for i, w := range c.want {
			g := p.pkts[i]
			got := want{g.frame, g.iface, g.second, g.proto, g.srcPort, g.dstPort, g.bytes, g.tcpFlags, g.dir, excluded(g)}
			if got != w {
				t.Errorf("%s: packet %d = %+v, want %+v", c.capture, i, got, w)
			}
		}
	}

	// The walker on files read by hand: a pcap 2.0 with swapped lengths cut
	// inside the second record header; three pcapng sections with five IDBs
	// (MANIFEST's "15 IDBs" does not match the blocks in the file).
	if w, err := walkCapture(filepath.Join(corpusDir, "ndpi-fuzz-2021-10-13.pcap")); err != nil ||
		len(w.frames) != 1 || len(w.frames[0].data) != 197 || !w.truncated || w.cutOffset != 237 || w.frames[0].linkType != 0 {
		t.Errorf("walk ndpi-fuzz-2021-10-13.pcap: %d frames, truncated %v at %d, err %v; want 1 frame of 197 bytes, link type 0, cut at 237",
			len(w.frames), w.truncated, w.cutOffset, err)
	}
	if w, err := walkCapture(filepath.Join(corpusDir, "gopacket-le-test202.pcapng")); err != nil || w.interfaces != 5 || len(w.frames) != 11 {
		t.Errorf("walk gopacket-le-test202.pcapng: %d interfaces, %d frames, err %v; want 5 and 11", w.interfaces, len(w.frames), err)
	}

	// SLL directions straight from the file: each frame's packet type.
	p := prepare(t, "zeek-irc-starttls.pcap")
	dirs := map[string]int{}
	for _, pk := range p.pkts {
		dirs[pk.dir]++
	}
	if dirs["ingress"] == 0 || dirs["egress"] == 0 || dirs["-"] != 0 {
		t.Errorf("zeek-irc-starttls.pcap: directions %v, want both ingress and egress and no unknown", dirs)
	}
	if got := reportedFlags(0xC2); got != 0x02 {
		t.Errorf("reportedFlags(CWR|ECE|SYN) = %#x, want SYN", got)
	}
	if got := reportedFlags(0x12); got != 0x12 {
		t.Errorf("reportedFlags(SYN|ACK) = %#x, want SYN|ACK", got)
	}
	if got := reportedFlags(0x18); got != 0 {
		t.Errorf("reportedFlags(PSH|ACK) = %#x, want 0", got)
	}
	if got := reportedFlags(0x11); got != 0x01 {
		t.Errorf("reportedFlags(FIN|ACK) = %#x, want FIN", got)
	}
}
