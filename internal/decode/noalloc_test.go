package decode

import "testing"

// Sinks keep the compiler from discarding the work measured below.
var (
	sinkPacket Packet
	sinkErr    error
)

func TestNoAllocs(t *testing.T) {
	frames := []struct {
		name  string
		link  uint32
		frame []byte
		err   error
	}{
		{"ethernet ipv4 tcp", LinkEthernet, eth(0x0800, tcpSYN4), nil},
		{"qinq ipv6 udp", LinkEthernet, eth(0x88A8, tag(1, 0x8100, tag(2, 0x86DD, udp6))), nil},
		{"ipv6 extension chain", LinkEthernet, eth(0x86DD, ipv6{src: a6, dst: b6, next: 0}.bytes(ext6(43, 1, srh6(51, 2, ah6(60, 1, ext6(6, 0, tcp(1, 2, 2, nil))))))), nil},
		{"ipv4 later fragment", LinkEthernet, eth(0x0800, ipv4{src: a4, dst: b4, proto: 17, id: 3, fragOff: 10}.bytes(make([]byte, 40))), nil},
		{"ipv6 first fragment", LinkEthernet, eth(0x86DD, ipv6{src: a6, dst: b6, next: 44}.bytes(frag6(17, 0, true, 4, udp(1, 2, nil)))), nil},
		{"pppoe mpls sll", LinkLinuxSLL, sll(0, 1, 0x8864, pppoe(0x0281, mpls(2, tcpSYN4))), nil},
		{"null ipv6", LinkNull, cat(le32(30), udp6), nil},
		{"arp", LinkEthernet, eth(0x0806, make([]byte, 28)), ErrNotIP},
		{"truncated ipv4", LinkEthernet, eth(0x0800, tcpSYN4[:10]), ErrTruncated},
		{"malformed ipv4", LinkEthernet, eth(0x0800, ipv4{src: a4, dst: b4, ihl: 3}.bytes(nil)), ErrMalformed},
		{"unsupported link", 147, tcpSYN4, ErrUnsupportedLink},
	}
	for _, f := range frames {
		allocs := testing.AllocsPerRun(1000, func() {
			sinkErr = Decode(f.link, f.frame, &sinkPacket)
			if sinkErr != f.err {
				panic(f.name + ": unexpected result " + errString(sinkErr))
			}
		})
		if allocs != 0 {
			t.Errorf("Decode(%s) allocates %.1f times per packet", f.name, allocs)
		}
	}

	fr := NewFragments(4)
	first := fragPacket(a4, b4, 6, 1, FragmentFirst, 1, 2, 2)
	later := fragPacket(a4, b4, 6, 1, FragmentLater, 0, 0, 0)
	id := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		// New ids keep evicting, so insertion, deletion and lookup all run.
		id++
		first.FragID, later.FragID = id, id
		sinkPacket = first
		fr.Resolve(&sinkPacket)
		sinkPacket = later
		fr.Resolve(&sinkPacket)
		if sinkPacket.SrcPort != 1 {
			panic("later fragment not resolved")
		}
	})
	if allocs != 0 {
		t.Errorf("Fragments.Resolve allocates %.1f times per packet", allocs)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
