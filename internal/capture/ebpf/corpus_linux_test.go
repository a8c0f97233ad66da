package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/capture/pcapfile"
	"github.com/flowlog/flowlog/internal/decode"
)

// corpusDir holds the shared captures (../shared/corpora/pcap from the
// repository root).
func corpusDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "corpora", "pcap")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("corpus not found: %v", err)
	}
	return dir
}

// maxRunFrame is the longest frame BPF_PROG_TEST_RUN accepts comfortably
// (a page minus skb head- and tailroom). Longer frames are cut for both the
// kernel and the Go oracle, which then count the length the IP header
// declares, as for any truncated capture.
const maxRunFrame = 3000

// sums is per-key packet/byte/flag totals, the common ground of the kernel
// map and the Go oracle.
type sums struct {
	Packets, Bytes uint64
	Flags          uint8
}

type oracleKey struct {
	Key       flow.Key
	Direction flow.Direction
}

func (s sums) String() string {
	return fmt.Sprintf("%d packets %d bytes flags %d", s.Packets, s.Bytes, s.Flags)
}

// drainSums drains s and adds every delta to a map (windows summed).
func drainSums(t testing.TB, s *Source) (map[oracleKey]sums, map[uint32]uint64) {
	t.Helper()
	got := make(map[oracleKey]sums)
	lost, err := s.Drain(func(d *capture.Delta) {
		k := oracleKey{d.Key, d.Direction}
		v := got[k]
		v.Packets += d.Packets
		v.Bytes += d.Bytes
		v.Flags |= d.TCPFlags
		got[k] = v
		w := int64(s.cfg.Window)
		if d.First/w != d.Last/w || d.First > d.Last {
			t.Errorf("delta %v spans windows or is reversed: first %d last %d", d.Key, d.First, d.Last)
		}
	})
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	return got, lost
}

func diffSums(want, got map[oracleKey]sums) []string {
	var out []string
	for k, w := range want {
		if g := got[k]; g != w {
			out = append(out, fmt.Sprintf("%v %v %v:%d > %v:%d proto %d %v: want %v, kernel %v", k.Key.Interface, k.Direction, k.Key.Src, k.Key.SrcPort, k.Key.Dst, k.Key.DstPort, k.Key.Protocol, k.Key.Action, w, g))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%v %v %v:%d > %v:%d proto %d %v: not expected, kernel %v", k.Key.Interface, k.Direction, k.Key.Src, k.Key.SrcPort, k.Key.Dst, k.Key.DstPort, k.Key.Protocol, k.Key.Action, g))
		}
	}
	sort.Strings(out)
	return out
}

// TestCorpusMatchesDecode runs every Ethernet frame of the shared captures
// through the ingress program with BPF_PROG_TEST_RUN and requires the
// kernel's flow map to hold exactly what internal/decode, Fragments and
// per-key summing give for the same frames: one oracle for the kernel and
// the Go paths.
func TestCorpusMatchesDecode(t *testing.T) {
	requireBPF(t)
	s := newSource(t, Config{})
	const id = 7
	ingress, _ := testPrograms(t, s, id, 0)
	claimSlot(s, id, 0)

	files, err := filepath.Glob(filepath.Join(corpusDir(t), "*.pcap*"))
	if err != nil {
		t.Fatal(err)
	}
	var frames, captures int
	for _, path := range files {
		if strings.HasSuffix(path, ".tsv") || strings.HasSuffix(path, ".txt") {
			continue
		}
		clearFragments(t, s)
		want := make(map[oracleKey]sums)
		n := runCapture(t, path, ingress, id, want)
		if n == 0 {
			continue
		}
		captures++
		frames += n
		got, lost := drainSums(t, s)
		if len(lost) != 0 {
			t.Errorf("%s: lost %v", filepath.Base(path), lost)
		}
		if d := diffSums(want, got); len(d) > 0 {
			t.Errorf("%s: kernel and decode disagree on %d keys:\n%s", filepath.Base(path), len(d), strings.Join(d[:min(len(d), 10)], "\n"))
		}
	}
	if captures < 30 || frames < 100000 {
		t.Errorf("only %d frames of %d captures compared", frames, captures)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Packets + st.NotIP + st.Truncated; got != uint64(frames) {
		t.Errorf("kernel saw %d frames (%+v), ran %d", got, st, frames)
	}
	t.Logf("%d Ethernet frames of %d captures agree; kernel stats %+v", frames, captures, st)
}

// runCapture feeds the Ethernet frames of one capture to prog and adds
// their decoded counts to want. It returns the number of frames run.
func runCapture(t *testing.T, path string, prog *ebpf.Program, id uint32, want map[oracleKey]sums) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapfile.NewReader(f)
	if err != nil {
		return 0 // the corpus holds a few deliberately broken files
	}
	frags := decode.NewFragments(int(s4096))
	var p pcapfile.Packet
	var dp decode.Packet
	n := 0
	for {
		err := r.Next(&p)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Logf("%s: stops early: %v", filepath.Base(path), err)
			}
			break
		}
		if r.Interfaces()[p.Interface].LinkType != decode.LinkEthernet || len(p.Data) < 14 {
			continue
		}
		frame := p.Data[:min(len(p.Data), maxRunFrame)]
		if runRefuses(frame) {
			// BPF_PROG_TEST_RUN wants the whole IP header of an IPv4/IPv6
			// ethertype; decode must not count such a frame either.
			if decode.Decode(decode.LinkEthernet, frame, &dp) == nil {
				t.Errorf("%s: frame of %d bytes decodes, but cannot be run", filepath.Base(path), len(frame))
			}
			continue
		}
		ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			t.Fatalf("%s: run frame %d: %v", filepath.Base(path), n, err)
		}
		if int32(ret) != -1 {
			t.Fatalf("%s: program returned %d, want TC_ACT_UNSPEC", filepath.Base(path), int32(ret))
		}
		n++
		if decode.Decode(decode.LinkEthernet, frame, &dp) != nil {
			continue
		}
		frags.Resolve(&dp)
		k := oracleKey{flow.Key{Interface: id, Src: dp.Src, Dst: dp.Dst, SrcPort: dp.SrcPort, DstPort: dp.DstPort, Protocol: dp.Protocol, Action: flow.ActionAccept}, flow.DirectionIngress}
		v := want[k]
		v.Packets++
		v.Bytes += uint64(dp.Length)
		v.Flags |= flow.ReportedTCPFlags(dp.TCPFlags)
		want[k] = v
	}
	return n
}

