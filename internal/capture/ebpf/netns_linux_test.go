package ebpf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/decode"
)

// testNet is two network namespaces joined by a veth pair: va in A
// (10.77.0.1, fd77::1) and vb in B (10.77.0.2, fd77::2), with offloads off
// so that every skb is one packet on the wire, static neighbours and no
// IPv6 link-local addresses, so that nothing but the test's traffic flows.
type testNet struct {
	A, B       string // namespace names
	IdxA, IdxB int    // ifindex of va in A, vb in B
	tapA, tapB int    // AF_PACKET sockets on va and vb
}

var netSeq atomic.Int32

const (
	addrA4, addrB4 = "10.77.0.1", "10.77.0.2"
	addrA6, addrB6 = "fd77::1", "fd77::2"
	macA, macB     = "02:00:00:77:00:01", "02:00:00:77:00:02"
)

// requireNetns skips (fails in CI) unless the tests can create network
// namespaces with iproute2.
func requireNetns(t testing.TB) {
	t.Helper()
	requireBPF(t)
	for _, tool := range []string{"ip", "ethtool", "nft", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s not installed (Debian packages iproute2, ethtool, nftables, iputils-ping)", tool)
		}
	}
}

// run runs a command with a deadline and fails the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newTestNet builds the namespaces, opens the packet taps that serve as
// the independent oracle, and waits until the link is quiet.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	n := &testNet{
		A: fmt.Sprintf("flebpf%d-%da", os.Getpid(), netSeq.Add(1)),
	}
	n.B = strings.TrimSuffix(n.A, "a") + "b"
	t.Cleanup(func() {
		for _, ns := range []string{n.A, n.B} {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	run(t, "ip", "netns", "add", n.A)
	run(t, "ip", "netns", "add", n.B)
	run(t, "ip", "link", "add", "va", "netns", n.A, "address", macA, "type", "veth", "peer", "name", "vb", "netns", n.B, "address", macB)
	for _, e := range []struct{ ns, dev, a4, a6, peer4, peer6, peerMAC string }{
		{n.A, "va", addrA4, addrA6, addrB4, addrB6, macB},
		{n.B, "vb", addrB4, addrB6, addrA4, addrA6, macA},
	} {
		run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", e.ns, "link", "set", e.dev, "addrgenmode", "none")
		run(t, "ip", "netns", "exec", e.ns, "ethtool", "-K", e.dev, "tso", "off", "gso", "off", "gro", "off")
		run(t, "ip", "-n", e.ns, "addr", "add", e.a4+"/24", "dev", e.dev)
		run(t, "ip", "-n", e.ns, "addr", "add", e.a6+"/64", "dev", e.dev, "nodad")
		run(t, "ip", "-n", e.ns, "link", "set", e.dev, "up")
		run(t, "ip", "-n", e.ns, "neigh", "replace", e.peer4, "lladdr", e.peerMAC, "dev", e.dev, "nud", "permanent")
		run(t, "ip", "-n", e.ns, "neigh", "replace", e.peer6, "lladdr", e.peerMAC, "dev", e.dev, "nud", "permanent")
	}
	n.IdxA = ifindex(t, n.A, "va")
	n.IdxB = ifindex(t, n.B, "vb")
	n.tapA = openTap(t, n.A, n.IdxA)
	n.tapB = openTap(t, n.B, n.IdxB)
	// MLD reports for the solicited-node groups go out during the first
	// second or two after the link comes up.
	deadline := time.Now().Add(10 * time.Second)
	quietSince := time.Now()
	for time.Since(quietSince) < 1500*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("link between the namespaces never went quiet")
		}
		time.Sleep(100 * time.Millisecond)
		if len(readTap(t, n.tapA, 1)) > 0 || len(readTap(t, n.tapB, 2)) > 0 {
			quietSince = time.Now()
		}
	}
	return n
}

func ifindex(t testing.TB, ns, dev string) int {
	t.Helper()
	var idx int
	inNS(t, ns, func() {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			t.Fatalf("find %s in %s: %v", dev, ns, err)
		}
		idx = ifc.Index
	})
	return idx
}

// inNS runs fn on a thread inside namespace ns; sockets created there stay
// in ns wherever they are used later.
func inNS(t testing.TB, ns string, fn func()) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open netns %s: %v", ns, err)
	}
	defer h.Close()
	done := make(chan struct{})
	var setErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			setErr = err
			return
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			setErr = err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			return // the locked thread dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	<-done
	if setErr != nil {
		t.Fatalf("enter netns %s: %v", ns, setErr)
	}
}

