// Package gen owns the synthetic traffic the read-path benchmarks run on:
// Ethernet frames of TCP, UDP and ICMP conversations over IPv4 and IPv6,
// with TCP handshakes and closes, realistic frame sizes, a heavy-tailed
// number of packets per conversation, and timestamps spread over a given
// duration, all deterministic for a seed.
//
// Only the first SnapLen bytes of each frame are produced (the headers and
// the start of the payload, zeros), with the real wire length alongside, so
// a capture of millions of packets stays small while every length field
// describes the full frame.
package gen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/flowlog/flowlog/internal/capture/pcapfile"
)

// Config describes the traffic to generate.
type Config struct {
	// Packets is the exact number of frames.
	Packets int
	// Flows is the number of conversations (distinct 5-tuples). Most yield
	// two unidirectional flow records (one per direction); unanswered ones
	// yield one. Stats.Keys counts the unidirectional flows.
	Flows int
	// IPv6 is the fraction of conversations carried over IPv6, 0 to 1.
	IPv6 float64
	// Seed selects the traffic; the same Config gives the same bytes.
	Seed uint64
	// Start is the time of the first possible packet; the zero value means
	// DefaultStart.
	Start time.Time
	// Duration is the span over which packets are spread; every timestamp
	// lies in [Start, Start+Duration).
	Duration time.Duration
	// SnapLen is how many bytes of each frame are produced (at least
	// MinSnapLen); 0 means DefaultSnapLen.
	SnapLen int
}

const (
	// DefaultSnapLen covers every header the generator writes with room to
	// spare, while keeping a 5 M packet capture near 0.7 GB.
	DefaultSnapLen = 128
	// MinSnapLen is the longest header stack the generator writes: Ethernet,
	// IPv6 and a TCP SYN with options.
	MinSnapLen = ethLen + ipv6Len + tcpSynLen
	// MaxFlows is the number of distinct client addresses per family.
	MaxFlows = 1 << 24
)

// Version identifies the generator's output: it changes whenever the same
// Config would give different bytes, so cached captures can be named by it.
const Version = 1

// DefaultStart is aligned to both aggregation intervals (60 s and 600 s), so
// a capture of Duration 600 s fills exactly one 600 s window.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Validate reports the first unusable setting, naming it.
func (c Config) Validate() error {
	switch {
	case c.Flows < 1:
		return fmt.Errorf("flows %d: want at least 1", c.Flows)
	case c.Flows > MaxFlows:
		return fmt.Errorf("flows %d: want at most %d", c.Flows, MaxFlows)
	case c.Packets < c.Flows:
		return fmt.Errorf("packets %d: want at least one per flow (%d flows)", c.Packets, c.Flows)
	case c.Packets > math.MaxInt32:
		return fmt.Errorf("packets %d: want at most %d", c.Packets, math.MaxInt32)
	case c.IPv6 < 0 || c.IPv6 > 1 || math.IsNaN(c.IPv6):
		return fmt.Errorf("ipv6 fraction %v: want 0 to 1", c.IPv6)
	case c.Duration < time.Millisecond:
		return fmt.Errorf("duration %v: want at least 1ms", c.Duration)
	case c.SnapLen != 0 && c.SnapLen < MinSnapLen:
		return fmt.Errorf("snaplen %d: want at least %d (the longest header stack)", c.SnapLen, MinSnapLen)
	case c.SnapLen > 65535:
		return fmt.Errorf("snaplen %d: want at most 65535", c.SnapLen)
	}
	start := c.start()
	if start.Unix() < 0 || start.Add(c.Duration).Unix() > math.MaxUint32 {
		return fmt.Errorf("start %v + duration %v: outside the pcap time range (1970 to 2106)", start, c.Duration)
	}
	return nil
}

