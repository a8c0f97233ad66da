package ebpf

import (
	"encoding/binary"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture"
)

// TestLiveRawIPDevice attaches to a tun device, which has no Ethernet
// header: the programs then see the IP header first. Datagrams routed
// into the tun count as egress, packets the test writes into it as
// ingress.
func TestLiveRawIPDevice(t *testing.T) {
	requireNetns(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		skipOrFail(t, "no /dev/net/tun: %v", err)
	}
	n := newTestNet(t)
	var tun *os.File
	inNS(t, n.A, func() {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open /dev/net/tun: %v", err)
		}
		ifr, err := unix.NewIfreq("fltun0")
		if err != nil {
			t.Fatal(err)
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			t.Fatalf("TUNSETIFF: %v", err)
		}
		tun = os.NewFile(uintptr(fd), "tun")
	})
	t.Cleanup(func() { tun.Close() })
	run(t, "ip", "-n", n.A, "addr", "add", "10.79.0.1/24", "dev", "fltun0")
	run(t, "ip", "-n", n.A, "link", "set", "fltun0", "up")
	const idTun = 404
	s := newSource(t, Config{})
	if err := s.Attach(idTun, capture.Link{Index: ifindex(t, n.A, "fltun0"), Name: "fltun0", Netns: n.A}); err != nil {
		t.Fatal(err)
	}

	// Egress: three datagrams of 40 bytes routed into the tun.
	c, err := dialIn(t, n.A, "udp4", "10.79.0.2:7300", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Write(make([]byte, 40)); err != nil {
			t.Fatal(err)
		}
	}
	sport := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	// Ingress: two datagrams of 20 bytes from the far end of the tun.
	for range 2 {
		if _, err := tun.Write(udp4Packet([4]byte{10, 79, 0, 2}, [4]byte{10, 79, 0, 1}, 9999, 7301, 20)); err != nil {
			t.Fatalf("write tun: %v", err)
		}
	}
	settle()
	got, _ := drainSums(t, s)
	requireKeys(t, got, map[oracleKey]sums{
		key(idTun, flow.DirectionEgress, "10.79.0.1", "10.79.0.2", sport, 7300, 17, flow.ActionAccept): {Packets: 3, Bytes: 3 * 68},
		key(idTun, flow.DirectionIngress, "10.79.0.2", "10.79.0.1", 9999, 7301, 17, flow.ActionAccept): {Packets: 2, Bytes: 2 * 48},
	})
}

// udp4Packet builds an IPv4/UDP packet with a valid header checksum and no
// UDP checksum.
func udp4Packet(src, dst [4]byte, sport, dport uint16, payload int) []byte {
	b := make([]byte, 28+payload)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = 17
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint16(b[24:], uint16(8+payload))
	return b
}
