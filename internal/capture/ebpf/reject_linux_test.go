package ebpf

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/decode"
)

// nftIn loads an nftables ruleset into namespace ns.
func nftIn(t *testing.T, ns, ruleset string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(path, []byte(ruleset), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "exec", ns, "nft", "-f", path)
}

// TestLiveReject drops traffic with nftables in both namespaces and
// requires the dropped packets as REJECT with exact counts, never also as
// ACCEPT: whole flows dropped on input, a flow dropped only for its large
// packets (one key, two actions), a TCP flow whose FINs are dropped (the
// FIN flag must leave the ACCEPT record), datagrams dropped on output
// before they reach the device, replies dropped on output, and fragmented
// datagrams dropped after reassembly (every fragment moves to REJECT).
func TestLiveReject(t *testing.T) {
	requireNetns(t)
	requireBTF(t)
	n := newTestNet(t)
	s := newSource(t, Config{Reject: "on"})
	n.attachBoth(t, s, idA, idB)

	nftIn(t, n.B, `table inet flt {
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 6001 drop
		tcp dport 6002 drop
		udp dport 6005 meta length > 300 drop
		tcp dport 6007 tcp flags & fin != 0 drop
		udp dport 6011 drop
	}
	chain out {
		type filter hook output priority 0; policy accept;
		udp sport 6010 drop
	}
}
`)
	nftIn(t, n.A, `table inet flt {
	chain out {
		type filter hook output priority 0; policy accept;
		udp dport 6003 drop
	}
}
`)
	isRejected := func(id uint32, tp *tapPacket) bool {
		if id != idB || tp.dir != flow.DirectionIngress {
			return false
		}
		p := &tp.p
		switch {
		case p.Protocol == 17 && p.DstPort == 6001,
			p.Protocol == 6 && p.DstPort == 6002,
			p.Protocol == 17 && p.DstPort == 6005 && p.Length > 300,
			p.Protocol == 6 && p.DstPort == 6007 && p.TCPFlags&flow.TCPFlagFIN != 0,
			// IPv4 reassembles before the input hook, which then drops the
			// whole datagram; IPv6 reassembles after it, so the rule sees
			// (and drops) only the first fragment, the one with the UDP
			// header.
			p.Protocol == 17 && p.DstPort == 6011 && !(p.IPv6 && p.Fragment == decode.FragmentLater):
			return true
		}
		return false
	}

	// Dropped on B's input.
	port6001, _ := udpSend(t, n, "udp4", hostPort(addrB4, 6001), 100, 100, 100, 100)
	if c, err := dialIn(t, n.A, "tcp4", hostPort(addrB4, 6002), 1500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("connected through a drop rule")
	}
	// Same key, ACCEPT for the small datagrams and REJECT for the large.
	// A receiver, lest port unreachable errors fail the next sends.
	listenPacketIn(t, n.B, "udp4", hostPort(addrB4, 6005))
	port6005, refused6005 := udpSend(t, n, "udp4", hostPort(addrB4, 6005), 100, 400, 100, 400, 400)
	if refused6005 != 0 {
		t.Errorf("%d sends to 6005 refused", refused6005)
	}
	// Dropped on A's output: never reaches va's egress program.
	port6003, refused := udpSend(t, n, "udp4", hostPort(addrB4, 6003), 50, 50, 50)
	if refused != 3 {
		t.Errorf("%d of 3 sends refused by the output drop rule", refused)
	}
	// FINs dropped: the client half-closes, its FIN is retransmitted and
	// dropped, then it resets the connection.
	finPort := finDropped(t, n, hostPort(addrB4, 6007))
	// Replies of the same size as the requests, dropped on B's output: the
	// reply's skb often reuses the request's memory; the request must stay
	// ACCEPT and the reply be an egress REJECT.
	echo := listenPacketIn(t, n.B, "udp4", hostPort(addrB4, 6010))
	echoed := make(chan int, 1)
	go func() {
		buf := make([]byte, 2048)
		got := 0
		for range 3 {
			_ = echo.SetDeadline(time.Now().Add(3 * time.Second))
			nr, from, err := echo.ReadFrom(buf)
			if err != nil {
				break
			}
			got++
			_, _ = echo.WriteTo(buf[:nr], from) // refused: EPERM
		}
		echoed <- got
	}()
	port6010, _ := udpSend(t, n, "udp4", hostPort(addrB4, 6010), 100, 100, 100)
	if got := <-echoed; got != 3 {
		t.Errorf("echo server got %d of 3 datagrams", got)
	}
	// Fragmented datagrams: IPv4 ones are dropped after reassembly, all
	// fragments together.
	port6011, _ := udpSend(t, n, "udp4", hostPort(addrB4, 6011), 3000, 3000)
	port6011v6, _ := udpSend(t, n, "udp6", hostPort(addrB6, 6011), 3000)
	// IPv6 through the same input rule.
	port6001v6, _ := udpSend(t, n, "udp6", hostPort(addrB6, 6001), 60, 60)
	settle()

	got, lost := drainSums(t, s)
	want := n.oracle(t, idA, idB, isRejected)
	egressReject := key(idA, flow.DirectionEgress, addrA4, addrB4, port6003, 6003, 17, flow.ActionReject)
	want[egressReject] = sums{Packets: 3, Bytes: 3 * (20 + 8 + 50)}
	replyReject := key(idB, flow.DirectionEgress, addrB4, addrA4, 6010, port6010, 17, flow.ActionReject)
	want[replyReject] = sums{Packets: 3, Bytes: 3 * 128}
	if len(lost) != 0 {
		t.Errorf("lost %v", lost)
	}
	if d := diffSums(want, got); len(d) > 0 {
		t.Errorf("kernel and taps disagree:\n%s", strings.Join(d, "\n"))
	}

	in := func(src, dst string, sport, dport uint16, proto uint8, action flow.Action) oracleKey {
		return key(idB, flow.DirectionIngress, src, dst, sport, dport, proto, action)
	}
	exact := map[oracleKey]sums{
		in(addrA4, addrB4, port6001, 6001, 17, flow.ActionReject):   {Packets: 4, Bytes: 4 * 128},
		in(addrA4, addrB4, port6005, 6005, 17, flow.ActionAccept):   {Packets: 2, Bytes: 2 * 128},
		in(addrA4, addrB4, port6005, 6005, 17, flow.ActionReject):   {Packets: 3, Bytes: 3 * 428},
		in(addrA6, addrB6, port6001v6, 6001, 17, flow.ActionReject): {Packets: 2, Bytes: 2 * 108},
		egressReject: {Packets: 3, Bytes: 3 * 78},
		in(addrA4, addrB4, port6010, 6010, 17, flow.ActionAccept): {Packets: 3, Bytes: 3 * 128},
		replyReject: {Packets: 3, Bytes: 3 * 128},
		in(addrA4, addrB4, port6011, 6011, 17, flow.ActionReject):   {Packets: 2 * 3, Bytes: 2 * (3*20 + 3008)},
		in(addrA6, addrB6, port6011v6, 6011, 17, flow.ActionReject): {Packets: 1, Bytes: 48 + 1448},
		in(addrA6, addrB6, port6011v6, 6011, 17, flow.ActionAccept): {Packets: 2, Bytes: 2*48 + 3008 - 1448},
	}
	requireKeys(t, got, exact)
	for _, k := range []oracleKey{
		in(addrA4, addrB4, port6001, 6001, 17, flow.ActionAccept),
		in(addrA6, addrB6, port6001v6, 6001, 17, flow.ActionAccept),
		key(idA, flow.DirectionEgress, addrA4, addrB4, port6003, 6003, 17, flow.ActionAccept),
		key(idB, flow.DirectionIngress, addrA4, addrB4, port6003, 6003, 17, flow.ActionAccept),
	} {
		if g, ok := got[k]; ok {
			t.Errorf("dropped traffic also counted as %v on %d %v: %v", k.Key.Action, k.Key.Interface, k.Direction, g)
		}
	}
	// The refused SYNs: REJECT with SYN, and nothing accepted on vb.
	var synRejects uint64
	for k, v := range got {
		if k.Key.DstPort == 6002 && k.Key.Interface == idB {
			if k.Key.Action != flow.ActionReject || v.Flags != flow.TCPFlagSYN {
				t.Errorf("refused connection counted as %v %v", k.Key.Action, v)
			}
			synRejects += v.Packets
		}
	}
	if synRejects < 1 {
		t.Error("no REJECT for the refused connection's SYNs")
	}
	// Dropped FINs: the ACCEPT record keeps SYN and RST but not FIN.
	acc := got[in(addrA4, addrB4, finPort, 6007, 6, flow.ActionAccept)]
	rej := got[in(addrA4, addrB4, finPort, 6007, 6, flow.ActionReject)]
	if acc.Flags != flow.TCPFlagSYN|flow.TCPFlagRST || rej.Flags != flow.TCPFlagFIN || rej.Packets < 1 {
		t.Errorf("FIN-dropped flow: ACCEPT %v (want flags 6), REJECT %v (want flags 1)", acc, rej)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RejectMoved == 0 || st.RejectEgress != 6 {
		t.Errorf("stats %+v: want moved > 0 and 6 egress rejects", st)
	}
	t.Logf("%d keys agree with the taps; stats %+v", len(got), st)
}

// finDropped opens a connection through the FIN drop rule, half-closes it
// (the FIN and its retransmissions are dropped) and then resets it.
func finDropped(t *testing.T, n *testNet, server string) uint16 {
	t.Helper()
	l := listenIn(t, n.B, "tcp4", server)
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := dialIn(t, n.A, "tcp4", server, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	if _, err := tc.Write(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the first FIN and a retransmission
	_ = tc.SetLinger(0)
	port := uint16(tc.LocalAddr().(*net.TCPAddr).Port)
	tc.Close()
	<-served
	return port
}
