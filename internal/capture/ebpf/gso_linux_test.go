package ebpf

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/decode"
)

// readVnetTap reads a tap opened with PACKET_VNET_HDR: every frame comes
// after a virtio_net_hdr that says whether it is a GSO buffer and its
// segment size, so the oracle can count the packets it becomes on the wire.
// It returns the per-key sums and the largest segment count seen.
func readVnetTap(t testing.TB, fd int, id uint32, want map[oracleKey]sums) (maxSegs uint64) {
	t.Helper()
	buf := make([]byte, 1<<17)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) {
			return maxSegs
		}
		if err != nil {
			t.Fatalf("read tap: %v", err)
		}
		const vnetLen = 10
		gsoType, gsoSize := buf[1]&^0x80, uint64(binary.LittleEndian.Uint16(buf[4:]))
		frame := buf[vnetLen:n]
		var p decode.Packet
		if decode.Decode(decode.LinkEthernet, frame, &p) != nil {
			continue
		}
		segs, hdr := uint64(1), uint64(0)
		if gsoType != 0 && gsoSize > 0 {
			// IP header (+ IPv6 extension headers: none here) and TCP/UDP header.
			ip := frame[14:]
			l3 := uint64(40)
			if !p.IPv6 {
				l3 = uint64(ip[0]&0x0F) * 4
			}
			l4 := uint64(8)
			if p.Protocol == 6 {
				l4 = uint64(ip[l3+12]>>4) * 4
			}
			hdr = l3 + l4
			payload := uint64(p.Length) - hdr
			segs = (payload + gsoSize - 1) / gsoSize
		}
		maxSegs = max(maxSegs, segs)
		dir := flow.DirectionIngress
		if from.(*unix.SockaddrLinklayer).Pkttype == unix.PACKET_OUTGOING {
			dir = flow.DirectionEgress
		}
		k := oracleKey{flow.Key{Interface: id, Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Protocol: p.Protocol, Action: flow.ActionAccept}, dir}
		v := want[k]
		v.Packets += segs
		v.Bytes += uint64(p.Length) + (segs-1)*hdr
		v.Flags |= flow.ReportedTCPFlags(p.TCPFlags)
		want[k] = v
	}
}

// TestLiveGSO turns segmentation offload on and moves a megabyte over TCP
// each way: the kernel counts each large buffer as the segments it stands
// for, as a tap that reads the buffers' virtio headers does.
func TestLiveGSO(t *testing.T) {
	requireNetns(t)
	n := newTestNet(t)
	run(t, "ip", "netns", "exec", n.A, "ethtool", "-K", "va", "tso", "on", "gso", "on")
	run(t, "ip", "netns", "exec", n.B, "ethtool", "-K", "vb", "tso", "on", "gso", "on")
	tapA := openTap(t, n.A, n.IdxA)
	tapB := openTap(t, n.B, n.IdxB)
	for _, fd := range []int{tapA, tapB} {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			t.Fatalf("PACKET_VNET_HDR: %v", err)
		}
	}
	s := newSource(t, Config{})
	n.attachBoth(t, s, idA, idB)

	l := listenIn(t, n.B, "tcp4", hostPort(addrB4, 5100))
	const size = 1 << 20
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
			served <- err
			return
		}
		_, err = c.Write(make([]byte, size))
		served <- err
	}()
	c, err := dialIn(t, n.A, "tcp4", hostPort(addrB4, 5100), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	c.Close()
	settle()

	got, _ := drainSums(t, s)
	want := make(map[oracleKey]sums)
	segsA := readVnetTap(t, tapA, idA, want)
	segsB := readVnetTap(t, tapB, idB, want)
	if max(segsA, segsB) < 2 {
		t.Fatalf("no GSO buffer crossed the veth (largest %d segments): the test proves nothing", max(segsA, segsB))
	}
	if d := diffSums(want, got); len(d) > 0 {
		t.Errorf("kernel and GSO-aware taps disagree:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("%d keys, %d wire packets agree; largest buffer %d segments", len(got), totalPackets(got), max(segsA, segsB))
}
