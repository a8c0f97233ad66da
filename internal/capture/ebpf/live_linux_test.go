package ebpf

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

const (
	idA uint32 = 101 // va, in namespace A
	idB uint32 = 202 // vb, in namespace B
)

// tcpExchange connects from A to B, sends req bytes, receives resp bytes
// and ends the connection with FIN from both sides, or with a reset from
// the client (SO_LINGER 0). It returns the client's local port.
func tcpExchange(t *testing.T, n *testNet, network, server string, req, resp int, reset bool) uint16 {
	t.Helper()
	l := listenIn(t, n.B, network, server)
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, req)); err != nil {
			served <- err
			return
		}
		if _, err := c.Write(make([]byte, resp)); err != nil {
			served <- err
			return
		}
		_, err = io.Copy(io.Discard, c) // until the client's FIN or RST
		if reset && err == nil {
			err = errors.New("connection ended without a reset")
		} else if reset {
			err = nil
		}
		served <- err
	}()
	c, err := dialIn(t, n.A, network, server, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", server, err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(make([]byte, req)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, resp)); err != nil {
		t.Fatal(err)
	}
	port := uint16(c.LocalAddr().(*net.TCPAddr).Port)
	if reset {
		if err := c.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("server %s: %v", server, err)
	}
	return port
}

// udpExchange sends count datagrams of req bytes from A to B, each answered
// with resp bytes. It returns the client's port.
func udpExchange(t *testing.T, n *testNet, network, server string, count, req, resp int) uint16 {
	t.Helper()
	srv := listenPacketIn(t, n.B, network, server)
	go func() {
		buf := make([]byte, 2048)
		for range count {
			_ = srv.SetDeadline(time.Now().Add(5 * time.Second))
			_, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteTo(make([]byte, resp), from)
		}
	}()
	c, err := dialIn(t, n.A, network, server, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for range count {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(make([]byte, req)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("udp reply from %s: %v", server, err)
		}
	}
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// udpSend sends count datagrams of size bytes from A without waiting for
// anything; it returns the client port and how many sends the kernel
// refused (a netfilter drop on output fails the send with EPERM).
func udpSend(t *testing.T, n *testNet, network, server string, sizes ...int) (uint16, int) {
	t.Helper()
	c, err := dialIn(t, n.A, network, server, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	refused := 0
	for _, size := range sizes {
		if _, err := c.Write(make([]byte, size)); err != nil {
			refused++
		}
	}
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), refused
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// requireKeys checks the keys the test can predict from first principles.
func requireKeys(t *testing.T, got map[oracleKey]sums, want map[oracleKey]sums) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("%v %v %v:%d > %v:%d proto %d %v: want %v, got %v", k.Key.Interface, k.Direction, k.Key.Src, k.Key.SrcPort, k.Key.Dst, k.Key.DstPort, k.Key.Protocol, k.Key.Action, w, g)
		}
	}
}