// FileName names a capture of c by every setting and the generator
// version, so a cached file is reused only for the same bytes.
func (c Config) FileName() string {
	name := fmt.Sprintf("gen-v%d-p%d-f%d-v6_%g-s%d-d%s", Version, c.Packets, c.Flows, c.IPv6, c.Seed, c.Duration)
	if !c.Start.IsZero() && !c.Start.Equal(DefaultStart) {
		name += "-t" + strconv.FormatInt(c.Start.UnixNano(), 10)
	}
	if c.SnapLen != 0 && c.SnapLen != DefaultSnapLen {
		name += "-snap" + strconv.Itoa(c.SnapLen)
	}
	return name + ".pcap"
}

func (c Config) start() time.Time {
	if c.Start.IsZero() {
		return DefaultStart
	}
	return c.Start
}

func (c Config) snapLen() int {
	if c.SnapLen == 0 {
		return DefaultSnapLen
	}
	return c.SnapLen
}

// Stats describe what was generated; the expected outcome of reading the
// capture follows from them.
type Stats struct {
	Packets       uint64
	Conversations uint64
	// Keys counts unidirectional flows: conversations that sent packets in
	// both directions count twice.
	Keys          uint64
	TCP, UDP      uint64 // packets
	ICMP          uint64 // packets, ICMP and ICMPv6
	IPv6          uint64 // packets over IPv6
	WireBytes     uint64 // sum of frame lengths on the wire
	IPBytes       uint64 // sum of IP lengths, what flow records count as bytes
	CapturedBytes uint64 // sum of the bytes produced per frame
	First, Last   int64  // timestamps (Unix ns) of the first and last packet
}

// EmitFunc receives one frame: its timestamp in Unix nanoseconds, its first
// bytes (valid only during the call) and its length on the wire.
type EmitFunc func(tsNanos int64, frame []byte, wireLen uint32) error

// Generate produces the frames of cfg in timestamp order and hands each to
// emit. It stops at the first error emit returns.
func Generate(cfg Config, emit EmitFunc) (Stats, error) {
	var st Stats
	if err := cfg.Validate(); err != nil {
		return st, err
	}
	g := newGenerator(cfg)
	buf := make([]byte, cfg.snapLen())
	for len(g.queue) > 0 {
		c := &g.convs[g.queue[0].conv]
		ts := g.queue[0].at
		pk := g.next(c)
		hdr := g.frame(buf, c, pk)
		capLen := min(int(pk.wireLen), len(buf))
		clear(buf[hdr:capLen])
		if err := emit(ts, buf[:capLen], pk.wireLen); err != nil {
			return st, err
		}
		st.count(c, pk, ts, capLen)
		c.sent++
		if c.sent == c.total {
			g.queue.popMin()
			st.Conversations++
			st.Keys++
			if c.answered {
				st.Keys++
			}
			continue
		}
		g.queue[0].at = c.timeOf(c.sent)
		g.queue.down(0)
	}
	return st, nil
}

func (st *Stats) count(c *conv, pk packet, ts int64, capLen int) {
	if st.Packets == 0 {
		st.First = ts
	}
	st.Last = ts
	st.Packets++
	switch c.proto {
	case protoTCP:
		st.TCP++
	case protoUDP:
		st.UDP++
	default:
		st.ICMP++
	}
	if c.v6 {
		st.IPv6++
	}
	st.WireBytes += uint64(pk.wireLen)
	st.IPBytes += uint64(pk.ipLen)
	st.CapturedBytes += uint64(capLen)
}

// WritePcap writes the frames of cfg to w as a classic microsecond pcap
// with Ethernet link type and the configured snapshot length.
func WritePcap(w io.Writer, cfg Config) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	pw, err := pcapfile.NewWriter(bw, linkEthernet, uint32(cfg.snapLen()), false)
	if err != nil {
		return Stats{}, err
	}
	st, err := Generate(cfg, pw.WritePacket)
	if err != nil {
		return st, err
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write pcap: %w", err)
	}
	return st, nil
}

// WriteFile writes the capture of cfg (see WritePcap) to a temporary file
// beside path and renames it into place, so an interrupted run never
// leaves a short file under the final name.
func WriteFile(path string, cfg Config) (Stats, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return Stats{}, err
	}
	defer os.Remove(f.Name())
	st, err := WritePcap(f, cfg)
	if err != nil {
		f.Close()
		return st, fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file private; a capture is for everyone to read.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return st, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return st, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return st, err
	}
	return st, nil
}

