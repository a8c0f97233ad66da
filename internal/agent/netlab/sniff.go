//go:build linux

package netlab

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flow is the key of a unidirectional flow as the tests compare it.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Protocol         uint8
}

// Packet is one packet a Sniffer saw.
type Packet struct {
	Time     time.Time // kernel receive (or transmit) timestamp
	Outgoing bool      // sent by the interface (PACKET_OUTGOING)
	IP       bool      // an IPv4 or IPv6 packet; the fields below are set
	Flow     Flow
	IPLength int   // IPv4 total length, IPv6 payload length + 40
	TCPFlags uint8 // raw TCP flags byte

	// Fragments: FragID is the IPv4 identification or IPv6 fragment id;
	// Fragment is 0 for a whole datagram, 1 for a first fragment, 2 for a
	// later one (which carries no ports).
	Fragment int
	FragID   uint32

	// GSO: a packet the kernel segments later (TCP segmentation offload)
	// or merged earlier (GRO) is GSOSize bytes of payload per segment;
	// HeaderLen is its IP + TCP/UDP header length, repeated per segment.
	GSOSize   int
	HeaderLen int
}

// Segments is how many packets p is on the wire, and their IP bytes.
func (p *Packet) Segments() (packets, bytes uint64) {
	if p.GSOSize == 0 || p.HeaderLen == 0 || p.IPLength <= p.HeaderLen {
		return 1, uint64(p.IPLength)
	}
	payload := p.IPLength - p.HeaderLen
	segs := (payload + p.GSOSize - 1) / p.GSOSize
	return uint64(segs), uint64(p.IPLength + (segs-1)*p.HeaderLen)
}

// Sniffer records every packet crossing one interface with a plain
// AF_PACKET socket (recvmsg, no ring, no fanout) and a parser of its own:
// code independent of the capture sources under test.
type Sniffer struct {
	fd   int
	stop atomic.Bool
	done chan struct{}
	mu   sync.Mutex
	pkts []Packet
}

// Sniff starts recording the packets of interface ifname in namespace ns.
func (l *Lab) Sniff(ns, ifname string, ifindex int) *Sniffer {
	l.tb.Helper()
	s := &Sniffer{done: make(chan struct{})}
	err := l.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		s.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return err
		}
		// A virtio_net_hdr before each packet gives the GSO segment size.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	})
	if err != nil {
		l.tb.Fatalf("sniff %s in %s: %v", ifname, ns, err)
	}
	go s.run()
	l.tb.Cleanup(func() { s.Stop() })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *Sniffer) run() {
	defer close(s.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for !s.stop.Load() {
		n, oobn, _, from, err := unix.Recvmsg(s.fd, buf, oob, 0)
		if err != nil {
			continue // timeout: check stop
		}
		p := Packet{Time: time.Now()}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			p.Outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					p.Time = time.Unix(ts.Sec, ts.Nsec)
				}
			}
		}
		if n < 10 {
			continue
		}
		gsoType := buf[1] &^ 0x80
		if gsoType == 1 || gsoType == 4 || gsoType == 5 { // TCPv4, TCPv6, UDP L4
			p.GSOSize = int(binary.LittleEndian.Uint16(buf[4:]))
		}
		parseEthernet(buf[10:n], &p)
		s.mu.Lock()
		s.pkts = append(s.pkts, p)
		s.mu.Unlock()
	}
}

// Stop ends the recording and returns the packets seen.
func (s *Sniffer) Stop() []Packet {
	if !s.stop.Swap(true) {
		<-s.done
		unix.Close(s.fd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pkts)
}

// Packets returns the packets seen so far.
func (s *Sniffer) Packets() []Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pkts)
}

