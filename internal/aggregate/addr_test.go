package aggregate

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// addrWords reads netip.Addr's words directly; it must agree with the
// netip API on every kind of address, and the direct read must be in use
// (a Go release that changes netip.Addr's layout makes it fall back).
func TestAddrWords(t *testing.T) {
	if !netipWords {
		t.Error("netip.Addr no longer starts with its address words: addrWords takes the slow path (update netipWords)")
	}
	r := rand.New(rand.NewPCG(1, 2))
	check := func(a netip.Addr) {
		t.Helper()
		w, fam := addrWords(a)
		wantFam := famV6
		switch {
		case !a.IsValid():
			wantFam = famInvalid
		case a.Is4():
			wantFam = famV4
		}
		if fam != wantFam {
			t.Fatalf("%v: family %d, want %d", a, fam, wantFam)
		}
		if fam == famInvalid {
			return
		}
		if want := addrWordsSafe(a, fam); w != want {
			t.Fatalf("%v: words %x, netip API gives %x", a, w, want)
		}
		if back := addrFrom(w, fam); back != a.WithZone("") {
			t.Fatalf("%v: round trip gives %v", a, back)
		}
	}
	check(netip.Addr{})
	for _, s := range []string{"0.0.0.0", "::", "::ffff:0.0.0.0", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4"} {
		check(netip.MustParseAddr(s))
	}
	for range 10000 {
		var b16 [16]byte
		var b4 [4]byte
		for i := range b16 {
			b16[i] = byte(r.Uint32())
		}
		copy(b4[:], b16[:])
		check(netip.AddrFrom16(b16))
		check(netip.AddrFrom4(b4))
	}
}
