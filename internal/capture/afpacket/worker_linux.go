package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/decode"
)

// windowSeconds is the span counts are cut at: the smaller aggregation
// interval. A window of 60 s lies within one window of 600 s (both are
// aligned to the epoch), so a Delta lies within one window of every flow
// log.
const windowSeconds = 60

// Offsets in the ring (linux/if_packet.h). A block starts with
// tpacket_block_desc; each packet with tpacket3_hdr, followed by a
// sockaddr_ll at TPACKET_ALIGN(sizeof(tpacket3_hdr)).
const (
	blkStatus   = 8  // tpacket_hdr_v1.block_status
	blkNumPkts  = 12 // tpacket_hdr_v1.num_pkts
	blkFirstPkt = 16 // tpacket_hdr_v1.offset_to_first_pkt

	pktNextOffset = 0
	pktSec        = 4
	pktNsec       = 8
	pktSnaplen    = 12
	pktLen        = 16
	pktMac        = 24
	pktNet        = 26
	pktSLL        = 48      // sockaddr_ll
	sllPkttype    = 10      // sockaddr_ll.sll_pkttype
	ethPAll       = 0x0003  // ETH_P_ALL
	tpacketV3     = 2       // TPACKET_V3
	frameSize     = 1 << 11 // nominal; TPACKET_V3 packs packets of any size
)

// worker owns one socket and its ring and counts what arrives in it.
type worker struct {
	id        uint32
	fd        int
	file      *os.File // owns fd; its poller wakes the worker
	ring      []byte
	blockSize int
	blocks    int
	linkType  uint32
	timeout   time.Duration
	vnet      bool // each packet is preceded by a virtio_net_hdr (GSO size)

	mu    sync.Mutex // flows and slots, between the worker and Drain
	flows map[aggKey]int32
	slots []aggVal
	frags *decode.Fragments

	// Drain's spare buffers, swapped with flows and slots.
	spareFlows map[aggKey]int32
	spareSlots []aggVal

	stats    counters
	drops    atomic.Uint64 // dropped since the last takeDrops
	started  bool          // run was started
	stopOnce sync.Once
	done     chan struct{}
}

// aggKey is a flow in one 60-second window.
type aggKey struct {
	key    flow.Key
	window int64
}

// aggVal are the counts of one aggKey since the last drain.
type aggVal struct {
	packets, bytes uint64
	first, last    int64 // Unix nanoseconds
	flags          uint8
	dir            flow.Direction
}

// openWorker opens one socket of link l in the current network
// namespace, with its ring, bound to the link. The first socket of a
// fanout group creates it with a unique id stored in group; the others
// join it.
func openWorker(cfg Config, id uint32, l capture.Link, first bool, group *uint32, fanout bool) (*worker, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		if needsRaw(err) {
			return nil, fmt.Errorf("open packet socket: %w (AF_PACKET capture needs CAP_NET_RAW: run as root or grant the capability)", err)
		}
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	w := &worker{
		id: id, fd: fd,
		blockSize: cfg.blockSize(), blocks: cfg.blocks(), timeout: cfg.blockTimeout(),
		flows: map[aggKey]int32{}, spareFlows: map[aggKey]int32{},
		frags: decode.NewFragments(1024),
		done:  make(chan struct{}),
	}
	fail := func(op string, err error) (*worker, error) {
		if w.ring != nil {
			_ = unix.Munmap(w.ring)
		}
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// Copy only the headers into the ring: a classic BPF program that
	// accepts every packet, cut to the snap length.
	prog := []unix.SockFilter{{Code: 0x06, K: uint32(cfg.snapLen())}} // BPF_RET|BPF_K
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fail("set snap length filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, tpacketV3); err != nil {
		return fail("set TPACKET_V3", err)
	}
	// With a virtio_net_hdr before each packet the kernel tells the
	// segment size of GSO packets (TCP segmentation offload, GRO): one
	// such packet is counted as the packets it is on the wire. Kernels
	// before 5.? refuse it with a ring; then a GSO packet counts as one.
	w.vnet = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1) == nil
	req := unix.TpacketReq3{
		Block_size:     uint32(w.blockSize),
		Block_nr:       uint32(w.blocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(w.blockSize / frameSize * w.blocks),
		Retire_blk_tov: uint32(max(w.timeout/time.Millisecond, 1)),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail(fmt.Sprintf("set up a ring of %d blocks of %d bytes", w.blocks, w.blockSize), err)
	}
	ring, err := unix.Mmap(fd, 0, w.blockSize*w.blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("map ring", err)
	}
	w.ring = ring
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: l.Index}); err != nil {
		return fail(fmt.Sprintf("bind to interface index %d", l.Index), err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("read link type", err)
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	if !ok {
		return fail("read link type", errors.New("not a link-layer address"))
	}
	if w.linkType, err = linkType(ll.Hatype); err != nil {
		return fail("link type", err)
	}
	if fanout {
		// PACKET_FANOUT_HASH: by flow hash, which for fragments covers
		// only addresses and protocol, so a datagram's fragments meet.
		arg := int(*group)
		if first {
			arg = unix.PACKET_FANOUT_FLAG_UNIQUEID << 16
		}
		arg |= unix.PACKET_FANOUT_HASH << 16
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
			return fail("join fanout group", err)
		}
		if first {
			v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
			if err != nil {
				return fail("read fanout group id", err)
			}
			*group = uint32(v) & 0xFFFF
		}
	}
	// Reset the drop counter: the socket counted before it was set up.
	if _, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		return fail("read packet statistics", err)
	}
	w.file = os.NewFile(uintptr(fd), "afpacket:"+linkName(l))
	return w, nil
}