// Frames is a set of frames held in memory: frame i is
// Data[Offsets[i]:Offsets[i+1]], taken at Times[i] (Unix ns).
type Frames struct {
	Data    []byte
	Offsets []uint32
	Times   []int64
}

// Len is the number of frames.
func (f *Frames) Len() int { return len(f.Times) }

// Frame returns frame i.
func (f *Frames) Frame(i int) []byte { return f.Data[f.Offsets[i]:f.Offsets[i+1]] }

// Append adds one frame, copying data.
func (f *Frames) Append(tsNanos int64, data []byte) error {
	if len(f.Offsets) == 0 {
		f.Offsets = append(f.Offsets, 0)
	}
	if uint64(len(f.Data))+uint64(len(data)) > math.MaxUint32 {
		return errors.New("append frame: frame set exceeds 4 GiB")
	}
	f.Data = append(f.Data, data...)
	f.Offsets = append(f.Offsets, uint32(len(f.Data)))
	f.Times = append(f.Times, tsNanos)
	return nil
}

// InMemory generates cfg into a Frames.
func InMemory(cfg Config) (*Frames, Stats, error) {
	if err := cfg.Validate(); err != nil {
		return nil, Stats{}, err
	}
	f := &Frames{
		Data:    make([]byte, 0, cfg.Packets*min(cfg.snapLen(), 100)),
		Offsets: make([]uint32, 0, cfg.Packets+1),
		Times:   make([]int64, 0, cfg.Packets),
	}
	st, err := Generate(cfg, func(ts int64, data []byte, _ uint32) error { return f.Append(ts, data) })
	return f, st, err
}

// Protocols and applications of a conversation.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58

	linkEthernet = 1
)

type app uint8

const (
	appHTTPS  app = iota // TCP 443
	appHTTP              // TCP 80
	appSSH               // TCP 22
	appDNS               // UDP 53
	appQUIC              // UDP 443
	appNTP               // UDP 123
	appSyslog            // UDP 514, one way
	appPing              // ICMP echo
)

// conv is one conversation. Its packet k is sent at start + k*gap + a
// jitter below gap/2, so its timestamps increase and end before the
// capture does.
type conv struct {
	start, gap int64
	jitter     uint64 // seed of the per-packet jitter
	total      int32
	sent       int32
	index      uint32 // conversation number; determines the client address
	server     uint16 // index into the server pool
	clientPort uint16
	proto      uint8
	app        app
	v6         bool
	answered   bool // the server sends at least one packet
	rst        bool // TCP: ends with a reset instead of FIN
	cseq, sseq uint32
	cid, sid   uint16 // IPv4 identification counters
}

func (c *conv) timeOf(k int32) int64 {
	t := c.start + int64(k)*c.gap
	if half := uint64(c.gap / 2); half > 0 {
		t += int64(splitmix(c.jitter+uint64(k)) % half)
	}
	return t
}

// splitmix is a stateless hash for per-packet jitter, so packets need no
// random state of their own.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// packet is what the next frame of a conversation looks like.
type packet struct {
	fromServer bool
	tcpFlags   uint8
	icmpType   uint8
	payload    int    // bytes after the L4 header
	ipLen      int    // IP header to the end of the payload
	wireLen    uint32 // ipLen plus Ethernet, padded to the Ethernet minimum
}

// TCP flags.
const (
	fin = 0x01
	syn = 0x02
	rst = 0x04
	psh = 0x08
	ack = 0x10
)

// Header lengths.
const (
	ethLen    = 14
	ipv4Len   = 20
	ipv6Len   = 40
	tcpSynLen = 40 // with MSS, SACK-permitted, timestamps, window scale
	tcpLen    = 32 // with timestamps
	udpLen    = 8
	icmpLen   = 8
	minFrame  = 60 // Ethernet minimum without FCS; shorter frames are padded
	// Full-size TCP segments fill a 1500-byte MTU: payload after IPv4 (or
	// IPv6) and a TCP header with timestamps.
	segment4 = 1500 - ipv4Len - tcpLen
	segment6 = 1500 - ipv6Len - tcpLen
)