// openTap opens a packet socket on ifindex in ns: the kernel hands it a
// copy of every frame the device sends or receives (receives before
// netfilter sees them, sends after the output hooks).
func openTap(t testing.TB, ns string, idx int) int {
	t.Helper()
	var fd int
	inNS(t, ns, func() {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Fatalf("packet socket: %v", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
			t.Fatalf("SO_RCVBUFFORCE: %v", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: idx}); err != nil {
			t.Fatalf("bind packet socket: %v", err)
		}
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// tapPacket is one frame the tap saw, decoded.
type tapPacket struct {
	dir flow.Direction
	p   decode.Packet
}

// readTap returns the IP packets queued on a tap, with the interface id
// they belong to.
func readTap(t testing.TB, fd int, id uint32) []tapPacket {
	t.Helper()
	// A tap that overflowed is no oracle any more.
	if st, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		t.Fatalf("tap statistics: %v", err)
	} else if st.Drops != 0 {
		t.Fatalf("tap of interface %d dropped %d packets", id, st.Drops)
	}
	var out []tapPacket
	buf := make([]byte, 65536)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatalf("read tap: %v", err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			t.Fatalf("tap address %T", from)
		}
		var tp tapPacket
		if decode.Decode(decode.LinkEthernet, buf[:n], &tp.p) != nil {
			continue
		}
		tp.dir = flow.DirectionIngress
		if ll.Pkttype == unix.PACKET_OUTGOING {
			tp.dir = flow.DirectionEgress
		}
		out = append(out, tp)
	}
}

// oracle is what the taps saw, per key; reject decides which packets
// netfilter dropped (ingress on vb only: received packets are tapped
// before netfilter runs).
func (n *testNet) oracle(t testing.TB, idA, idB uint32, reject func(id uint32, tp *tapPacket) bool) map[oracleKey]sums {
	t.Helper()
	want := make(map[oracleKey]sums)
	frags := decode.NewFragments(4096)
	for _, side := range []struct {
		fd int
		id uint32
	}{{n.tapA, idA}, {n.tapB, idB}} {
		for _, tp := range readTap(t, side.fd, side.id) {
			frags.Resolve(&tp.p)
			action := flow.ActionAccept
			if reject != nil && reject(side.id, &tp) {
				action = flow.ActionReject
			}
			k := oracleKey{flow.Key{Interface: side.id, Src: tp.p.Src, Dst: tp.p.Dst, SrcPort: tp.p.SrcPort, DstPort: tp.p.DstPort, Protocol: tp.p.Protocol, Action: action}, tp.dir}
			v := want[k]
			v.Packets++
			v.Bytes += uint64(tp.p.Length)
			v.Flags |= flow.ReportedTCPFlags(tp.p.TCPFlags)
			want[k] = v
		}
	}
	return want
}

// attachBoth attaches va as idA and vb as idB.
func (n *testNet) attachBoth(t testing.TB, s *Source, idA, idB uint32) {
	t.Helper()
	if err := s.Attach(idA, capture.Link{Index: n.IdxA, Name: "va", Netns: n.A}); err != nil {
		t.Fatalf("Attach va: %v", err)
	}
	if err := s.Attach(idB, capture.Link{Index: n.IdxB, Name: "vb", Netns: n.B}); err != nil {
		t.Fatalf("Attach vb: %v", err)
	}
}

// settle gives the last packets time to pass both ends.
func settle() { time.Sleep(200 * time.Millisecond) }

// key builds an oracle key.
func key(id uint32, dir flow.Direction, src, dst string, sport, dport uint16, proto uint8, action flow.Action) oracleKey {
	return oracleKey{flow.Key{Interface: id, Src: mustAddr(src), Dst: mustAddr(dst), SrcPort: sport, DstPort: dport, Protocol: proto, Action: action}, dir}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// dialIn dials from namespace ns.
func dialIn(t testing.TB, ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, ns, func() {
		c, err = net.DialTimeout(network, addr, timeout)
	})
	return c, err
}

// listenIn listens in namespace ns.
func listenIn(t testing.TB, ns, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := retryInNS(t, ns, func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// retryInNS runs open in namespace ns until it succeeds, for up to a
// second: an address the test just configured can briefly be unusable.
// Failures are returned to the caller, because t.Fatal must not be called
// from the goroutine inNS runs fn on.
func retryInNS(t testing.TB, ns string, open func() error) (err error) {
	t.Helper()
	for range 20 {
		inNS(t, ns, func() { err = open() })
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// listenPacketIn opens a UDP socket in namespace ns.
func listenPacketIn(t testing.TB, ns, network, addr string) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	err := retryInNS(t, ns, func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
