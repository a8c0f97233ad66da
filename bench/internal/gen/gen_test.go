package gen

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture/pcapfile"
	"github.com/flowlog/flowlog/internal/decode"
)

func smallConfig() Config {
	return Config{Packets: 60_000, Flows: 3_000, IPv6: 0.3, Seed: 7, Duration: 600 * time.Second}
}

func TestValidate(t *testing.T) {
	good := smallConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no flows", func(c *Config) { c.Flows = 0 }, "flows 0"},
		{"too many flows", func(c *Config) { c.Flows = MaxFlows + 1; c.Packets = MaxFlows + 1 }, "flows 16777217"},
		{"fewer packets than flows", func(c *Config) { c.Packets = c.Flows - 1 }, "packets 2999"},
		{"negative v6", func(c *Config) { c.IPv6 = -0.1 }, "ipv6 fraction"},
		{"v6 above 1", func(c *Config) { c.IPv6 = 1.5 }, "ipv6 fraction"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"tiny snaplen", func(c *Config) { c.SnapLen = 40 }, "snaplen 40"},
		{"before 1970", func(c *Config) { c.Start = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "start"},
	}
	for _, tc := range cases {
		c := good
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tc.name, err, tc.want)
		}
		if _, gerr := Generate(c, func(int64, []byte, uint32) error { return nil }); gerr == nil {
			t.Errorf("%s: Generate accepted the config", tc.name)
		}
	}
}