type generator struct {
	convs    []conv
	queue    convQueue
	servers4 [][4]byte
	servers6 [][16]byte
	rng      *rand.Rand
}

const serverPool = 4096

func newGenerator(cfg Config) *generator {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x666c6f776c6f67)) // "flowlog"
	g := &generator{
		convs:    make([]conv, cfg.Flows),
		servers4: make([][4]byte, serverPool),
		servers6: make([][16]byte, serverPool),
		rng:      rng,
	}
	// Servers in the benchmarking ranges 198.18.0.0/15 and 2001:db8::/32,
	// so no address is one AWS excludes from flow logs.
	for i := range g.servers4 {
		v := i*31 + 1 // distinct addresses spread over the /15
		g.servers4[i] = [4]byte{198, 18 + byte(v>>16), byte(v >> 8), byte(v)}
		s := &g.servers6[i]
		copy(s[:], []byte{0x20, 0x01, 0x0d, 0xb8})
		binary.BigEndian.PutUint64(s[8:], rng.Uint64())
		binary.BigEndian.PutUint16(s[4:], uint16(i))
	}
	counts := packetCounts(rng, cfg.Packets, cfg.Flows)
	span := cfg.Duration.Nanoseconds()
	origin := cfg.start().UnixNano()
	g.queue = make(convQueue, 0, cfg.Flows)
	for i := range g.convs {
		c := &g.convs[i]
		c.index = uint32(i)
		c.total = counts[i]
		c.v6 = rng.Float64() < cfg.IPv6
		c.server = uint16(zipfish(rng, serverPool))
		c.clientPort = uint16(32768 + rng.IntN(28232))
		c.jitter = rng.Uint64()
		c.cseq, c.sseq = rng.Uint32(), rng.Uint32()
		c.cid, c.sid = uint16(rng.Uint32()), uint16(rng.Uint32())
		c.app, c.proto = pickApp(rng)
		if c.v6 && c.proto == protoICMP {
			c.proto = protoICMPv6
		}
		c.answered = c.total > 1 && c.app != appSyslog
		c.rst = rng.IntN(10) == 0
		// Start anywhere in the span; live for a time that grows with the
		// packet count, cut at the end of the span.
		offset := rng.Int64N(span)
		life := int64(float64(c.total) * (1 + rng.ExpFloat64()) * 50e6) // ~100 ms per packet
		life = min(life, span-offset)
		c.start = origin + offset
		c.gap = max(life/int64(c.total), 0)
		g.queue = append(g.queue, queued{at: c.timeOf(0), conv: uint32(i)})
	}
	for i := len(g.queue)/2 - 1; i >= 0; i-- {
		g.queue.down(i)
	}
	return g
}

// pickApp draws an application: about 78% TCP, 19% UDP, 3% ICMP of the
// conversations.
func pickApp(rng *rand.Rand) (app, uint8) {
	switch r := rng.IntN(100); {
	case r < 55:
		return appHTTPS, protoTCP
	case r < 72:
		return appHTTP, protoTCP
	case r < 78:
		return appSSH, protoTCP
	case r < 87:
		return appDNS, protoUDP
	case r < 93:
		return appQUIC, protoUDP
	case r < 95:
		return appNTP, protoUDP
	case r < 97:
		return appSyslog, protoUDP
	}
	return appPing, protoICMP
}

// zipfish draws an index in [0, n) where low indexes are much more likely,
// so a few servers see most conversations, as in real traffic.
func zipfish(rng *rand.Rand, n int) int {
	return int(float64(n) * math.Pow(rng.Float64(), 3))
}

