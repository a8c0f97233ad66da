package corpus_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// This file computes, from a capture's tshark truth (*.packets.tsv) and the
// few facts capture_test.go reads from the file itself, the packets flowlog
// must record and the records it must print (the "Offline semantics" of the
// lead's brief, rules 1-13). It shares no code with flowlog on purpose.

// packet is one recorded packet (rules 1-7, 10), before exclusions.
type packet struct {
	frame    int
	iface    int
	second   int64
	src, dst netip.Addr
	srcPort  uint16
	dstPort  uint16
	proto    uint8
	bytes    uint64
	tcpFlags uint8
	dir      string // ingress, egress or "-"
}

// gapUse notes a frame whose expectation does not come from the tsv alone;
// every one must be listed in tsvGaps (corpus_test.go).
type gapUse struct {
	frame int
	kind  gapKind
}

// reportedFlags is rule 6 in our own words: FIN, SYN and RST as they are,
// ACK only on a packet that also carries SYN, nothing else.
func reportedFlags(raw uint8) uint8 {
	f := raw & 0x07
	if raw&0x02 != 0 {
		f |= raw & 0x10
	}
	return f
}

// linkLayers are the frame.protocols entries that may precede the outer IP
// header: the encapsulations rule 2 unwraps, as tshark names them.
var linkLayers = map[string]bool{
	"eth": true, "ethertype": true, "vlan": true, "llc": true, "sll": true, "null": true,
	"raw": true, "ppp": true, "pppoes": true, "mpls": true,
}

// ipv6Extensions are the extension headers rule 4 walks past, as tshark names them.
var ipv6Extensions = map[string]uint8{
	"ipv6.hopopts": 0, "ipv6.routing": 43, "ipv6.fraghdr": 44, "ipv6.dstopts": 60, "ah": 51,
}