// TestLiveTraffic attaches to both ends of a veth pair and sends TCP (FIN
// and reset), UDP and ICMP over IPv4 and IPv6 from Go and ping. The kernel
// counts must equal what packet taps on the same devices saw, and the
// predictable ones what was sent.
func TestLiveTraffic(t *testing.T) {
	requireNetns(t)
	n := newTestNet(t)
	s := newSource(t, Config{})
	n.attachBoth(t, s, idA, idB)

	finPort := tcpExchange(t, n, "tcp4", hostPort(addrB4, 5001), 1000, 2000, false)
	rstPort := tcpExchange(t, n, "tcp4", hostPort(addrB4, 5002), 100, 200, true)
	udpPort := udpExchange(t, n, "udp4", hostPort(addrB4, 5003), 5, 200, 300)
	run(t, "ip", "netns", "exec", n.A, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "56", addrB4)
	tcp6Port := tcpExchange(t, n, "tcp6", hostPort(addrB6, 5004), 3000, 500, false)
	udp6Port := udpExchange(t, n, "udp6", hostPort(addrB6, 5005), 3, 100, 10)
	run(t, "ip", "netns", "exec", n.A, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-s", "56", addrB6)
	// Datagrams over the MTU leave as fragments; the later fragments
	// belong to the first one's ports.
	frag4Port := udpExchange(t, n, "udp4", hostPort(addrB4, 5006), 2, 3000, 10)
	frag6Port := udpExchange(t, n, "udp6", hostPort(addrB6, 5007), 2, 3000, 10)
	settle()

	got, lost := drainSums(t, s)
	want := n.oracle(t, idA, idB, nil)
	if len(lost) != 0 {
		t.Errorf("lost %v", lost)
	}
	if d := diffSums(want, got); len(d) > 0 {
		t.Errorf("kernel and taps disagree:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("%d keys, %d packets agree with the taps", len(got), totalPackets(got))

	// What the test knows without looking: each direction on each end,
	// bytes at the IP layer.
	exact := map[oracleKey]sums{}
	both := func(src, dst string, sport, dport uint16, proto uint8, v sums) {
		exact[key(idA, flow.DirectionEgress, src, dst, sport, dport, proto, flow.ActionAccept)] = v
		exact[key(idB, flow.DirectionIngress, src, dst, sport, dport, proto, flow.ActionAccept)] = v
	}
	back := func(src, dst string, sport, dport uint16, proto uint8, v sums) {
		exact[key(idB, flow.DirectionEgress, src, dst, sport, dport, proto, flow.ActionAccept)] = v
		exact[key(idA, flow.DirectionIngress, src, dst, sport, dport, proto, flow.ActionAccept)] = v
	}
	both(addrA4, addrB4, udpPort, 5003, 17, sums{Packets: 5, Bytes: 5 * (20 + 8 + 200)})
	back(addrB4, addrA4, 5003, udpPort, 17, sums{Packets: 5, Bytes: 5 * (20 + 8 + 300)})
	both(addrA4, addrB4, 0, 0, 1, sums{Packets: 3, Bytes: 3 * (20 + 8 + 56)})
	back(addrB4, addrA4, 0, 0, 1, sums{Packets: 3, Bytes: 3 * (20 + 8 + 56)})
	both(addrA6, addrB6, udp6Port, 5005, 17, sums{Packets: 3, Bytes: 3 * (40 + 8 + 100)})
	back(addrB6, addrA6, 5005, udp6Port, 17, sums{Packets: 3, Bytes: 3 * (40 + 8 + 10)})
	both(addrA6, addrB6, 0, 0, 58, sums{Packets: 3, Bytes: 3 * (40 + 8 + 56)})
	back(addrB6, addrA6, 0, 0, 58, sums{Packets: 3, Bytes: 3 * (40 + 8 + 56)})
	// 3008 bytes of UDP: IPv4 fragments of 1480 + 1480 + 48 payload bytes,
	// IPv6 ones of 1448 + 1448 + 112 after an 8-byte fragment header.
	both(addrA4, addrB4, frag4Port, 5006, 17, sums{Packets: 2 * 3, Bytes: 2 * (3*20 + 3008)})
	both(addrA6, addrB6, frag6Port, 5007, 17, sums{Packets: 2 * 3, Bytes: 2 * (3*48 + 3008)})
	requireKeys(t, got, exact)

	// TCP: the flags are certain; packet counts depend on ACK timing and
	// are checked against the taps above.
	for _, c := range []struct {
		src, dst     string
		sport, dport uint16
		flags        uint8
		minBytes     uint64
	}{
		{addrA4, addrB4, finPort, 5001, flow.TCPFlagSYN | flow.TCPFlagFIN, 1000},
		{addrB4, addrA4, 5001, finPort, flow.TCPFlagSYN | flow.TCPFlagACK | flow.TCPFlagFIN, 2000},
		{addrA4, addrB4, rstPort, 5002, flow.TCPFlagSYN | flow.TCPFlagRST, 100},
		{addrB4, addrA4, 5002, rstPort, flow.TCPFlagSYN | flow.TCPFlagACK, 200},
		{addrA6, addrB6, tcp6Port, 5004, flow.TCPFlagSYN | flow.TCPFlagFIN, 3000},
		{addrB6, addrA6, 5004, tcp6Port, flow.TCPFlagSYN | flow.TCPFlagACK | flow.TCPFlagFIN, 500},
	} {
		for _, k := range []oracleKey{
			key(idA, dirOf(c.src == addrA4 || c.src == addrA6, true), c.src, c.dst, c.sport, c.dport, 6, flow.ActionAccept),
			key(idB, dirOf(c.src == addrA4 || c.src == addrA6, false), c.src, c.dst, c.sport, c.dport, 6, flow.ActionAccept),
		} {
			g := got[k]
			if g.Flags != c.flags || g.Bytes < c.minBytes || g.Packets < 3 {
				t.Errorf("%v %v %v:%d > %v:%d: got %v, want flags %d and over %d bytes", k.Key.Interface, k.Direction, c.src, c.sport, c.dst, c.dport, g, c.flags, c.minBytes)
			}
		}
	}
}

// dirOf is the direction of a packet from A on va (egress) or vb (ingress),
// and the reverse for packets from B.
func dirOf(fromA, onA bool) flow.Direction {
	if fromA == onA {
		return flow.DirectionEgress
	}
	return flow.DirectionIngress
}

func totalPackets(m map[oracleKey]sums) uint64 {
	var n uint64
	for _, v := range m {
		n += v.Packets
	}
	return n
}
