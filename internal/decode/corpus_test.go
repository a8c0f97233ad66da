package decode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/internal/capture/pcapfile"
)

// corpusDir finds ../shared/corpora/pcap beside the module root (the
// directory holding go.mod), where CI clones shared/ as it is here.
func corpusDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	corpus := filepath.Join(dir, "..", "shared", "corpora", "pcap")
	if _, err := os.Stat(corpus); err != nil {
		tb.Fatalf("corpus missing: %v", err)
	}
	return corpus
}

// corpusCaptures lists the capture files of the corpus (everything with a
// packets.tsv beside it).
func corpusCaptures(tb testing.TB) []string {
	tb.Helper()
	dir := corpusDir(tb)
	truths, err := filepath.Glob(filepath.Join(dir, "*.packets.tsv"))
	if err != nil || len(truths) == 0 {
		tb.Fatalf("no packets.tsv in %s (%v)", dir, err)
	}
	captures := make([]string, 0, len(truths))
	for _, truth := range truths {
		captures = append(captures, strings.TrimSuffix(truth, ".packets.tsv"))
	}
	return captures
}

// tsvRow is one line of a packets.tsv, by column name.
type tsvRow map[string]string

func readTruth(tb testing.TB, path string) []tsvRow {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var header []string
	var rows []tsvRow
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if header == nil {
			header = fields
			continue
		}
		if len(fields) != len(header) {
			tb.Fatalf("%s: row with %d fields, header has %d", path, len(fields), len(header))
		}
		row := make(tsvRow, len(header))
		for i, name := range header {
			row[name] = fields[i]
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return rows
}

// truthPacket is what rules 1-6 say a frame becomes, computed from tshark's
// fields alone.
type truthPacket struct {
	recorded         bool
	src, dst         netip.Addr
	protocol         uint8
	srcPort, dstPort uint16
	tcpFlags         uint8
	length           uint32
	ipv6             bool
	fragment         Fragment
	fragID           uint32
}

// tsharkProtocolNumbers maps frame.protocols names of upper layers seen right
// after an IPv6 header chain to IP protocol numbers.
var tsharkProtocolNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "ip": 4, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47,
	"esp": 50, "icmpv6": 58, "ospf": 89, "pim": 103, "pgm": 113, "vrrp": 112, "sctp": 132,
}

var tsharkIPv6Extensions = map[string]bool{
	"ipv6.hopopts": true, "ipv6.routing": true, "ipv6.fraghdr": true, "ipv6.dstopts": true, "ah": true,
}

