package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// keySet collects distinct keys and unknown protocol names.
type keySet struct {
	keys    map[Key]struct{}
	unknown map[string]struct{}
}

func newKeySet() *keySet {
	return &keySet{keys: map[Key]struct{}{}, unknown: map[string]struct{}{}}
}

func (s *keySet) add(k Key) { s.keys[k] = struct{}{} }

func (s *keySet) fill(c *Counts) {
	c.Keys = uint64(len(s.keys))
	for u := range s.unknown {
		c.Unknown = append(c.Unknown, u)
	}
	sort.Strings(c.Unknown)
}

// protoNames maps the protocol names the tools print to numbers.
var protoNames = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipip": 4, "ipv4": 4, "tcp": 6, "udp": 17, "ipv6": 41, "rsvp": 46, "gre": 47,
	"esp": 50, "ah": 51, "icmp6": 58, "ipv6-icmp": 58, "icmpv6": 58, "ospf": 89, "pim": 103, "vrrp": 112,
	"pgm": 113, "l2tp": 115, "sctp": 132,
}

// proto reads a protocol as a number or a name; unknown names are noted
// and counted as protocol 255.
func (s *keySet) proto(text string) uint8 {
	text = strings.TrimSpace(text)
	if n, err := strconv.ParseUint(text, 10, 8); err == nil {
		return uint8(n)
	}
	if n, ok := protoNames[strings.ToLower(text)]; ok {
		return n
	}
	s.unknown[text] = struct{}{}
	return 255
}

// port reads a decimal or 0x-prefixed port; anything else is 0 (ports of
// protocols without ports are dropped from keys anyway).
func port(text string) uint16 {
	n, err := strconv.ParseUint(strings.TrimSpace(text), 0, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

func addr(text string) (netip.Addr, error) {
	return netip.ParseAddr(strings.TrimSpace(text))
}

func uintField(text string) (uint64, error) {
	return strconv.ParseUint(strings.TrimSpace(text), 10, 64)
}

// parseFlowlog reads flowlog's text output (flows.txt): a header line
// naming the fields, then one record per line.
func parseFlowlog(dir string) (Counts, error) {
	f, err := os.Open(filepath.Join(dir, "flows.txt"))
	if err != nil {
		return Counts{}, err
	}
	defer f.Close()
	return readFlowlog(f)
}

func readFlowlog(r io.Reader) (Counts, error) {
	var c Counts
	ks := newKeySet()
	windows := map[int64]struct{}{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	if !sc.Scan() {
		return c, fmt.Errorf("flows.txt: no header line")
	}
	col := map[string]int{}
	for i, name := range strings.Fields(sc.Text()) {
		col[name] = i
	}
	for _, need := range []string{"srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "log-status"} {
		if _, ok := col[need]; !ok {
			return c, fmt.Errorf("flows.txt: header has no %s", need)
		}
	}
	for line := 2; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) != len(col) {
			return c, fmt.Errorf("flows.txt line %d: %d fields, header has %d", line, len(f), len(col))
		}
		switch f[col["log-status"]] {
		case "NODATA":
			c.NoData++
			continue
		case "SKIPDATA":
			c.SkipData++
			continue
		}
		src, err1 := addr(f[col["srcaddr"]])
		dst, err2 := addr(f[col["dstaddr"]])
		packets, err3 := uintField(f[col["packets"]])
		bytes, err4 := uintField(f[col["bytes"]])
		start, err5 := strconv.ParseInt(f[col["start"]], 10, 64)
		if err := firstErr(err1, err2, err3, err4, err5); err != nil {
			return c, fmt.Errorf("flows.txt line %d: %w", line, err)
		}
		c.Records++
		c.Packets += packets
		c.Bytes += bytes
		ks.add(makeKey(src, dst, port(f[col["srcport"]]), port(f[col["dstport"]]), ks.proto(f[col["protocol"]])))
		windows[floorDiv(start, 600)] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	ks.fill(&c)
	c.Windows = uint64(len(windows))
	return c, nil
}

// parseNfdump reads the nfdump files under dir (written by nfcapd or
// nfpcapd) through nfdump's CSV output: ts,te,td,sa,da,sp,dp,pr,flg,fwd,
// stos,ipkt,ibyt,…
func parseNfdump(dir string) (Counts, error) {
	cmd := exec.Command("nfdump", "-R", dir, "-q", "-o", "csv")
	return fromCommand(cmd, readNfdumpCSV)
}

func readNfdumpCSV(r io.Reader) (Counts, error) {
	var c Counts
	ks := newKeySet()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), ",")
		if len(f) < 13 {
			if strings.TrimSpace(sc.Text()) == "" || strings.HasPrefix(sc.Text(), "No matched flows") {
				continue
			}
			return c, fmt.Errorf("nfdump csv line %d: %d fields: %q", line, len(f), sc.Text())
		}
		src, err1 := addr(f[3])
		dst, err2 := addr(f[4])
		packets, err3 := uintField(f[11])
		bytes, err4 := uintField(f[12])
		if err := firstErr(err1, err2, err3, err4); err != nil {
			return c, fmt.Errorf("nfdump csv line %d: %w", line, err)
		}
		c.Records++
		c.Packets += packets
		c.Bytes += bytes
		ks.add(makeKey(src, dst, port(f[5]), port(f[6]), ks.proto(f[7])))
	}
	ks.fill(&c)
	return c, sc.Err()
}