const s4096 = 4096

// runRefuses reports frames the kernel's test runner rejects: an IPv4 or
// IPv6 ethertype without the fixed IP header.
func runRefuses(frame []byte) bool {
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case 0x0800:
		return len(frame) < 14+20
	case 0x86DD:
		return len(frame) < 14+40
	}
	return false
}

// skbContext is struct __sk_buff as BPF_PROG_TEST_RUN takes it (192
// bytes); only gso_segs and gso_size are set.
func skbContext(gsoSegs, gsoSize uint32) []byte {
	b := make([]byte, 192)
	binary.LittleEndian.PutUint32(b[164:], gsoSegs)
	binary.LittleEndian.PutUint32(b[176:], gsoSize)
	return b
}

// TestGSOCountsSegments: a GSO skb counts as the packets it becomes on the
// wire, each repeating the IP and TCP/UDP headers.
func TestGSOCountsSegments(t *testing.T) {
	requireBPF(t)
	s := newSource(t, Config{})
	const id = 3
	_, egress := testPrograms(t, s, id, 0)
	claimSlot(s, id, 0)

	// IPv4 + TCP with 12 bytes of options (header 32), 3000 bytes of
	// payload cut into 3 segments of at most 1000.
	tcp4 := ethernet(0x0800, ipv4(6, 20+32+3000, tcpHeader(40000, 443, 0x18, 12)))
	// IPv6 + hop-by-hop (8) + UDP, 2400 bytes of payload in 2 segments.
	udp6 := ethernet(0x86DD, ipv6(0, 8+8+2400, append(hopByHop(17), udpHeader(5353, 53)...)))
	for _, c := range []struct {
		frame []byte
		segs  uint32
	}{{tcp4, 3}, {udp6, 2}} {
		// The frame only needs its headers; the declared length stands
		// for the rest, as for a truncated capture.
		if _, err := egress.Run(&ebpf.RunOptions{Data: c.frame, Context: skbContext(c.segs, 1000)}); err != nil {
			t.Fatalf("run: %v", err)
		}
	}
	got, _ := drainSums(t, s)
	want := map[oracleKey]sums{
		{flow.Key{Interface: id, Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), SrcPort: 40000, DstPort: 443, Protocol: 6, Action: flow.ActionAccept}, flow.DirectionEgress}:    {Packets: 3, Bytes: 3052 + 2*52},
		{flow.Key{Interface: id, Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), SrcPort: 5353, DstPort: 53, Protocol: 17, Action: flow.ActionAccept}, flow.DirectionEgress}: {Packets: 2, Bytes: 40 + 2416 + (40 + 8 + 8)},
	}
	if d := diffSums(want, got); len(d) > 0 {
		t.Errorf("GSO counts:\n%s", strings.Join(d, "\n"))
	}
}

func ethernet(etype uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	binary.BigEndian.PutUint16(b[12:], etype)
	return append(b, payload...)
}

func ipv4(proto uint8, total int, l4 []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2}
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	return append(h, l4...)
}

func ipv6(next uint8, payload int, rest []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(payload))
	h[6] = next
	h[7] = 64
	copy(h[8:], netip.MustParseAddr("2001:db8::1").AsSlice())
	copy(h[24:], netip.MustParseAddr("2001:db8::2").AsSlice())
	return append(h, rest...)
}

func hopByHop(next uint8) []byte {
	return []byte{next, 0, 1, 4, 0, 0, 0, 0} // PadN
}

func tcpHeader(sport, dport uint16, flags uint8, optLen int) []byte {
	h := make([]byte, 20+optLen)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = uint8((20+optLen)/4) << 4
	h[13] = flags
	for i := 20; i < len(h); i++ {
		h[i] = 1 // NOP
	}
	return h
}

func udpHeader(sport, dport uint16) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	return h
}
