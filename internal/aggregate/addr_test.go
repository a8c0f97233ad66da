package aggregate

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/flowlog/flowlog/flow"
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

// prepare writes out keyOf and hash; it must give their key and hash.
func TestPrepare(t *testing.T) {
	tab, err := New(Config{Interval: 60}, func(int64, []Closed) {})
	if err != nil {
		t.Fatal(err)
	}
	tab.Add(tcp(v4a, v4b, 1, 2), 1_700_000_000, 1, 0, 0) // a current window
	keys := makeKeys(1000)
	keys = append(keys, flow.Key{}, flow.Key{Src: netip.MustParseAddr("fe80::1%eth0"), Dst: v4a, Interface: 7, Protocol: 58, Action: flow.ActionReject})
	for _, k := range keys {
		for _, sec := range []int64{1_700_000_000, 1_700_000_100} {
			var got, want ckey
			h, wid := tab.prepare(&Packet{Key: k, Sec: sec}, &got)
			tab.keyOf(&k, &want)
			if sec >= tab.curStart && sec < tab.curEnd {
				want.meta |= uint32(tab.cur.id) << 16
				if wid != uint32(tab.cur.id) || h != tab.hash(&want) {
					t.Fatalf("%v: prepare gives window %d hash %x, want %d and %x", k, wid, h, tab.cur.id, tab.hash(&want))
				}
			} else if wid != noWindow {
				t.Fatalf("%v at %d: window %d outside the current one", k, sec, wid)
			}
			if got != want {
				t.Fatalf("%v: prepare's key %+v, keyOf's %+v", k, got, want)
			}
		}
	}
}