func parseUint(s string) (uint64, error) {
	if strings.HasPrefix(s, "0x") {
		return strconv.ParseUint(s[2:], 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// expectation applies rules 1-6 to one tsv row. It fails (returns an error)
// when the row does not determine the answer. chainEnd, when not nil, is the
// protocol to take when tshark lists IPv6 extension headers and nothing after
// them (see corpusExceptions).
func expectation(row tsvRow, chainEnd *uint8) (truthPacket, error) {
	var want truthPacket
	protocols := strings.Split(row["frame.protocols"], ":")
	outer := -1
	for i, name := range protocols {
		if name == "ip" || name == "ipv6" {
			outer = i
			break
		}
	}
	if outer < 0 {
		return want, nil // no IP layer at all
	}
	num := func(field string) (uint64, error) {
		v, err := parseUint(row[field])
		if err != nil {
			return 0, fmt.Errorf("field %s=%q: %w", field, row[field], err)
		}
		return v, nil
	}
	var upper string // name of the layer after the (IPv6 extension) header chain
	if protocols[outer] == "ip" {
		if row["ip.src"] == "" {
			return want, nil // tshark could not read the fixed header
		}
		want.src = netip.MustParseAddr(row["ip.src"])
		want.dst = netip.MustParseAddr(row["ip.dst"])
		proto, err := num("ip.proto")
		if err != nil {
			return want, err
		}
		length, err := num("ip.len")
		if err != nil {
			return want, err
		}
		want.protocol, want.length = uint8(proto), uint32(length)
		offset, err := num("ip.frag_offset")
		if err != nil {
			return want, err
		}
		id, err := num("ip.id")
		if err != nil {
			return want, err
		}
		switch {
		case offset > 0:
			want.fragment, want.fragID = FragmentLater, uint32(id)
		case row["ip.flags.mf"] == "1":
			want.fragment, want.fragID = FragmentFirst, uint32(id)
		}
		if outer+1 < len(protocols) {
			upper = protocols[outer+1]
		}
	} else {
		if row["ipv6.src"] == "" {
			return want, nil
		}
		want.ipv6 = true
		want.src = netip.MustParseAddr(row["ipv6.src"])
		want.dst = netip.MustParseAddr(row["ipv6.dst"])
		plen, err := num("ipv6.plen")
		if err != nil {
			return want, err
		}
		if plen == 0 {
			return want, errors.New("ipv6 jumbogram: the captured length after the header is not in the row")
		}
		want.length = uint32(plen) + 40
		// Walk the names after "ipv6": extension headers, then the upper
		// layer. tshark's ipv6.fraghdr.* fields are those of the first
		// fragment header.
		lastExtension, fragmentHeaders := "", 0
		var fragmentNext uint8
		resolved := false
	chain:
		for _, name := range protocols[outer+1:] {
			if tsharkIPv6Extensions[name] {
				lastExtension = name
				if name != "ipv6.fraghdr" {
					continue
				}
				if fragmentHeaders++; fragmentHeaders > 1 {
					continue
				}
				next, err := num("ipv6.fraghdr.nxt")
				if err != nil {
					return want, err
				}
				offset, err := num("ipv6.fraghdr.offset")
				if err != nil {
					return want, err
				}
				ident, err := num("ipv6.fraghdr.ident")
				if err != nil {
					return want, err
				}
				if offset > 0 {
					want.fragment, want.fragID, want.protocol = FragmentLater, uint32(ident), uint8(next)
					resolved = true
					break chain
				}
				if row["ipv6.fraghdr.more"] == "1" {
					want.fragment, want.fragID = FragmentFirst, uint32(ident)
				}
				fragmentNext = uint8(next)
				continue
			}
			number, known := tsharkProtocolNumbers[name]
			switch {
			case known:
				want.protocol, upper = number, name
			case lastExtension == "":
				next, err := num("ipv6.nxt")
				if err != nil {
					return want, err
				}
				want.protocol = uint8(next)
			case lastExtension == "ipv6.fraghdr" && fragmentHeaders == 1:
				want.protocol = fragmentNext
			default:
				return want, fmt.Errorf("upper layer %q after %s has no known number", name, lastExtension)
			}
			resolved = true
			break chain
		}
		sawExtension := lastExtension != ""
		if !resolved {
			if sawExtension && chainEnd == nil {
				return want, errors.New("the extension header chain ends without an upper layer; the row does not say where it stopped")
			}
			if sawExtension {
				want.protocol = *chainEnd
				want.recorded = true
				return want, nil
			}
			next, err := num("ipv6.nxt")
			if err != nil {
				return want, err
			}
			want.protocol = uint8(next)
		}
	}
	want.recorded = true
	if want.fragment == FragmentLater {
		return want, nil
	}
	// Rule 5: ports from the outer L4 header only; tshark's tcp/udp/sctp
	// fields are the first occurrence, which is the outer one when the
	// outer protocol is that protocol.
	prefix := map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}[want.protocol]
	if prefix == "" {
		return want, nil
	}
	if want.ipv6 && upper != prefix {
		// The upper layer is a port protocol but tshark did not dissect
		// it (e.g. a first fragment shown as data).
		if row[prefix+".srcport"] != "" {
			return want, fmt.Errorf("protocol %d but frame.protocols has no %s", want.protocol, prefix)
		}
	}
	if row[prefix+".srcport"] != "" {
		sp, err := num(prefix + ".srcport")
		if err != nil {
			return want, err
		}
		dp, err := num(prefix + ".dstport")
		if err != nil {
			return want, err
		}
		want.srcPort, want.dstPort = uint16(sp), uint16(dp)
	}
	if want.protocol == 6 && row["tcp.flags"] != "" {
		flags, err := num("tcp.flags")
		if err != nil {
			return want, err
		}
		want.tcpFlags = uint8(flags)
	}
	return want, nil
}

// fragmentTruth resolves later fragments the way rule 5 says, with a plain
// map: written separately from Fragments so the test does not grade the
// code with itself.
type fragmentTruth map[string][2]uint16

func (m fragmentTruth) resolve(w *truthPacket) {
	if !w.recorded || w.fragment == FragmentNone {
		return
	}
	key := fmt.Sprint(w.src, w.dst, w.protocol, w.fragID)
	if w.fragment == FragmentFirst {
		m[key] = [2]uint16{w.srcPort, w.dstPort}
		return
	}
	ports := m[key]
	w.srcPort, w.dstPort, w.tcpFlags = ports[0], ports[1], 0
}

// corpusException supplies what a row cannot: the IPv6 upper-layer protocol
// when tshark lists extension headers and then nothing. tshark's fields hold
// only the first next-header (ipv6.nxt) and the fragment header's, so the
// next-header byte of the last extension header listed is not in the row;
// protocol was read from the frame's bytes and reason says where.
type corpusException struct {
	protocol uint8
	reason   string
}

// corpusExceptions are keyed "capture#frame". Each must still be a row whose
// expectation cannot be computed without it, so a stale entry is reported.
var corpusExceptions = map[string]corpusException{
	"tcpdump-ipv6-next-header-oobr-1.pcap#1": {43, "the hop-by-hop header is captured and says 43 (routing), whose header " +
		"the capture cuts off; tshark stops inside a malformed hop-by-hop option and shows neither"},
	"tcpdump-ipv6-srh-tlv-hmac.pcap#1": {59, "the segment routing header says 59 (no next header), which tshark does not list"},
	"zeek-ip6-ext-trunc.pcap#1": {0, "the frame ends right after the fixed header, so the hop-by-hop header (0) " +
		"cannot be read; tshark still lists ipv6.hopopts"},
}

func (w truthPacket) matches(err error, p *Packet) bool {
	if !w.recorded {
		return err != nil
	}
	return err == nil && p.Src == w.src && p.Dst == w.dst && p.Protocol == w.protocol &&
		p.SrcPort == w.srcPort && p.DstPort == w.dstPort && p.TCPFlags == w.tcpFlags &&
		p.Length == w.length && p.IPv6 == w.ipv6 && p.Fragment == w.fragment && p.FragID == w.fragID
}

// TestCorpusAgainstTshark decodes every frame of every corpus capture and
// compares it with the expectation computed from tshark's fields.
func TestCorpusAgainstTshark(t *testing.T) {
	usedExceptions := map[string]bool{}
	total, recorded := 0, 0
	for _, capture := range corpusCaptures(t) {
		name := filepath.Base(capture)
		t.Run(name, func(t *testing.T) {
			rows := readTruth(t, capture+".packets.tsv")
			f, err := os.Open(capture)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var magic [4]byte
			if _, err := io.ReadFull(f, magic[:]); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			pcapng := magic == [4]byte{0x0A, 0x0D, 0x0D, 0x0A}
			r, err := pcapfile.NewReader(f)
			if err != nil {
				if len(rows) != 0 {
					t.Fatalf("reader rejects a capture tshark read %d frames of: %v", len(rows), err)
				}
				return
			}
			frags := NewFragments(1024)
			truthFrags := fragmentTruth{}
			var pkt pcapfile.Packet
			var p Packet
			n := 0 // rows consumed
			for ; ; n++ {
				err := r.Next(&pkt)
				if err == io.EOF {
					break
				}
				var truncated *pcapfile.TruncatedError
				if errors.As(err, &truncated) {
					break // the rest is checked below
				}
				if err != nil {
					t.Fatalf("frame %d: %v", n+1, err)
				}
				// tshark shows pcapng custom blocks as frames without an
				// interface; the reader rightly skips them.
				for pcapng && n < len(rows) && rows[n]["frame.interface_id"] == "" {
					if rows[n]["frame.protocols"] != "data" {
						t.Fatalf("frame %s has no interface but protocols %q", rows[n]["frame.number"], rows[n]["frame.protocols"])
					}
					n++
				}
				if n >= len(rows) {
					t.Fatalf("reader yields more frames than tshark's %d", len(rows))
				}
				row := rows[n]
				if capLen := row["frame.cap_len"]; capLen != strconv.Itoa(int(pkt.CapLen)) {
					t.Fatalf("frame %d: cap_len %d, tshark %s: reader and truth out of step", n+1, pkt.CapLen, capLen)
				}
				link := r.Interfaces()[pkt.Interface].LinkType
				decodeErr := Decode(link, pkt.Data, &p)
				if decodeErr == nil {
					frags.Resolve(&p)
				}
				key := name + "#" + row["frame.number"]
				var chainEnd *uint8
				exception, excepted := corpusExceptions[key]
				if excepted {
					usedExceptions[key] = true
					if _, err := expectation(row, nil); err == nil {
						t.Errorf("%s is listed as an exception (%s) but the row alone gives an expectation; remove it", key, exception.reason)
					}
					chainEnd = &exception.protocol
				}
				want, expErr := expectation(row, chainEnd)
				if expErr == nil {
					truthFrags.resolve(&want)
				}
				total++
				if decodeErr == nil {
					recorded++
				}
				if expErr != nil {
					t.Errorf("frame %s (%s): no expectation: %v", row["frame.number"], row["frame.protocols"], expErr)
					continue
				}
				if !want.matches(decodeErr, &p) {
					t.Errorf("frame %s (%s, link %d):\n got  %+v err=%v\n want %+v", row["frame.number"], row["frame.protocols"], link, p, decodeErr, want)
				}
			}
			// Frames the reader could not deliver (a capture cut inside a
			// record) must be frames that would not be recorded anyway.
			for _, row := range rows[n:] {
				want, err := expectation(row, nil)
				if err != nil || want.recorded {
					t.Errorf("frame %s (%s) is not delivered by the reader but would be recorded", row["frame.number"], row["frame.protocols"])
				}
			}
		})
	}
	for key := range corpusExceptions {
		if !usedExceptions[key] {
			t.Errorf("exception %s names no packet of the corpus", key)
		}
	}
	t.Logf("%d frames decoded, %d recorded", total, recorded)
}

// corpusFrame is one frame of a corpus capture, copied out of the reader.
type corpusFrame struct {
	link uint32
	data []byte
}

// loadCorpusFrames reads up to limit frames (all if limit <= 0) from the
// named capture of the corpus.
func loadCorpusFrames(tb testing.TB, capture string, limit int) []corpusFrame {
	tb.Helper()
	f, err := os.Open(filepath.Join(corpusDir(tb), capture))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := pcapfile.NewReader(f)
	if err != nil {
		return nil // unreadable captures are part of the corpus too
	}
	var frames []corpusFrame
	var pkt pcapfile.Packet
	for limit <= 0 || len(frames) < limit {
		if err := r.Next(&pkt); err != nil {
			break
		}
		frames = append(frames, corpusFrame{
			link: r.Interfaces()[pkt.Interface].LinkType,
			data: append([]byte(nil), pkt.Data...),
		})
	}
	return frames
}