// upperLayers maps tshark's names of upper-layer protocols to their numbers,
// for the ones the corpus has after an IPv6 header.
var upperLayers = map[string]uint8{"tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}

type fragKey struct {
	src, dst netip.Addr
	proto    uint8
	id       string // ip.id or ipv6.fraghdr.ident as tshark prints it
}

type tsvTable struct {
	col  map[string]int
	rows [][]string
}

func parseTSV(b []byte) (tsvTable, error) {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	t := tsvTable{col: map[string]int{}}
	for i, name := range strings.Split(string(lines[0]), "\t") {
		t.col[name] = i
	}
	for _, l := range lines[1:] {
		f := strings.Split(string(l), "\t")
		if len(f) != len(t.col) {
			return t, fmt.Errorf("row %q: %d columns, header has %d", l, len(f), len(t.col))
		}
		t.rows = append(t.rows, f)
	}
	return t, nil
}

// expectPackets turns the tsv rows of one capture into the packets flowlog
// must record, in file order.
func expectPackets(tsv []byte, walk walkedCapture) ([]packet, []gapUse, error) {
	t, err := parseTSV(tsv)
	if err != nil {
		return nil, nil, err
	}
	get := func(r []string, name string) string { return r[t.col[name]] }
	if !walk.truncated && len(walk.frames) != len(t.rows) {
		return nil, nil, fmt.Errorf("walker found %d frames, tsv has %d", len(walk.frames), len(t.rows))
	}

	var pkts []packet
	var gaps []gapUse
	firsts := map[fragKey][2]uint16{} // ports of first fragments seen so far
	var lastSecond int64              // of the previous packet, for simple packet blocks (rule 7)
	for _, r := range t.rows {
		frameNo, _ := strconv.Atoi(get(r, "frame.number"))
		if frameNo-1 >= len(walk.frames) {
			// Beyond the cut of a truncated file; flowlog never sees it.
			if strings.Contains(":"+get(r, "frame.protocols")+":", ":ip") {
				return nil, nil, fmt.Errorf("frame %d: IP frame after the cut", frameNo)
			}
			continue
		}
		wf := walk.frames[frameNo-1]
		if !wf.isPacket {
			if get(r, "frame.interface_id") != "" || get(r, "frame.protocols") != "data" {
				return nil, nil, fmt.Errorf("frame %d: custom block decoded as %q", frameNo, get(r, "frame.protocols"))
			}
			continue
		}
		if id := get(r, "frame.interface_id"); id != "" && id != strconv.Itoa(wf.sectionIface) {
			return nil, nil, fmt.Errorf("frame %d: tsv interface %s, walker %d", frameNo, id, wf.sectionIface)
		}
		if wf.iface != wf.sectionIface {
			gaps = append(gaps, gapUse{frameNo, gapGlobalInterface})
		}

		second := lastSecond
		if ts := get(r, "frame.time_epoch"); ts != "" {
			second, err = epochSecond(ts)
			if err != nil {
				return nil, nil, fmt.Errorf("frame %d: %w", frameNo, err)
			}
		} else {
			gaps = append(gaps, gapUse{frameNo, gapSimplePacketTime})
		}
		lastSecond = second

		p, ok, gap, err := decodeRow(r, get, wf, firsts)
		if err != nil {
			return nil, nil, fmt.Errorf("frame %d (%s): %w", frameNo, get(r, "frame.protocols"), err)
		}
		if gap != "" {
			gaps = append(gaps, gapUse{frameNo, gap})
		}
		if !ok {
			continue
		}
		p.frame, p.iface, p.second, p.dir = frameNo, wf.iface, second, direction(wf)
		pkts = append(pkts, p)
	}
	return pkts, gaps, nil
}

// epochSecond is floor(frame.time_epoch). tshark prints seconds, a dot and
// the sub-second count with at least 9 digits; a nanosecond field of 1e9 or
// more (a fuzzed file) prints as 10 digits and carries into the seconds.
func epochSecond(ts string) (int64, error) {
	secText, fracText, _ := strings.Cut(ts, ".")
	sec, err := strconv.ParseInt(secText, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse time %q: %w", ts, err)
	}
	if len(fracText) > 9 {
		frac, err := strconv.ParseInt(fracText, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse time %q: %w", ts, err)
		}
		sec += frac / 1e9
	}
	return sec, nil
}

// direction is rule 10 as far as the capture tells it: the corpus has no
// pcapng epb_flags, and the inventory we pass names no addresses, so only
// the SLL packet type gives a direction.
func direction(wf walkedFrame) string {
	var pktType int = -1
	switch {
	case wf.linkType == 113 && len(wf.data) >= 2:
		pktType = int(wf.data[0])<<8 | int(wf.data[1])
	case wf.linkType == 276 && len(wf.data) >= 11:
		pktType = int(wf.data[10])
	}
	switch {
	case pktType == 4:
		return "egress"
	case pktType >= 0 && pktType <= 3:
		return "ingress"
	}
	return "-"
}

// decodeRow reads one tsv row: ok is false when flowlog must not record the
// frame (not IP, IP header not captured).
func decodeRow(r []string, get func([]string, string) string, wf walkedFrame, firsts map[fragKey][2]uint16) (p packet, ok bool, gap gapKind, err error) {
	protos := strings.Split(get(r, "frame.protocols"), ":")
	outer := slices.IndexFunc(protos, func(s string) bool { return s == "ip" || s == "ipv6" })
	if outer < 0 {
		return p, false, "", nil
	}
	for _, l := range protos[:outer] {
		if !linkLayers[l] {
			return p, false, "", fmt.Errorf("IP inside %q, which rule 2 does not unwrap", l)
		}
	}
	num := func(name string) int64 {
		v, perr := strconv.ParseInt(get(r, name), 0, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("field %s: %w", name, perr)
		}
		return v
	}

	var fragID string
	var firstFrag, laterFrag bool
	if protos[outer] == "ip" {
		// tshark leaves ip.src/ip.dst out when the header is not usable
		// (cut short, IHL beyond the captured bytes or beyond the length).
		if get(r, "ip.src") == "" || get(r, "ip.dst") == "" {
			return p, false, "", nil
		}
		if outer == len(protos)-1 {
			return p, false, "", fmt.Errorf("IPv4 header decoded but nothing after it; cannot tell whether its options were captured")
		}
		p.src, p.dst = netip.MustParseAddr(get(r, "ip.src")), netip.MustParseAddr(get(r, "ip.dst"))
		p.proto = uint8(num("ip.proto"))
		p.bytes = uint64(num("ip.len"))
		fragID = get(r, "ip.id")
		laterFrag = num("ip.frag_offset") > 0
		firstFrag = !laterFrag && get(r, "ip.flags.mf") == "1"
	} else {
		if get(r, "ipv6.src") == "" || get(r, "ipv6.dst") == "" {
			return p, false, "", nil
		}
		p.src, p.dst = netip.MustParseAddr(get(r, "ipv6.src")), netip.MustParseAddr(get(r, "ipv6.dst"))
		plen := num("ipv6.plen")
		if plen == 0 {
			return p, false, "", fmt.Errorf("jumbogram: the expectation does not compute its length")
		}
		p.bytes = uint64(plen) + 40
		next := outer + 1
		hasFrag := false
		for next < len(protos) {
			if _, ext := ipv6Extensions[protos[next]]; !ext {
				break
			}
			hasFrag = hasFrag || protos[next] == "ipv6.fraghdr"
			next++
		}
		if hasFrag {
			fragID = get(r, "ipv6.fraghdr.ident")
			laterFrag = num("ipv6.fraghdr.offset") > 0
			firstFrag = !laterFrag && get(r, "ipv6.fraghdr.more") == "1"
		}
		upper, known := uint8(0), false
		if next < len(protos) {
			upper, known = upperLayers[protos[next]]
		}
		fromBytes, runOff, found := ipv6ProtocolFromBytes(wf.data, p.src, p.dst)
		switch {
		case laterFrag:
			p.proto = uint8(num("ipv6.fraghdr.nxt"))
		case known:
			p.proto = upper
		default:
			// frame.protocols ends inside the extension chain: the chain ran
			// off the capture, or its last header says no next header (59).
			if !found {
				return p, false, "", fmt.Errorf("IPv6 header not found in the frame bytes")
			}
			p.proto, gap = fromBytes, gapIPv6ChainFromBytes
			if !runOff && (fromBytes == 6 || fromBytes == 17 || fromBytes == 132) {
				return p, false, "", fmt.Errorf("bytes say protocol %d but tshark did not decode it", fromBytes)
			}
		}
		// Cross-check the byte walk wherever the tsv is unambiguous, so the
		// byte walk is itself tested.
		if found && fromBytes != p.proto {
			return p, false, "", fmt.Errorf("tsv gives protocol %d, bytes give %d", p.proto, fromBytes)
		}
	}
	if err != nil {
		return p, false, "", err
	}

	hasPorts := p.proto == 6 || p.proto == 17 || p.proto == 132
	switch {
	case laterFrag:
		// Rule 5: ports of the first fragment if seen before, no TCP flags.
		if hasPorts {
			ports := firsts[fragKey{p.src, p.dst, p.proto, fragID}]
			p.srcPort, p.dstPort = ports[0], ports[1]
		}
	case hasPorts:
		layer := map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}[p.proto]
		if get(r, layer+".srcport") != "" && get(r, layer+".dstport") != "" {
			p.srcPort, p.dstPort = uint16(num(layer+".srcport")), uint16(num(layer+".dstport"))
		}
		if p.proto == 6 && get(r, "tcp.flags") != "" {
			p.tcpFlags = reportedFlags(uint8(num("tcp.flags")))
		}
		if firstFrag {
			firsts[fragKey{p.src, p.dst, p.proto, fragID}] = [2]uint16{p.srcPort, p.dstPort}
		}
	}
	return p, err == nil, gap, err
}