// packetCounts splits packets over flows, at least one each, with a
// heavy tail (Pareto, alpha 1.2): most conversations are short, a few are
// long, and no single one takes more than a tenth of the packets.
func packetCounts(rng *rand.Rand, packets, flows int) []int32 {
	weights := make([]float64, flows)
	var sum float64
	for i := range weights {
		weights[i] = math.Pow(1-rng.Float64(), -1/1.2)
		sum += weights[i]
	}
	counts := make([]int32, flows)
	limit := max(int64(packets/10), 1)
	total := 0
	for i, w := range weights {
		n := int64(w / sum * float64(packets))
		n = min(max(n, 1), limit)
		counts[i] = int32(n)
		total += int(n)
	}
	// Hand out (or take back) the rounding remainder one packet at a time,
	// round robin from the first conversation, keeping every count between
	// 1 and the limit.
	switch {
	case total < packets:
		roundRobin(counts, packets-total, +1, func(c int32) int64 { return limit - int64(c) })
	case total > packets:
		roundRobin(counts, total-packets, -1, func(c int32) int64 { return int64(c) - 1 })
	}
	return counts
}

// roundRobin moves n packets by step (+1 or -1) over counts, passing over
// them in order again and again, one packet per count and pass while room
// (of the count as it was) allows. It does in O(flows · log) what the
// pass-by-pass loop does in O(flows · passes): with a million
// single-packet conversations that loop takes minutes.
func roundRobin(counts []int32, n int, step int32, room func(int32) int64) {
	rooms := make([]int64, len(counts))
	var most int64
	for i, c := range counts {
		rooms[i] = room(c)
		most = max(most, rooms[i])
	}
	moved := func(passes int64) int64 {
		var m int64
		for _, r := range rooms {
			m += min(r, passes)
		}
		return m
	}
	// passes: the full passes made before the one where n is reached.
	passes := int64(sort.Search(int(most)+1, func(k int) bool { return moved(int64(k)) >= int64(n) }))
	if passes > 0 {
		passes--
	}
	left := int64(n) - moved(passes)
	for i, r := range rooms {
		k := min(r, passes)
		if r > passes && left > 0 {
			k++
			left--
		}
		counts[i] += step * int32(k)
	}
}

// next decides the packet a conversation sends next.
func (g *generator) next(c *conv) packet {
	var p packet
	k, n := c.sent, c.total
	switch c.proto {
	case protoTCP:
		p = tcpPacket(c, k, n)
	case protoUDP:
		p = udpPacket(c, k)
	default:
		p.fromServer = k%2 == 1
		p.icmpType = 8 // echo request
		if c.proto == protoICMPv6 {
			p.icmpType = 128
		}
		if p.fromServer {
			p.icmpType = 0
			if c.proto == protoICMPv6 {
				p.icmpType = 129
			}
		}
		p.payload = 56
	}
	p.ipLen = ipv4Len + p.payload
	if c.v6 {
		p.ipLen = ipv6Len + p.payload
	}
	switch c.proto {
	case protoTCP:
		p.ipLen += tcpLen
		if p.tcpFlags&syn != 0 {
			p.ipLen += tcpSynLen - tcpLen
		}
	case protoUDP:
		p.ipLen += udpLen
	default:
		p.ipLen += icmpLen
	}
	p.wireLen = uint32(max(ethLen+p.ipLen, minFrame))
	return p
}

// tcpPacket is packet k of n of a TCP conversation: handshake, data, close.
// Conversations too short for all of it are unanswered SYNs (n = 1),
// refused connections (SYN, RST) or connections cut by a reset.
func tcpPacket(c *conv, k, n int32) packet {
	var p packet
	switch {
	case n == 1:
		p.tcpFlags = syn
	case n == 2:
		if k == 0 {
			p.tcpFlags = syn
		} else {
			p.fromServer, p.tcpFlags = true, rst|ack
		}
	case k == 0:
		p.tcpFlags = syn
	case k == 1:
		p.fromServer, p.tcpFlags = true, syn|ack
	case k == 2:
		p.tcpFlags = ack
	case n < 7 || c.rst:
		if k == n-1 {
			p.tcpFlags = rst | ack
			p.fromServer = splitmix(c.jitter^0x5253)&1 == 1
			break
		}
		p = tcpData(c, k)
	case k == n-3:
		p.tcpFlags = fin | ack
	case k == n-2:
		p.fromServer, p.tcpFlags = true, fin|ack
	case k == n-1:
		p.tcpFlags = ack
	default:
		p = tcpData(c, k)
	}
	return p
}