// parseEthernet fills p from an Ethernet frame carrying IPv4 or IPv6
// without extension headers: the traffic the tests send.
func parseEthernet(b []byte, p *Packet) {
	be := binary.BigEndian
	if len(b) < 14 {
		return
	}
	etype, ip := be.Uint16(b[12:]), b[14:]
	var l4 []byte
	switch {
	case etype == 0x0800 && len(ip) >= 20 && ip[0]>>4 == 4:
		ihl := int(ip[0]&0xF) * 4
		p.Flow.Src = netip.AddrFrom4([4]byte(ip[12:16]))
		p.Flow.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
		p.Flow.Protocol = ip[9]
		p.IPLength = int(be.Uint16(ip[2:]))
		frag := be.Uint16(ip[6:])
		switch {
		case frag&0x1FFF != 0:
			p.Fragment, p.FragID = 2, uint32(be.Uint16(ip[4:]))
		case frag&0x2000 != 0:
			p.Fragment, p.FragID = 1, uint32(be.Uint16(ip[4:]))
		}
		if p.Fragment != 2 && len(ip) >= ihl {
			l4 = ip[ihl:]
		}
		p.HeaderLen = ihl
	case etype == 0x86DD && len(ip) >= 40 && ip[0]>>4 == 6:
		p.Flow.Src = netip.AddrFrom16([16]byte(ip[8:24]))
		p.Flow.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
		p.Flow.Protocol = ip[6]
		p.IPLength = int(be.Uint16(ip[4:])) + 40
		l4 = ip[40:]
		p.HeaderLen = 40
		if p.Flow.Protocol == 44 && len(l4) >= 8 { // one fragment header
			p.Flow.Protocol = l4[0]
			off := be.Uint16(l4[2:])
			p.FragID = be.Uint32(l4[4:])
			switch {
			case off&^7 != 0:
				p.Fragment = 2
			case off&1 != 0:
				p.Fragment = 1
			}
			l4 = l4[8:]
			if p.Fragment == 2 {
				l4 = nil
			}
		}
	default:
		return
	}
	p.IP = true
	switch p.Flow.Protocol {
	case 6, 17, 132:
		if len(l4) >= 4 {
			p.Flow.SrcPort, p.Flow.DstPort = be.Uint16(l4), be.Uint16(l4[2:])
		}
		if p.Flow.Protocol == 6 && len(l4) >= 14 {
			p.TCPFlags = l4[13]
			p.HeaderLen += int(l4[12]>>4) * 4
		} else if p.Flow.Protocol == 17 {
			p.HeaderLen += 8
		}
	}
	if p.Flow.Protocol != 6 && p.Flow.Protocol != 17 {
		p.GSOSize = 0
	}
}

// Totals are what a flow log must report for one flow on one interface,
// summed over the windows it spans.
type Totals struct {
	Packets, Bytes uint64
	First, Last    time.Time
	TCPFlags       uint8 // reported bits only: FIN, SYN, RST, and ACK with SYN
	Outgoing       bool  // direction of the first packet
}

// Expect sums the IP packets by flow, with the tcp-flags rule of the spec
// (FIN 1, SYN 2, RST 4, ACK 16 only on packets that carry SYN) and later
// fragments in the flow of their first fragment.
func Expect(pkts []Packet) map[Flow]Totals {
	out := map[Flow]Totals{}
	type fragKey struct {
		src, dst netip.Addr
		proto    uint8
		id       uint32
	}
	firsts := map[fragKey][2]uint16{}
	for _, p := range pkts {
		if !p.IP {
			continue
		}
		fk := fragKey{p.Flow.Src, p.Flow.Dst, p.Flow.Protocol, p.FragID}
		switch p.Fragment {
		case 1:
			firsts[fk] = [2]uint16{p.Flow.SrcPort, p.Flow.DstPort}
		case 2:
			ports := firsts[fk]
			p.Flow.SrcPort, p.Flow.DstPort = ports[0], ports[1]
		}
		t, ok := out[p.Flow]
		if !ok {
			t.First, t.Outgoing = p.Time, p.Outgoing
		}
		n, b := p.Segments()
		t.Packets += n
		t.Bytes += b
		if p.Time.Before(t.First) {
			t.First = p.Time
		}
		if p.Time.After(t.Last) {
			t.Last = p.Time
		}
		f := p.TCPFlags & 0x07
		if p.TCPFlags&0x02 != 0 {
			f |= p.TCPFlags & 0x10
		}
		t.TCPFlags |= f
		out[p.Flow] = t
	}
	return out
}
