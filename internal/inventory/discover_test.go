package inventory

import (
	"encoding/binary"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

func TestReadHost(t *testing.T) {
	h, err := ReadHost("testdata/host")
	if err != nil {
		t.Fatal(err)
	}
	if h.MachineID != "0123456789abcdef0123456789abcdef" {
		t.Errorf("machine id %q", h.MachineID)
	}
	if _, err := ReadHost(t.TempDir()); err == nil || !strings.Contains(err.Error(), "machine-id") {
		t.Errorf("missing machine id: %v", err)
	}
}

func mustPrefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestResolveLinkDerived(t *testing.T) {
	inv, err := New(nil, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	h := Host{MachineID: "m1"}
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	eth0 := Link{Name: "eth0", Index: 2, MAC: mac, Addrs: mustPrefixes("10.0.1.5/24", "10.0.1.9/24", "2001:db8::5/64")}
	eth1 := Link{Name: "eth1", Index: 3, MAC: mac, Addrs: mustPrefixes("10.0.1.6/24")}
	inNS := Link{Netns: "blue", Name: "eth0", Index: 2, MAC: mac, Addrs: mustPrefixes("fe80::1/64", "2001:db8:1::7/64")}
	bare := Link{Name: "dummy0", Index: 4}

	r0, r1, rn, rb := inv.ResolveLink(h, eth0), inv.ResolveLink(h, eth1), inv.ResolveLink(h, inNS), inv.ResolveLink(h, bare)
	shapes := map[string]*regexp.Regexp{
		"eni": regexp.MustCompile(`^eni-[0-9a-f]{17}$`), "subnet": regexp.MustCompile(`^subnet-[0-9a-f]{17}$`),
		"vpc": regexp.MustCompile(`^vpc-[0-9a-f]{17}$`), "i": regexp.MustCompile(`^i-[0-9a-f]{17}$`),
	}
	for _, r := range []Resolved{r0, r1, rn, rb} {
		if !shapes["eni"].MatchString(r.InterfaceID) || !shapes["subnet"].MatchString(r.SubnetID) ||
			!shapes["vpc"].MatchString(r.VPCID) || !shapes["i"].MatchString(r.InstanceID) {
			t.Errorf("id shapes: %+v", r)
		}
		if r.AccountID != DefaultAccountID || r.Region != DefaultRegion || r.AZID != DefaultAZID {
			t.Errorf("defaults: %+v", r)
		}
	}
	if r0.InterfaceID == r1.InterfaceID || r0.InterfaceID == rn.InterfaceID {
		t.Error("interfaces share an id")
	}
	if r0.SubnetID != r1.SubnetID {
		t.Error("two links in 10.0.1.0/24 have different subnets")
	}
	if r0.SubnetID == rn.SubnetID || rb.SubnetID == r0.SubnetID {
		t.Error("different prefixes share a subnet")
	}
	if r0.VPCID != rn.VPCID || r0.InstanceID != r1.InstanceID || r0.InstanceID == rn.InstanceID {
		t.Errorf("one VPC per host, one instance per namespace: %+v %+v", r0, rn)
	}
	if r0.PrimaryIPv4 != netip.MustParseAddr("10.0.1.5") || rn.PrimaryIPv4.IsValid() {
		t.Errorf("primary addresses %v %v", r0.PrimaryIPv4, rn.PrimaryIPv4)
	}
	if !r0.HasAddr(netip.MustParseAddr("2001:db8::5")) || !r0.HasAddr(netip.MustParseAddr("10.0.1.9")) || len(r0.Excluded) != 0 {
		t.Errorf("addresses %v excluded %v", r0.Addresses, r0.Excluded)
	}
	// Stable: same inputs, same ids; another host, other ids.
	if again := inv.ResolveLink(h, eth0); again.InterfaceID != r0.InterfaceID || again.SubnetID != r0.SubnetID {
		t.Error("ids are not stable")
	}
	if other := inv.ResolveLink(Host{MachineID: "m2"}, eth0); other.InterfaceID == r0.InterfaceID || other.VPCID == r0.VPCID || other.SubnetID == r0.SubnetID {
		t.Error("another host gets the same ids")
	}
	// A pinned VPC makes subnet ids the same across hosts.
	pinned, _ := New(nil, Overrides{VPCID: "vpc-0123456789abcdef0"})
	if pinned.ResolveLink(h, eth0).SubnetID != pinned.ResolveLink(Host{MachineID: "m2"}, eth0).SubnetID {
		t.Error("same prefix in the same pinned VPC: different subnet ids")
	}
}

func TestResolveLinkPinned(t *testing.T) {
	f, err := Parse("inv.yaml", []byte(`
account-id: "123456789012"
region: eu-west-1
vpc-id: vpc-0a1b2c3d
interfaces:
  - name: eth0
    interface-id: eni-0123456789abcdef0
    subnet-id: subnet-01234567
    primary-ipv4: 10.9.9.9
  - name: eth0
    netns: blue
    interface-id: eni-11111111
    instance-id: i-22222222
  - index: 0
    interface-id: eni-33333333
`))
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := New(f, Overrides{AZID: "euw1-az2"})
	h := Host{MachineID: "m"}
	r := inv.ResolveLink(h, Link{Name: "eth0", Addrs: mustPrefixes("10.0.0.5/24")})
	if r.InterfaceID != "eni-0123456789abcdef0" || r.SubnetID != "subnet-01234567" || r.VPCID != "vpc-0a1b2c3d" ||
		r.AccountID != "123456789012" || r.Region != "eu-west-1" || r.AZID != "euw1-az2" || r.PrimaryIPv4 != netip.MustParseAddr("10.9.9.9") {
		t.Errorf("eth0: %+v", r)
	}
	rn := inv.ResolveLink(h, Link{Netns: "blue", Name: "eth0"})
	if rn.InterfaceID != "eni-11111111" || rn.InstanceID != "i-22222222" || rn.VPCID != "vpc-0a1b2c3d" {
		t.Errorf("blue/eth0: %+v", rn)
	}
	// An index entry is for captures, not links.
	if ro := inv.ResolveLink(h, Link{Name: "lo", Index: 0}); ro.InterfaceID == "eni-33333333" {
		t.Error("index entry matched a link")
	}
	// The capture resolver ignores netns entries.
	if rc := inv.Resolve(nil, 5, "eth0"); rc.InterfaceID != "eni-0123456789abcdef0" {
		t.Errorf("capture eth0: %+v", rc)
	}
	if _, err := Parse("bad.yaml", []byte("interfaces:\n  - netns: blue\n")); err == nil || !strings.Contains(err.Error(), "netns") {
		t.Errorf("netns without name: %v", err)
	}
	if _, err := Parse("ok.yaml", []byte("interfaces:\n  - {name: eth0}\n  - {name: eth0, netns: blue}\n")); err != nil {
		t.Errorf("same name in two namespaces: %v", err)
	}
}

// ctMessage builds the body of a ctnetlink message with two tuples.
func ctMessage(orig, reply Tuple) []byte {
	attr := func(typ uint16, val []byte) []byte {
		b := make([]byte, 4, 4+len(val)+3)
		binary.NativeEndian.PutUint16(b, uint16(4+len(val)))
		binary.NativeEndian.PutUint16(b[2:], typ)
		b = append(b, val...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	const nested = 1 << 15
	tuple := func(typ uint16, t Tuple) []byte {
		var ip []byte
		if t.Src.Is4() {
			ip = append(attr(ctaIPv4Src, t.Src.AsSlice()), attr(ctaIPv4Dst, t.Dst.AsSlice())...)
		} else {
			ip = append(attr(ctaIPv6Src, t.Src.AsSlice()), attr(ctaIPv6Dst, t.Dst.AsSlice())...)
		}
		proto := attr(ctaProtoNum, []byte{t.Protocol})
		proto = append(proto, attr(ctaProtoSrc, binary.BigEndian.AppendUint16(nil, t.SrcPort))...)
		proto = append(proto, attr(ctaProtoDst, binary.BigEndian.AppendUint16(nil, t.DstPort))...)
		return attr(typ|nested, append(attr(ctaTupleIP|nested, ip), attr(ctaTupleProto|nested, proto)...))
	}
	msg := []byte{2, 0, 0, 0} // nfgenmsg
	msg = append(msg, tuple(ctaTupleOrig, orig)...)
	msg = append(msg, attr(3, []byte{0, 0, 0, 0x30})...) // CTA_STATUS, skipped
	return append(msg, tuple(ctaTupleReply, reply)...)
}

func tup(src string, sport uint16, dst string, dport uint16, proto uint8) Tuple {
	return Tuple{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport, Protocol: proto}
}

func TestParseConntrack(t *testing.T) {
	for _, c := range []struct{ orig, reply Tuple }{
		{tup("172.17.0.2", 40000, "8.8.8.8", 53, 17), tup("8.8.8.8", 53, "192.0.2.1", 40000, 17)},
		{tup("2001:db8::1", 1, "2001:db8::2", 2, 6), tup("2001:db8::2", 2, "2001:db8::1", 1, 6)},
	} {
		o, r, ok := ParseConntrack(ctMessage(c.orig, c.reply))
		if !ok || o != c.orig || r != c.reply {
			t.Errorf("parse %v %v: %v %v %v", c.orig, c.reply, o, r, ok)
		}
	}
	// ICMP: the identifier is no port.
	o, _, ok := ParseConntrack(ctMessage(tup("10.0.0.1", 7, "10.0.0.2", 0, 1), tup("10.0.0.2", 0, "10.0.0.1", 7, 1)))
	if !ok || o.SrcPort != 0 || o.DstPort != 0 {
		t.Errorf("icmp: %v %v", o, ok)
	}
	full := ctMessage(tup("10.0.0.1", 1, "10.0.0.2", 2, 6), tup("10.0.0.2", 2, "10.0.0.1", 1, 6))
	for i := range len(full) {
		if _, _, ok := ParseConntrack(full[:i]); ok && i < len(full)-40 {
			t.Errorf("truncated to %d bytes: parsed", i)
		}
	}
}

func FuzzParseConntrack(f *testing.F) {
	f.Add(ctMessage(tup("172.17.0.2", 40000, "8.8.8.8", 53, 17), tup("8.8.8.8", 53, "192.0.2.1", 40000, 17)))
	f.Add(ctMessage(tup("2001:db8::1", 1, "2001:db8::2", 2, 132), tup("2001:db8::2", 2, "2001:db8::1", 1, 132)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		o, r, ok := ParseConntrack(data)
		if ok && (!o.Src.IsValid() || !r.Dst.IsValid() || o.Src.Is4() != o.Dst.Is4()) {
			t.Fatalf("ok with %v %v", o, r)
		}
		n := NewNAT()
		n.Observe(o, r)
		if n.Len() != 0 && n.Len() != 4 && n.Len() != 2 {
			t.Fatalf("%d entries", n.Len())
		}
	})
}

func TestNATShapes(t *testing.T) {
	n := NewNAT()
	// Masquerade: 172.17.0.2 leaves as 192.0.2.1.
	snatO, snatR := tup("172.17.0.2", 40000, "8.8.8.8", 53, 17), tup("8.8.8.8", 53, "192.0.2.1", 40000, 17)
	// Port forwarding: 198.51.100.7 -> 192.0.2.1:8080 goes to 172.17.0.3:80.
	dnatO, dnatR := tup("198.51.100.7", 5555, "192.0.2.1", 8080, 6), tup("172.17.0.3", 80, "198.51.100.7", 5555, 6)
	plainO := tup("10.0.0.1", 1, "10.0.0.2", 2, 6)
	n.Observe(snatO, snatR)
	n.Observe(dnatO, dnatR)
	n.Observe(plainO, plainO.reverse())
	n.Observe(tup("10.0.0.1", 0, "8.8.8.8", 0, 1), tup("8.8.8.8", 0, "192.0.2.1", 0, 1)) // ICMP: not held
	if n.Len() != 8 {
		t.Fatalf("%d entries, want 8", n.Len())
	}
	for _, c := range []struct {
		seen           Tuple
		pktSrc, pktDst string
	}{
		{snatO, "172.17.0.2", "8.8.8.8"},           // inside, leaving
		{snatR.reverse(), "172.17.0.2", "8.8.8.8"}, // outside, leaving (translated)
		{snatR, "8.8.8.8", "172.17.0.2"},           // outside, reply arriving
		{snatO.reverse(), "8.8.8.8", "172.17.0.2"}, // inside, reply delivered
		{dnatO, "198.51.100.7", "172.17.0.3"},      // outside, arriving for the forwarded port
		{dnatR.reverse(), "198.51.100.7", "172.17.0.3"},
		{dnatR, "172.17.0.3", "198.51.100.7"},
		{dnatO.reverse(), "172.17.0.3", "198.51.100.7"},
	} {
		s, d, ok := n.Lookup(c.seen)
		if !ok || s != netip.MustParseAddr(c.pktSrc) || d != netip.MustParseAddr(c.pktDst) {
			t.Errorf("%v: %v %v %v, want %s %s", c.seen, s, d, ok, c.pktSrc, c.pktDst)
		}
	}
	if _, _, ok := n.Lookup(plainO); ok {
		t.Error("untranslated connection held")
	}
	n.Ended(snatO, snatR, 100)
	n.Prune(100)
	if n.Len() != 8 {
		t.Error("pruned a connection that ended at the cutoff")
	}
	n.Prune(101)
	if n.Len() != 4 {
		t.Errorf("%d entries after prune, want 4", n.Len())
	}
}