// tcpData is a data-phase packet: every eighth a client request, the
// others mostly full-size server segments with client ACKs between them.
func tcpData(c *conv, k int32) packet {
	var p packet
	h := splitmix(c.jitter ^ uint64(k)<<20)
	switch {
	case k%8 == 3:
		p.tcpFlags = psh | ack
		p.payload = 60 + int(h%700)
	case h%3 == 0:
		p.tcpFlags = ack
	default:
		p.fromServer, p.tcpFlags = true, ack
		p.payload = segment4
		if c.v6 {
			p.payload = segment6
		}
		if h%5 == 0 {
			p.tcpFlags |= psh
			p.payload = 1 + int(h>>8%uint64(p.payload))
		}
	}
	return p
}

// udpPacket is packet k of a UDP conversation.
func udpPacket(c *conv, k int32) packet {
	var p packet
	h := splitmix(c.jitter ^ uint64(k)<<20)
	p.fromServer = c.answered && k%2 == 1
	switch c.app {
	case appDNS:
		p.payload = 28 + int(h%40)
		if p.fromServer {
			p.payload = 60 + int(h%440)
		}
	case appQUIC:
		p.payload = 1252
		if h%4 == 0 {
			p.payload = 30 + int(h>>8%100)
		}
	case appNTP:
		p.payload = 48
	default:
		p.payload = 40 + int(h%400)
	}
	return p
}

// frame writes the headers of p into buf and returns their length.
func (g *generator) frame(buf []byte, c *conv, p packet) int {
	// Ethernet: locally administered MACs derived from the endpoints.
	var cmac, smac [6]byte
	cmac[0], smac[0] = 0x02, 0x02
	binary.BigEndian.PutUint32(cmac[2:], c.index)
	binary.BigEndian.PutUint32(smac[2:], 0xffff0000|uint32(c.server))
	src, dst := cmac, smac
	if p.fromServer {
		src, dst = smac, cmac
	}
	copy(buf[0:6], dst[:])
	copy(buf[6:12], src[:])
	off := ethLen
	l4Len := 0
	if c.v6 {
		binary.BigEndian.PutUint16(buf[12:], 0x86dd)
		binary.BigEndian.PutUint32(buf[off:], 0x60000000|c.index&0xfffff)
		l4Len = p.ipLen - ipv6Len
		binary.BigEndian.PutUint16(buf[off+4:], uint16(l4Len))
		buf[off+6] = c.proto
		buf[off+7] = 64
		client, server := g.client6(c), g.servers6[c.server]
		if p.fromServer {
			copy(buf[off+8:], server[:])
			copy(buf[off+24:], client[:])
		} else {
			copy(buf[off+8:], client[:])
			copy(buf[off+24:], server[:])
		}
		off += ipv6Len
	} else {
		binary.BigEndian.PutUint16(buf[12:], 0x0800)
		h := buf[off : off+ipv4Len]
		h[0], h[1] = 0x45, 0
		binary.BigEndian.PutUint16(h[2:], uint16(p.ipLen))
		id := &c.cid
		if p.fromServer {
			id = &c.sid
		}
		*id++
		binary.BigEndian.PutUint16(h[4:], *id)
		binary.BigEndian.PutUint16(h[6:], 0x4000) // don't fragment
		h[8] = 64
		if p.fromServer {
			h[8] = 52
		}
		h[9] = c.proto
		h[10], h[11] = 0, 0
		client, server := g.client4(c), g.servers4[c.server]
		if p.fromServer {
			copy(h[12:], server[:])
			copy(h[16:], client[:])
		} else {
			copy(h[12:], client[:])
			copy(h[16:], server[:])
		}
		binary.BigEndian.PutUint16(h[10:], ipChecksum(h))
		l4Len = p.ipLen - ipv4Len
		off += ipv4Len
	}
	sport, dport := c.clientPort, c.serverPort()
	if p.fromServer {
		sport, dport = dport, sport
	}
	switch c.proto {
	case protoTCP:
		return off + g.tcp(buf[off:], c, p, sport, dport)
	case protoUDP:
		binary.BigEndian.PutUint16(buf[off:], sport)
		binary.BigEndian.PutUint16(buf[off+2:], dport)
		binary.BigEndian.PutUint16(buf[off+4:], uint16(l4Len))
		binary.BigEndian.PutUint16(buf[off+6:], 0)
		return off + udpLen
	default:
		buf[off], buf[off+1] = p.icmpType, 0
		binary.BigEndian.PutUint16(buf[off+2:], 0)
		binary.BigEndian.PutUint16(buf[off+4:], uint16(c.index))
		binary.BigEndian.PutUint16(buf[off+6:], uint16(c.sent/2))
		return off + icmpLen
	}
}