// ipv6ProtocolFromBytes walks the IPv6 extension chain in the frame (rule 4).
// The header is found by its addresses, so no link layer is decoded here.
// An extension header counts as read only when it is captured in full.
func ipv6ProtocolFromBytes(frame []byte, src, dst netip.Addr) (proto uint8, runOff, found bool) {
	s, d := src.As16(), dst.As16()
	addrs := append(s[:], d[:]...)
	i := -1
	for from := 0; i < 8 || frame[i-8]>>4 != 6; from = i + 1 {
		j := bytes.Index(frame[from:], addrs)
		if j < 0 {
			return 0, false, false
		}
		i = from + j
	}
	next, off := frame[i-2], i+32
	for {
		var size int
		switch next {
		case 0, 43, 60:
			if off+2 > len(frame) {
				return next, true, true
			}
			size = (int(frame[off+1]) + 1) * 8
		case 51:
			if off+2 > len(frame) {
				return next, true, true
			}
			size = (int(frame[off+1]) + 2) * 4
		case 44:
			size = 8
		default:
			return next, false, true
		}
		if off+size > len(frame) {
			return next, true, true
		}
		if next == 44 && (int(frame[off+2])<<8|int(frame[off+3]))&^7 != 0 {
			return frame[off], false, true // a later fragment: what follows is payload
		}
		next, off = frame[off], off+size
	}
}