// parsePmacct reads pmacct's CSV files (one per time bin): SRC_IP,DST_IP,
// SRC_PORT,DST_PORT,PROTOCOL,PACKETS,BYTES, a header line per purge.
func parsePmacct(dir string) (Counts, error) {
	files, err := filepath.Glob(filepath.Join(dir, "flows-*.csv"))
	if err != nil {
		return Counts{}, err
	}
	if len(files) == 0 {
		return Counts{}, fmt.Errorf("%s: pmacctd wrote no flows-*.csv", dir)
	}
	var c Counts
	ks := newKeySet()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return c, err
		}
		n, err := readPmacctCSV(f, &c, ks)
		f.Close()
		if err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
		if n > 0 {
			c.Windows++
		}
	}
	ks.fill(&c)
	return c, nil
}

func readPmacctCSV(r io.Reader, c *Counts, ks *keySet) (rows int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "SRC_IP,") {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) != 7 {
			return rows, fmt.Errorf("line %d: %d fields, want 7: %q", line, len(f), text)
		}
		src, err1 := addr(f[0])
		dst, err2 := addr(f[1])
		packets, err3 := uintField(f[5])
		bytes, err4 := uintField(f[6])
		if err := firstErr(err1, err2, err3, err4); err != nil {
			return rows, fmt.Errorf("line %d: %w", line, err)
		}
		rows++
		c.Records++
		c.Packets += packets
		c.Bytes += bytes
		ks.add(makeKey(src, dst, port(f[2]), port(f[3]), ks.proto(f[4])))
	}
	return rows, sc.Err()
}

// parseArgus reads the argus file through ra: one bidirectional record per
// line, source and destination counters apart. Records whose addresses are
// not IP (argus's own "man" status records) and records of other
// EtherTypes (ARP, which argus keys by IP address) are skipped.
func parseArgus(dir string) (Counts, error) {
	cmd := exec.Command("ra", "-r", filepath.Join(dir, "flows.argus"), "-nn", "-c", ",",
		"-s", "saddr", "daddr", "sport", "dport", "proto", "spkts", "dpkts", "sbytes", "dbytes")
	return fromCommand(cmd, readArgusCSV)
}

func readArgusCSV(r io.Reader) (Counts, error) {
	var c Counts
	ks := newKeySet()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), ",")
		if line == 1 && len(f) > 0 && f[0] == "SrcAddr" {
			continue
		}
		if len(f) != 9 {
			return c, fmt.Errorf("ra line %d: %d fields, want 9: %q", line, len(f), sc.Text())
		}
		src, err1 := addr(f[0])
		dst, err2 := addr(f[1])
		if err1 != nil || err2 != nil || strings.EqualFold(strings.TrimSpace(f[4]), "man") {
			continue
		}
		spkts, err1 := uintField(f[5])
		dpkts, err2 := uintField(f[6])
		sbytes, err3 := uintField(f[7])
		dbytes, err4 := uintField(f[8])
		if err := firstErr(err1, err2, err3, err4); err != nil {
			return c, fmt.Errorf("ra line %d: %w", line, err)
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(f[4]), 10, 32); err == nil && n > 255 {
			continue // an EtherType, not an IP protocol: ARP between IP addresses
		}
		proto := ks.proto(f[4])
		sport, dport := port(f[2]), port(f[3])
		c.Records++
		c.Packets += spkts + dpkts
		c.Bytes += sbytes + dbytes
		if spkts > 0 {
			ks.add(makeKey(src, dst, sport, dport, proto))
		}
		if dpkts > 0 {
			ks.add(makeKey(dst, src, dport, sport, proto))
		}
	}
	ks.fill(&c)
	return c, sc.Err()
}

