package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Key is a unidirectional flow as every tool can be reduced to it. Ports
// are 0 for every protocol but TCP, UDP and SCTP (AWS's rule; the peers put
// ICMP type and code there, which is undone when their output is read).
type Key struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
}

// hasPorts tells the protocols whose ports are part of a key.
func hasPorts(proto uint8) bool { return proto == 6 || proto == 17 || proto == 132 }

func makeKey(src, dst netip.Addr, sport, dport uint16, proto uint8) Key {
	if !hasPorts(proto) {
		sport, dport = 0, 0
	}
	return Key{src.Unmap(), dst.Unmap(), sport, dport, proto}
}

// windowKey is one AWS record: a key in one interface and one window.
type windowKey struct {
	Key
	iface  string
	window int64
}

// linkLayers are the frame.protocols entries flowlog unwraps before the
// outer IP header (as tshark names them).
var linkLayers = map[string]bool{
	"eth": true, "ethertype": true, "vlan": true, "llc": true, "sll": true, "null": true,
	"raw": true, "ppp": true, "pppoes": true, "mpls": true,
}

// ipv6Extensions are the IPv6 extension headers walked past to the upper
// layer (as tshark names them).
var ipv6Extensions = map[string]bool{
	"ipv6.hopopts": true, "ipv6.routing": true, "ipv6.fraghdr": true, "ipv6.dstopts": true, "ah": true,
}

var upperLayers = map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "igmp": 2, "gre": 47, "esp": 50}

type fragID struct {
	src, dst netip.Addr
	proto    uint8
	id       string
}

// truthFromTSV computes a corpus capture's truth from its tshark table
// (see ../shared/corpora/pcap/README.md): the outer IP header of every
// frame whose link layers flowlog unwraps, IP length as bytes, ports from
// TCP/UDP/SCTP (a later fragment takes its first fragment's), 600 s
// windows of the frame's second, pcapng interfaces kept apart. It is a
// shortened form of test/corpus's expectation (no exclusions: the bench
// runs flowlog with --no-exclusions) and shares no code with flowlog.
func truthFromTSV(r io.Reader) (Truth, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	if !sc.Scan() {
		return Truth{}, fmt.Errorf("empty table")
	}
	col := map[string]int{}
	for i, name := range strings.Split(sc.Text(), "\t") {
		col[name] = i
	}
	for _, need := range []string{"frame.number", "frame.interface_id", "frame.time_epoch", "frame.len", "frame.protocols",
		"ip.src", "ip.dst", "ip.proto", "ip.len", "ip.id", "ip.flags.mf", "ip.frag_offset",
		"ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.plen", "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.ident",
		"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport"} {
		if _, ok := col[need]; !ok {
			return Truth{}, fmt.Errorf("no column %s", need)
		}
	}
	t := Truth{From: "tshark per-packet table (*.packets.tsv)"}
	keys := map[Key]struct{}{}
	records := map[windowKey]struct{}{}
	type ifaceWindow struct {
		iface  string
		window int64
	}
	busy := map[ifaceWindow]struct{}{}
	ifaces := map[string]struct{}{}
	firsts := map[fragID][2]uint16{}
	var lastSecond int64
	first := true
	for line := 2; sc.Scan(); line++ {
		row := strings.Split(sc.Text(), "\t")
		if len(row) != len(col) {
			return t, fmt.Errorf("line %d: %d columns, header has %d", line, len(row), len(col))
		}
		get := func(name string) string { return row[col[name]] }
		second := lastSecond
		if ts := get("frame.time_epoch"); ts != "" {
			s, err := epochSecond(ts)
			if err != nil {
				return t, fmt.Errorf("line %d: %w", line, err)
			}
			second = s
		}
		lastSecond = second
		k, ipBytes, ok, err := decodeRow(get, firsts)
		if err != nil {
			return t, fmt.Errorf("line %d (frame %s, %s): %w", line, get("frame.number"), get("frame.protocols"), err)
		}
		if !ok {
			continue
		}
		frameLen, _ := strconv.ParseUint(get("frame.len"), 10, 64)
		t.Packets++
		t.IPBytes += ipBytes
		t.FrameBytes += frameLen
		keys[k] = struct{}{}
		w := floorDiv(second, 600) * 600
		records[windowKey{k, get("frame.interface_id"), w}] = struct{}{}
		busy[ifaceWindow{get("frame.interface_id"), w}] = struct{}{}
		ifaces[get("frame.interface_id")] = struct{}{}
		if first || w < t.FirstWindow {
			t.FirstWindow = w
		}
		if first || w > t.LastWindow {
			t.LastWindow = w
		}
		first = false
	}
	if err := sc.Err(); err != nil {
		return t, err
	}
	t.Keys, t.Records = uint64(len(keys)), uint64(len(records))
	if t.Packets > 0 {
		span := uint64((t.LastWindow-t.FirstWindow)/600 + 1)
		t.NoData = span*uint64(len(ifaces)) - uint64(len(busy))
	}
	return t, nil
}