func (g *generator) tcp(b []byte, c *conv, p packet, sport, dport uint16) int {
	seq, peer := &c.cseq, &c.sseq
	if p.fromServer {
		seq, peer = peer, seq
	}
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], *seq)
	ackNo := uint32(0)
	if p.tcpFlags&ack != 0 {
		ackNo = *peer
	}
	binary.BigEndian.PutUint32(b[8:], ackNo)
	n := tcpLen
	if p.tcpFlags&syn != 0 {
		n = tcpSynLen
	}
	b[12] = byte(n/4) << 4
	b[13] = p.tcpFlags
	binary.BigEndian.PutUint16(b[14:], 502) // window (scaled)
	binary.BigEndian.PutUint32(b[16:], 0)   // checksum, urgent pointer
	opt := b[20:n]
	ts := uint32(c.timeOf(c.sent) / 1e6)
	if p.tcpFlags&syn != 0 {
		// MSS, SACK permitted, timestamps, NOP, window scale 7.
		mss := uint16(1460)
		if c.v6 {
			mss = 1440
		}
		copy(opt, []byte{2, 4, byte(mss >> 8), byte(mss), 4, 2, 8, 10})
		binary.BigEndian.PutUint32(opt[8:], ts)
		binary.BigEndian.PutUint32(opt[12:], 0)
		copy(opt[16:], []byte{1, 3, 3, 7})
	} else {
		copy(opt, []byte{1, 1, 8, 10})
		binary.BigEndian.PutUint32(opt[4:], ts)
		binary.BigEndian.PutUint32(opt[8:], ts-1)
	}
	*seq += uint32(p.payload)
	if p.tcpFlags&(syn|fin) != 0 {
		*seq++
	}
	return n
}

func (c *conv) serverPort() uint16 {
	switch c.app {
	case appHTTPS, appQUIC:
		return 443
	case appHTTP:
		return 80
	case appSSH:
		return 22
	case appDNS:
		return 53
	case appNTP:
		return 123
	case appSyslog:
		return 514
	}
	return 0
}

// client4 is the conversation's client address in 10.0.0.0/8. Multiplying
// by an odd constant permutes 24-bit numbers, so every conversation has its
// own client and 5-tuples never repeat.
func (g *generator) client4(c *conv) [4]byte {
	v := c.index * 0x9e3779 & 0xffffff
	return [4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)}
}

// client6 is the conversation's client address in fd12:3456:789a::/48.
func (g *generator) client6(c *conv) [16]byte {
	a := [16]byte{0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a}
	binary.BigEndian.PutUint64(a[8:], splitmix(uint64(c.index))|1<<63)
	binary.BigEndian.PutUint32(a[12:], c.index)
	return a
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// queued is a conversation waiting to send its next packet at a time.
type queued struct {
	at   int64
	conv uint32
}

// convQueue is a binary min-heap of conversations by the time of their
// next packet, ties by conversation number so the output is deterministic.
// It is hand-written to keep interface calls and boxing out of the
// per-packet step.
type convQueue []queued

func (q convQueue) less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].conv < q[j].conv
}

// down restores the heap order below i after q[i] grew.
func (q convQueue) down(i int) {
	n := len(q)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
}

// popMin removes the earliest conversation.
func (q *convQueue) popMin() {
	h := *q
	last := len(h) - 1
	h[0] = h[last]
	*q = h[:last]
	q.down(0)
}