// linkType maps the link's ARPHRD type to the decoder's link type: the
// data of a SOCK_RAW packet socket starts at the link header when the
// device has one (Ethernet, loopback), else at the IP header.
func linkType(hatype uint16) (uint32, error) {
	switch hatype {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK, unix.ARPHRD_IEEE802:
		return decode.LinkEthernet, nil
	case unix.ARPHRD_NONE, unix.ARPHRD_PPP, unix.ARPHRD_RAWIP, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6,
		unix.ARPHRD_SIT, unix.ARPHRD_IPGRE, unix.ARPHRD_IP6GRE:
		return decode.LinkRaw, nil
	}
	return 0, fmt.Errorf("ARPHRD type %d is not supported (Ethernet, loopback and IP tunnels are)", hatype)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// start runs the worker in a goroutine of its own.
func (w *worker) start() {
	w.started = true
	go w.run()
}

// run drains ready blocks until stop, then the blocks the kernel hands
// over within twice the block timeout.
func (w *worker) run() {
	defer close(w.done)
	rc, err := w.file.SyscallConn()
	if err != nil {
		return
	}
	cur := 0
	var dp decode.Packet
	for {
		// The callback runs until no block is ready, then Read waits for
		// the socket to become readable (a block retired) or the deadline.
		err := rc.Read(func(uintptr) bool {
			for {
				b := w.ring[cur*w.blockSize : (cur+1)*w.blockSize]
				status := (*uint32)(unsafe.Pointer(&b[blkStatus]))
				if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
					return false
				}
				w.block(b, &dp)
				atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
				cur = (cur + 1) % w.blocks
			}
		})
		if err != nil {
			return // deadline after stop, or closed
		}
	}
}

// block counts the packets of one block.
func (w *worker) block(b []byte, dp *decode.Packet) {
	ne := binary.NativeEndian
	n := int(ne.Uint32(b[blkNumPkts:]))
	off := int(ne.Uint32(b[blkFirstPkt:]))
	var notIP uint64
	w.mu.Lock()
	for range n {
		h := b[off:]
		next := int(ne.Uint32(h[pktNextOffset:]))
		sec := int64(ne.Uint32(h[pktSec:]))
		nsec := int64(ne.Uint32(h[pktNsec:]))
		snap := int(ne.Uint32(h[pktSnaplen:]))
		length := int(ne.Uint32(h[pktLen:]))
		mac := int(ne.Uint16(h[pktMac:]))
		netOff := int(ne.Uint16(h[pktNet:])) - mac
		outgoing := h[pktSLL+sllPkttype] == unix.PACKET_OUTGOING
		var gsoType uint8
		var gsoSize uint16
		if w.vnet && mac >= vnetHdrLen {
			v := h[mac-vnetHdrLen : mac]
			gsoType, gsoSize = v[1]&^vnetGSOECN, binary.LittleEndian.Uint16(v[4:])
		}
		if !w.packet(h[mac:mac+snap], length, netOff, sec, nsec, outgoing, gsoType, gsoSize, dp) {
			notIP++
		}
		off += next
	}
	w.mu.Unlock()
	w.stats.packets.Add(uint64(n))
	if notIP > 0 {
		w.stats.notIP.Add(notIP)
	}
}

// virtio_net_hdr (linux/virtio_net.h): flags, gso_type, hdr_len,
// gso_size, csum_start, csum_offset, little endian.
const (
	vnetHdrLen         = 10
	vnetGSOTCPv4       = 1
	vnetGSOTCPv6       = 4
	vnetGSOUDPL4       = 5
	vnetGSOECN         = 0x80
	protoTCP, protoUDP = 6, 17
)