// parseTshark reads tshark's conversation tables.
func parseTshark(dir string) (Counts, error) {
	f, err := os.Open(filepath.Join(dir, "conversations.txt"))
	if err != nil {
		return Counts{}, err
	}
	defer f.Close()
	return readTsharkConv(f)
}

// readTsharkConv reads tables like
//
//	TCP Conversations
//	Filter:<No Filter>
//	                     |       <-      | |       ->      | |     Total     | …
//	                     | Frames  Bytes | | Frames  Bytes | | Frames  Bytes | …
//	10.0.0.1:80 <-> 10.0.0.2:1234   5 7434 bytes   6 14 kB   11 21 kB   0.1 2.3
//
// "<-" counts frames from B to A, "->" from A to B. Bytes are printed with
// SI units and rounded, so they are summed as printed.
func readTsharkConv(r io.Reader) (Counts, error) {
	var c Counts
	ks := newKeySet()
	var proto uint8
	withPorts := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasSuffix(text, " Conversations"):
			switch strings.TrimSuffix(text, " Conversations") {
			case "TCP":
				proto, withPorts = 6, true
			case "UDP":
				proto, withPorts = 17, true
			case "IPv4", "IPv6":
				// Neither TCP nor UDP (the tables are filtered): protocol
				// unknown, 0 stands for "any other".
				proto, withPorts = 0, false
			default:
				return c, fmt.Errorf("conversations line %d: unexpected table %q", line, text)
			}
			continue
		case !strings.Contains(text, "<->"):
			continue
		}
		a, rest, _ := strings.Cut(text, "<->")
		f := strings.Fields(rest)
		// B, then (frames, bytes, unit) three times, start, duration.
		if len(f) != 12 {
			return c, fmt.Errorf("conversations line %d: %d fields after <->, want 12: %q", line, len(f), text)
		}
		aAddr, aPort, err1 := hostPort(strings.TrimSpace(a), withPorts)
		bAddr, bPort, err2 := hostPort(f[0], withPorts)
		toA, err3 := uintField(f[1])
		bytesToA, err4 := tsharkBytes(f[2], f[3])
		toB, err5 := uintField(f[4])
		bytesToB, err6 := tsharkBytes(f[5], f[6])
		if err := firstErr(err1, err2, err3, err4, err5, err6); err != nil {
			return c, fmt.Errorf("conversations line %d: %w", line, err)
		}
		c.Records++
		c.Packets += toA + toB
		c.Bytes += bytesToA + bytesToB
		if f[3] != "bytes" || f[6] != "bytes" {
			c.BytesRounded = true
		}
		if toB > 0 {
			ks.add(makeKey(aAddr, bAddr, aPort, bPort, proto))
		}
		if toA > 0 {
			ks.add(makeKey(bAddr, aAddr, bPort, aPort, proto))
		}
	}
	ks.fill(&c)
	return c, sc.Err()
}

// hostPort splits "addr:port" (the port after the last colon, so IPv6
// works) or reads a bare address.
func hostPort(text string, withPort bool) (netip.Addr, uint16, error) {
	if !withPort {
		a, err := addr(text)
		return a, 0, err
	}
	i := strings.LastIndexByte(text, ':')
	if i < 0 {
		return netip.Addr{}, 0, fmt.Errorf("%q: no port", text)
	}
	a, err := addr(text[:i])
	if err != nil {
		return a, 0, err
	}
	p, err := strconv.ParseUint(text[i+1:], 10, 16)
	return a, uint16(p), err
}

func tsharkBytes(num, unit string) (uint64, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]float64{"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown byte unit %q", unit)
	}
	return uint64(v * mult), nil
}

// fromCommand streams a command's standard output into a reader function.
func fromCommand(cmd *exec.Cmd, read func(io.Reader) (Counts, error)) (Counts, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Counts{}, err
	}
	if err := cmd.Start(); err != nil {
		return Counts{}, err
	}
	c, rerr := read(bufio.NewReaderSize(out, 1<<20))
	if rerr != nil {
		io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	if rerr != nil {
		return c, rerr
	}
	if werr != nil {
		return c, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), werr, strings.TrimSpace(stderr.String()))
	}
	return c, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