// decodeRow reads the outer IP header of one frame; ok is false when the
// frame is not one flowlog records (not IP, or IP inside something flowlog
// does not unwrap, or an IP header tshark could not read).
func decodeRow(get func(string) string, firsts map[fragID][2]uint16) (k Key, ipBytes uint64, ok bool, err error) {
	protos := strings.Split(get("frame.protocols"), ":")
	outer := -1
	for i, p := range protos {
		if p == "ip" || p == "ipv6" {
			outer = i
			break
		}
		if !linkLayers[p] {
			return k, 0, false, nil
		}
	}
	if outer < 0 {
		return k, 0, false, nil
	}
	num := func(name string) uint64 {
		v, perr := strconv.ParseUint(get(name), 0, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("field %s: %w", name, perr)
		}
		return v
	}
	var src, dst netip.Addr
	var proto uint8
	var id string
	var firstFrag, laterFrag bool
	if protos[outer] == "ip" {
		if get("ip.src") == "" || get("ip.dst") == "" {
			return k, 0, false, nil
		}
		src, dst = netip.MustParseAddr(get("ip.src")), netip.MustParseAddr(get("ip.dst"))
		proto = uint8(num("ip.proto"))
		ipBytes = num("ip.len")
		id = get("ip.id")
		laterFrag = num("ip.frag_offset") > 0
		firstFrag = !laterFrag && get("ip.flags.mf") == "1"
	} else {
		if get("ipv6.src") == "" || get("ipv6.dst") == "" {
			return k, 0, false, nil
		}
		src, dst = netip.MustParseAddr(get("ipv6.src")), netip.MustParseAddr(get("ipv6.dst"))
		ipBytes = num("ipv6.plen") + 40
		next, hasFrag := outer+1, false
		for next < len(protos) && ipv6Extensions[protos[next]] {
			hasFrag = hasFrag || protos[next] == "ipv6.fraghdr"
			next++
		}
		if hasFrag {
			id = get("ipv6.fraghdr.ident")
			laterFrag = num("ipv6.fraghdr.offset") > 0
			firstFrag = !laterFrag && get("ipv6.fraghdr.more") == "1"
		}
		upper, known := uint8(0), false
		if next < len(protos) {
			upper, known = upperLayers[protos[next]]
		}
		switch {
		case laterFrag:
			proto = uint8(num("ipv6.fraghdr.nxt"))
		case known:
			proto = upper
		case next == outer+1:
			proto = uint8(num("ipv6.nxt"))
		default:
			return k, 0, false, fmt.Errorf("IPv6 upper layer not in frame.protocols (the extension chain needs the frame bytes; test/corpus handles it)")
		}
	}
	if err != nil {
		return k, 0, false, err
	}
	var sport, dport uint16
	switch {
	case laterFrag:
		if hasPorts(proto) {
			p := firsts[fragID{src, dst, proto, id}]
			sport, dport = p[0], p[1]
		}
	case hasPorts(proto):
		layer := map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}[proto]
		if get(layer+".srcport") != "" && get(layer+".dstport") != "" {
			sport, dport = uint16(num(layer+".srcport")), uint16(num(layer+".dstport"))
		}
		if firstFrag {
			firsts[fragID{src, dst, proto, id}] = [2]uint16{sport, dport}
		}
	}
	return makeKey(src, dst, sport, dport, proto), ipBytes, err == nil, err
}

// epochSecond is floor(frame.time_epoch); a sub-second field of 10 digits
// (a fuzzed file's nanoseconds past 1e9) carries into the seconds.
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

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
