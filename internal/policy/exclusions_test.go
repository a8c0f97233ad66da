package policy

import (
	"net/netip"
	"testing"
)

func TestExcluded(t *testing.T) {
	a := netip.MustParseAddr
	router := []netip.Addr{a("10.0.1.1"), a("10.0.0.2")}
	cases := []struct {
		name         string
		src, dst     string
		proto        uint8
		sport, dport uint16
		iface        []netip.Addr
		want         bool
	}{
		{"metadata", "10.0.1.5", "169.254.169.254", 6, 40000, 80, nil, true},
		{"metadata reply", "169.254.169.254", "10.0.1.5", 6, 80, 40000, nil, true},
		{"time service", "10.0.1.5", "169.254.169.123", 17, 123, 123, nil, true},
		{"resolver", "10.0.1.5", "169.254.169.253", 17, 5353, 53, nil, true},
		{"ipv6 metadata", "2001:db8::5", "fd00:ec2::254", 6, 40000, 80, nil, true},
		{"ipv6 time", "fd00:ec2::123", "2001:db8::5", 17, 123, 123, nil, true},
		{"dhcp", "0.0.0.0", "255.255.255.255", 17, 68, 67, nil, true},
		{"dhcp relay", "10.0.0.1", "10.0.0.9", 17, 67, 67, nil, true},
		{"dhcpv6", "fe80::1", "ff02::1:2", 17, 546, 547, nil, true},
		{"udp 68 to dns is not dhcp", "10.0.1.5", "8.8.8.8", 17, 68, 53, nil, false},
		{"tcp 67/68 is not dhcp", "10.0.1.5", "10.0.1.6", 6, 68, 67, nil, false},
		{"other link-local", "10.0.1.5", "169.254.1.1", 6, 40000, 80, nil, false},
		{"router from inventory", "10.0.1.5", "10.0.1.1", 1, 0, 0, router, true},
		{"vpc resolver from inventory", "10.0.1.5", "10.0.0.2", 17, 5353, 53, router, true},
		{"ordinary", "10.0.1.5", "93.184.216.34", 6, 40000, 443, router, false},
		{"ordinary fd", "fd12::1", "fd12::2", 6, 40000, 443, nil, false},
		{"other fd00:ec2::", "fd12::1", "fd00:ec2::1", 6, 40000, 443, nil, false},
		{"other 169.254.169.0/24", "10.0.1.5", "169.254.169.1", 6, 40000, 80, nil, false},
		{"ipv4-mapped metadata is ipv6", "::ffff:10.0.1.5", "::ffff:169.254.169.254", 6, 40000, 80, nil, false},
	}
	for _, c := range cases {
		got := DefaultExclusions().Excluded(a(c.src), a(c.dst), c.proto, c.sport, c.dport, c.iface)
		if got != c.want {
			t.Errorf("%s: Excluded = %v, want %v", c.name, got, c.want)
		}
		if NoExclusions().Excluded(a(c.src), a(c.dst), c.proto, c.sport, c.dport, c.iface) {
			t.Errorf("%s: NoExclusions excluded it", c.name)
		}
	}
}

var sinkBool bool

func TestExcludedNoAllocs(t *testing.T) {
	e := DefaultExclusions()
	src, dst := netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("169.254.169.254")
	if n := testing.AllocsPerRun(1000, func() { sinkBool = e.Excluded(src, dst, 6, 1, 2, nil) }); n != 0 {
		t.Fatalf("Excluded allocates %v times", n)
	}
}

func BenchmarkExcluded(b *testing.B) {
	e := DefaultExclusions()
	pairs := [][2]netip.Addr{
		{netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("93.184.216.34")},
		{netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("2001:db8::6")},
		{netip.MustParseAddr("fd12:3456:789a::5"), netip.MustParseAddr("2001:db8::6")}, // unique local
	}
	for b.Loop() {
		for _, p := range pairs {
			sinkBool = e.Excluded(p[0], p[1], 6, 40000, 443, nil)
		}
	}
}