func digest(t *testing.T, cfg Config) ([32]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := WritePcap(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(buf.Bytes()), st
}

func TestDeterministic(t *testing.T) {
	cfg := smallConfig()
	a, sa := digest(t, cfg)
	b, sb := digest(t, cfg)
	if a != b || sa != sb {
		t.Fatalf("same config gave different captures: %x vs %x", a, b)
	}
	cfg.Seed++
	c, _ := digest(t, cfg)
	if a == c {
		t.Fatalf("seeds %d and %d gave the same capture", cfg.Seed-1, cfg.Seed)
	}
}

// flowFacts is what decoding the capture says about one unidirectional flow.
type flowFacts struct {
	packets, bytes uint64
	firstFlags     uint8
	flags          uint8
}

// TestCaptureContents reads the written file back with the project's own
// reader and decoder and checks it against the configuration and Stats.
func TestCaptureContents(t *testing.T) {
	cfg := smallConfig()
	path := filepath.Join(t.TempDir(), "gen.pcap")
	st, err := WriteFile(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v, want 0644", fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapfile.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if lt := rd.Interfaces()[0].LinkType; lt != decode.LinkEthernet {
		t.Fatalf("link type %d, want Ethernet", lt)
	}

	start := DefaultStart.UnixNano()
	end := start + cfg.Duration.Nanoseconds()
	var (
		pkt                    pcapfile.Packet
		dp                     decode.Packet
		n, wire, ipBytes, v6   uint64
		tcp, udp, icmp, capped uint64
		prev                   int64
		flows                  = map[flow.Key]*flowFacts{}
		conversations          = map[[2]netip.AddrPort]bool{}
	)
	for {
		err := rd.Next(&pkt)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if pkt.Timestamp < prev || pkt.Timestamp < start-1000 || pkt.Timestamp >= end {
			t.Fatalf("packet %d: timestamp %d out of order or outside [%d, %d)", n, pkt.Timestamp, start, end)
		}
		prev = pkt.Timestamp
		if pkt.OrigLen < 60 || pkt.OrigLen > 1514 {
			t.Fatalf("packet %d: wire length %d outside 60..1514", n, pkt.OrigLen)
		}
		if pkt.CapLen != min(pkt.OrigLen, DefaultSnapLen) {
			t.Fatalf("packet %d: captured %d of %d bytes, want min(wire, %d)", n, pkt.CapLen, pkt.OrigLen, DefaultSnapLen)
		}
		if pkt.CapLen < pkt.OrigLen {
			capped++
		}
		wire += uint64(pkt.OrigLen)
		if err := decode.Decode(decode.LinkEthernet, pkt.Data, &dp); err != nil {
			t.Fatalf("packet %d: %v", n, err)
		}
		hdr := uint32(14 + 20)
		if dp.IPv6 {
			v6++
			hdr = 14 + 40
		}
		if dp.Length != pkt.OrigLen-14 {
			t.Fatalf("packet %d: IP length %d, want wire length %d - 14", n, dp.Length, pkt.OrigLen)
		}
		ipBytes += uint64(dp.Length)
		switch dp.Protocol {
		case 6:
			tcp++
			if doff := uint32(pkt.Data[hdr+12]>>4) * 4; doff != 32 && doff != 40 {
				t.Fatalf("packet %d: TCP data offset %d", n, doff)
			}
		case 17:
			udp++
		case 1, 58:
			icmp++
			if dp.IPv6 != (dp.Protocol == 58) {
				t.Fatalf("packet %d: protocol %d over IPv6=%v", n, dp.Protocol, dp.IPv6)
			}
		default:
			t.Fatalf("packet %d: protocol %d", n, dp.Protocol)
		}
		if !dp.IPv6 && ipChecksum(pkt.Data[14:34]) != 0 {
			t.Fatalf("packet %d: bad IPv4 header checksum", n)
		}
		k := flow.Key{Src: dp.Src, Dst: dp.Dst, SrcPort: dp.SrcPort, DstPort: dp.DstPort, Protocol: dp.Protocol}
		ff := flows[k]
		if ff == nil {
			ff = &flowFacts{firstFlags: dp.TCPFlags}
			flows[k] = ff
		}
		ff.packets++
		ff.bytes += uint64(dp.Length)
		ff.flags |= dp.TCPFlags
		a, b := netip.AddrPortFrom(dp.Src, dp.SrcPort), netip.AddrPortFrom(dp.Dst, dp.DstPort)
		if b.Addr().Less(a.Addr()) {
			a, b = b, a
		}
		conversations[[2]netip.AddrPort{a, b}] = true
	}

	if n != uint64(cfg.Packets) || st.Packets != n {
		t.Errorf("read %d packets, Stats %d, config %d", n, st.Packets, cfg.Packets)
	}
	if got := uint64(len(conversations)); got != uint64(cfg.Flows) || st.Conversations != got {
		t.Errorf("%d conversations in the capture, Stats %d, config %d", got, st.Conversations, cfg.Flows)
	}
	if got := uint64(len(flows)); got != st.Keys {
		t.Errorf("%d unidirectional flows in the capture, Stats %d", got, st.Keys)
	}
	if wire != st.WireBytes || ipBytes != st.IPBytes {
		t.Errorf("wire/IP bytes %d/%d, Stats %d/%d", wire, ipBytes, st.WireBytes, st.IPBytes)
	}
	if tcp != st.TCP || udp != st.UDP || icmp != st.ICMP || v6 != st.IPv6 {
		t.Errorf("TCP/UDP/ICMP/IPv6 packets %d/%d/%d/%d, Stats %d/%d/%d/%d", tcp, udp, icmp, v6, st.TCP, st.UDP, st.ICMP, st.IPv6)
	}
	// The mix the package documents, with slack for a 3 000 flow sample.
	if share := float64(tcp) / float64(n); share < 0.6 || share > 0.95 {
		t.Errorf("TCP share of packets %.2f", share)
	}
	if udp == 0 || icmp == 0 {
		t.Errorf("no UDP (%d) or no ICMP (%d) packets", udp, icmp)
	}
	if share := float64(v6) / float64(n); share < 0.15 || share > 0.45 {
		t.Errorf("IPv6 share of packets %.2f with IPv6 = %v of conversations", share, cfg.IPv6)
	}
	if capped == 0 || capped == n {
		t.Errorf("%d of %d frames cut at the snapshot length: want a mix of sizes", capped, n)
	}

	// TCP: every client flow opens with a SYN; every answered one sees a
	// SYN-ACK from the server; most flows close with FIN, some with RST.
	var clients, synAcks, fins, rsts int
	for k, ff := range flows {
		if k.Protocol != 6 {
			continue
		}
		if k.DstPort == 443 || k.DstPort == 80 || k.DstPort == 22 {
			clients++
			if ff.firstFlags != syn {
				t.Fatalf("client flow %v starts with flags %#x, want SYN", k, ff.firstFlags)
			}
		} else if ff.flags&syn != 0 {
			synAcks++
			if ff.firstFlags != syn|ack {
				t.Fatalf("server flow %v starts with flags %#x, want SYN-ACK", k, ff.firstFlags)
			}
		}
		if ff.flags&fin != 0 {
			fins++
		}
		if ff.flags&rst != 0 {
			rsts++
		}
	}
	if clients == 0 || synAcks == 0 || fins == 0 || rsts == 0 || rsts > fins {
		t.Errorf("TCP flows: %d clients, %d SYN-ACKs, %d with FIN, %d with RST", clients, synAcks, fins, rsts)
	}
}

func TestPacketCounts(t *testing.T) {
	cfg := smallConfig()
	g := newGenerator(cfg)
	total, maxCount := 0, int32(0)
	short := 0
	for _, c := range g.convs {
		total += int(c.total)
		maxCount = max(maxCount, c.total)
		if c.total < 7 {
			short++
		}
		if c.total < 1 {
			t.Fatalf("conversation %d has %d packets", c.index, c.total)
		}
	}
	if total != cfg.Packets {
		t.Fatalf("counts sum to %d, want %d", total, cfg.Packets)
	}
	mean := cfg.Packets / cfg.Flows
	if maxCount < int32(10*mean) || maxCount > int32(cfg.Packets/10) {
		t.Errorf("largest conversation %d packets: want a heavy tail above %d and at most a tenth of the packets", maxCount, 10*mean)
	}
	if short == 0 {
		t.Error("no conversation shorter than a full TCP exchange")
	}
	// Packets = Flows: every conversation gets exactly one packet.
	for _, c := range newGenerator(Config{Packets: 500, Flows: 500, Duration: time.Second}).convs {
		if c.total != 1 {
			t.Fatalf("with as many packets as flows, conversation %d has %d", c.index, c.total)
		}
	}
}

func TestInMemoryMatchesFile(t *testing.T) {
	cfg := smallConfig()
	cfg.Packets, cfg.Flows = 5_000, 400
	frames, st, err := InMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := WritePcap(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	rd, err := pcapfile.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if frames.Len() != int(st.Packets) {
		t.Fatalf("%d frames, Stats %d", frames.Len(), st.Packets)
	}
	var pkt pcapfile.Packet
	for i := range frames.Len() {
		if err := rd.Next(&pkt); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		// The file has microsecond timestamps.
		if pkt.Timestamp != frames.Times[i]/1000*1000 || !bytes.Equal(pkt.Data, frames.Frame(i)) {
			t.Fatalf("frame %d differs between memory and file", i)
		}
	}
}

func TestGenerateStopsOnEmitError(t *testing.T) {
	calls := 0
	stop := io.ErrShortWrite
	_, err := Generate(smallConfig(), func(int64, []byte, uint32) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 10 {
		t.Fatalf("Generate returned %v after %d calls, want %v after 10", err, calls, stop)
	}
}

// TestRoundRobinIsThePassLoop checks roundRobin against the pass-by-pass
// loop it replaces, so captures generated before keep their bytes.
func TestRoundRobinIsThePassLoop(t *testing.T) {
	passLoop := func(counts []int32, packets, total int, limit int64) {
		for i := 0; total != packets; i = (i + 1) % len(counts) {
			switch {
			case total < packets && int64(counts[i]) < limit:
				counts[i]++
				total++
			case total > packets && counts[i] > 1:
				counts[i]--
				total--
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 2000 {
		flows := 1 + rng.IntN(40)
		limit := int64(1 + rng.IntN(30))
		counts := make([]int32, flows)
		total := 0
		for i := range counts {
			counts[i] = int32(1 + rng.Int64N(limit))
			total += int(counts[i])
		}
		packets := flows + rng.IntN(flows*int(limit)-flows+1) // reachable
		want := slices.Clone(counts)
		passLoop(want, packets, total, limit)
		got := slices.Clone(counts)
		switch {
		case total < packets:
			roundRobin(got, packets-total, +1, func(c int32) int64 { return limit - int64(c) })
		case total > packets:
			roundRobin(got, total-packets, -1, func(c int32) int64 { return int64(c) - 1 })
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: counts %v to %d packets (limit %d): got %v, want %v", trial, counts, packets, limit, got, want)
		}
	}
}