// excludedAddrs and the DHCP ports are rule 9's defaults (no subnet is
// configured, so the router and resolver addresses do not apply).
var excludedAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true,
	netip.MustParseAddr("fd00:ec2::254"):   true,
	netip.MustParseAddr("169.254.169.123"): true,
	netip.MustParseAddr("fd00:ec2::123"):   true,
	netip.MustParseAddr("169.254.169.253"): true,
}

func excluded(p packet) bool {
	if excludedAddrs[p.src] || excludedAddrs[p.dst] {
		return true
	}
	in := func(port uint16, a, b uint16) bool { return port == a || port == b }
	return p.proto == 17 && (in(p.srcPort, 67, 68) && in(p.dstPort, 67, 68) ||
		in(p.srcPort, 546, 547) && in(p.dstPort, 546, 547))
}

// flowKey is what makes two packets one record (action is always ACCEPT).
type flowKey struct {
	window   int64
	iface    int
	src, dst netip.Addr
	srcPort  uint16
	dstPort  uint16
	proto    uint8
}

// okRecord is an OK record, expected or printed.
type okRecord struct {
	flowKey
	packets, bytes uint64
	start, end     int64
	tcpFlags       uint8
	dir            string
	frames         []int // expected only: the frames that built it (first few)
	line           string
}

// expectation is what one flowlog run must print.
type expectation struct {
	ok []okRecord // sorted by compareKeys
	// NODATA (rule 12): for each interface, every window from first to last
	// (inclusive) that is not in busy[iface]. Kept implicit: ndpi-mix-a has
	// about a million of them.
	interfaces  int
	first, last int64
	busy        []map[int64]bool
	any         bool // at least one packet recorded
}

func aggregate(pkts []packet, interfaces int, interval int64, exclusions bool) expectation {
	e := expectation{interfaces: interfaces, busy: make([]map[int64]bool, interfaces)}
	for i := range e.busy {
		e.busy[i] = map[int64]bool{}
	}
	recs := map[flowKey]*okRecord{}
	for _, p := range pkts {
		if exclusions && excluded(p) {
			continue
		}
		w := floorDiv(p.second, interval) * interval
		if !e.any || w < e.first {
			e.first = w
		}
		if !e.any || w > e.last {
			e.last = w
		}
		e.any = true
		e.busy[p.iface][w] = true
		k := flowKey{w, p.iface, p.src, p.dst, p.srcPort, p.dstPort, p.proto}
		r := recs[k]
		if r == nil {
			r = &okRecord{flowKey: k, start: p.second, end: p.second, dir: "-"}
			recs[k] = r
		}
		r.packets++
		r.bytes += p.bytes
		r.start, r.end = min(r.start, p.second), max(r.end, p.second)
		r.tcpFlags |= p.tcpFlags
		if r.dir == "-" {
			r.dir = p.dir
		}
		if len(r.frames) < 8 {
			r.frames = append(r.frames, p.frame)
		}
	}
	for _, r := range recs {
		e.ok = append(e.ok, *r)
	}
	slices.SortFunc(e.ok, func(a, b okRecord) int { return compareKeys(a.flowKey, b.flowKey) })
	return e
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func compareKeys(a, b flowKey) int {
	if c := cmpInt(a.window, b.window); c != 0 {
		return c
	}
	if c := cmpInt(a.iface, b.iface); c != 0 {
		return c
	}
	if c := a.src.Compare(b.src); c != 0 {
		return c
	}
	if c := a.dst.Compare(b.dst); c != 0 {
		return c
	}
	if c := cmpInt(a.srcPort, b.srcPort); c != 0 {
		return c
	}
	if c := cmpInt(a.dstPort, b.dstPort); c != 0 {
		return c
	}
	return cmpInt(a.proto, b.proto)
}

func cmpInt[T int | int64 | uint16 | uint8](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// render writes a record the way the test's format prints it, for diffs.
func (r okRecord) render() string {
	typ := "IPv4"
	if r.src.Is6() {
		typ = "IPv6"
	}
	return fmt.Sprintf("%s %s %s %d %d %d %d %s %d %d %d %d ACCEPT OK %s",
		interfaceID(r.iface), r.src, r.dst, r.srcPort, r.dstPort, r.proto, r.tcpFlags, typ,
		r.packets, r.bytes, r.start, r.end, r.dir)
}

func interfaceID(i int) string { return fmt.Sprintf("eni-%017d", i) }
