package flow

import (
	"math"
	"net/netip"
	"strconv"
	"testing"
)

func TestAppendUintMatchesStrconv(t *testing.T) {
	check := func(v uint64) {
		t.Helper()
		prefix := []byte("x ")
		if got, want := string(appendUint(prefix, v)), string(strconv.AppendUint(prefix, v, 10)); got != want {
			t.Fatalf("appendUint(%d) = %q, want %q", v, got, want)
		}
	}
	for v := uint64(0); v < 100_000; v++ {
		check(v)
	}
	for _, p := range pow10 {
		check(p - 1)
		check(p)
		check(p + 1)
	}
	for s := uint(0); s < 64; s++ {
		check(1 << s)
		check(1<<s - 1)
	}
	check(math.MaxUint64)
	check(1418530070) // a start timestamp
}

func TestAppendIntMatchesStrconv(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 9, -9, 10, -10, 1418530010, -1418530010, math.MaxInt64, math.MinInt64} {
		if got, want := string(appendInt(nil, v)), strconv.FormatInt(v, 10); got != want {
			t.Errorf("appendInt(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestAppendAddrMatchesNetip(t *testing.T) {
	for o := 0; o < 256; o++ {
		for _, a := range []netip.Addr{
			netip.AddrFrom4([4]byte{byte(o), 0, 9, 255}),
			netip.AddrFrom4([4]byte{10, byte(o), 100, 99}),
			netip.AddrFrom4([4]byte{1, 2, byte(o), byte(255 - o)}),
		} {
			if got, want := string(appendAddr([]byte("x "), a)), "x "+a.String(); got != want {
				t.Fatalf("appendAddr(%v) = %q, want %q", a, got, want)
			}
		}
	}
	for _, s := range []string{"::", "::ffff:10.0.0.1", "2001:db8::1", "fe80::1%eth0"} {
		a := netip.MustParseAddr(s)
		if got := string(appendAddr(nil, a)); got != a.String() {
			t.Errorf("appendAddr(%v) = %q", a, got)
		}
	}
	if got := string(appendAddr(nil, netip.Addr{})); got != "-" {
		t.Errorf("appendAddr(zero) = %q, want -", got)
	}
}

func TestAppendIPv6MatchesNetip(t *testing.T) {
	// Every pattern of zero and non-zero groups, with group values of each
	// width.
	values := []uint16{0x1, 0x2a, 0xdb8, 0xfd12}
	for mask := 0; mask < 256; mask++ {
		var x [16]byte
		for g := range 8 {
			if mask&(1<<g) != 0 {
				v := values[g%len(values)]
				x[2*g], x[2*g+1] = byte(v>>8), byte(v)
			}
		}
		a := netip.AddrFrom16(x)
		if got := string(appendAddr([]byte("x "), a)); got != "x "+a.String() {
			t.Fatalf("appendAddr(%v) = %q", a, got)
		}
	}
}

// FuzzAppendPrimitives checks the number and address renderers against
// strconv and netip.
func FuzzAppendPrimitives(f *testing.F) {
	f.Add([]byte{0xfd, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint64(0), int64(0))
	f.Add([]byte{10, 0, 0, 1}, uint64(math.MaxUint64), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, raw []byte, u uint64, i int64) {
		if got, want := string(appendUint(nil, u)), strconv.FormatUint(u, 10); got != want {
			t.Fatalf("appendUint(%d) = %q, want %q", u, got, want)
		}
		if got, want := string(appendInt(nil, i)), strconv.FormatInt(i, 10); got != want {
			t.Fatalf("appendInt(%d) = %q, want %q", i, got, want)
		}
		if a, ok := netip.AddrFromSlice(raw); ok {
			if got := string(appendAddr(nil, a)); got != a.String() {
				t.Fatalf("appendAddr(%v) = %q", a, got)
			}
		}
	})
}