// segments returns how many packets a GSO packet is on the wire, and the
// header bytes (IP and TCP/UDP) each segment after the first repeats; 1
// and 0 for a packet that is not GSO or whose headers are not captured.
func segments(data []byte, netOff int, ipLen uint32, proto uint8, gsoType uint8, gsoSize uint16) (segs uint32, hdrs uint32) {
	if gsoSize == 0 || netOff < 0 || netOff >= len(data) {
		return 1, 0
	}
	switch {
	case (gsoType == vnetGSOTCPv4 || gsoType == vnetGSOTCPv6) && proto == protoTCP:
	case gsoType == vnetGSOUDPL4 && proto == protoUDP:
	default:
		return 1, 0
	}
	ip := data[netOff:]
	var l3 int
	switch ip[0] >> 4 {
	case 4:
		l3 = int(ip[0]&0xF) * 4
	case 6:
		l3 = 40
		if len(ip) < 40 || ip[6] != proto {
			return 1, 0 // extension headers: not from GSO in practice
		}
	default:
		return 1, 0
	}
	l4 := 8
	if proto == protoTCP {
		if len(ip) < l3+13 {
			return 1, 0
		}
		l4 = int(ip[l3+12]>>4) * 4
	}
	hdr := uint32(l3 + l4)
	if ipLen <= hdr {
		return 1, 0
	}
	payload := ipLen - hdr
	segs = (payload + uint32(gsoSize) - 1) / uint32(gsoSize)
	return max(segs, 1), hdr
}

// packet counts one packet; it reports false for frames that are not IP.
func (w *worker) packet(data []byte, length, netOff int, sec, nsec int64, outgoing bool, gsoType uint8, gsoSize uint16, dp *decode.Packet) bool {
	if err := decode.Decode(w.linkType, data, dp); err != nil {
		return false
	}
	if dp.Fragment != decode.FragmentNone {
		w.frags.Resolve(dp)
	}
	// An IP header that declares no length (IPv4 total length 0 or an
	// IPv6 jumbogram, as in GSO packets of more than 64 KiB) makes the
	// decoder count the captured bytes; the kernel knows the real length.
	if len(data) < length && netOff > 0 && int(dp.Length) == len(data)-netOff {
		dp.Length = uint32(length - netOff)
	}
	packets, bytes := uint64(1), uint64(dp.Length)
	if gsoSize != 0 {
		segs, hdrs := segments(data, netOff, dp.Length, dp.Protocol, gsoType, gsoSize)
		packets = uint64(segs)
		bytes += uint64(segs-1) * uint64(hdrs)
	}
	dir := flow.DirectionIngress
	if outgoing {
		dir = flow.DirectionEgress
	}
	ts := sec*1e9 + nsec
	k := aggKey{
		key: flow.Key{
			Interface: w.id,
			Src:       dp.Src, Dst: dp.Dst,
			SrcPort: dp.SrcPort, DstPort: dp.DstPort,
			Protocol: dp.Protocol,
			Action:   flow.ActionAccept,
		},
		window: sec / windowSeconds,
	}
	i, ok := w.flows[k]
	if !ok {
		i = int32(len(w.slots))
		w.slots = append(w.slots, aggVal{first: ts, last: ts, dir: dir})
		w.flows[k] = i
	}
	v := &w.slots[i]
	v.packets += packets
	v.bytes += bytes
	v.first = min(v.first, ts)
	v.last = max(v.last, ts)
	v.flags |= flow.ReportedTCPFlags(dp.TCPFlags)
	return true
}

// drain hands the counts since the previous drain to fn. Only Drain
// calls it, one at a time.
func (w *worker) drain(d *capture.Delta, fn func(*capture.Delta)) {
	w.mu.Lock()
	flows, slots := w.flows, w.slots
	w.flows, w.slots = w.spareFlows, w.spareSlots[:0]
	w.mu.Unlock()
	for k, i := range flows {
		v := &slots[i]
		*d = capture.Delta{
			Key: k.key, Packets: v.packets, Bytes: v.bytes,
			First: v.first, Last: v.last, TCPFlags: v.flags, Direction: v.dir,
		}
		fn(d)
	}
	clear(flows)
	w.spareFlows, w.spareSlots = flows, slots[:0]
}

// readDrops adds the kernel's drop counter (reset by reading it) to the
// worker's. The socket must be open.
func (w *worker) readDrops() {
	st, err := unix.GetsockoptTpacketStatsV3(w.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil || st.Drops == 0 {
		return
	}
	w.drops.Add(uint64(st.Drops))
	w.stats.drops.Add(uint64(st.Drops))
}

// takeDrops returns the drops since the previous call.
func (w *worker) takeDrops() uint64 { return w.drops.Swap(0) }

// stop makes run finish the blocks the kernel retires within twice the
// block timeout, waits for it, and releases the socket and ring.
func (w *worker) stop() {
	w.stopOnce.Do(func() {
		if !w.started {
			_ = w.file.Close()
			_ = unix.Munmap(w.ring)
			return
		}
		_ = w.file.SetReadDeadline(time.Now().Add(2*w.timeout + 10*time.Millisecond))
		<-w.done
		w.readDrops()
		_ = w.file.Close()
		_ = unix.Munmap(w.ring)
	})
}
