package flow

import (
	"math/bits"
	"net/netip"
)

// Record lines are mostly decimal numbers (ports, counters, ten-digit
// timestamps) and IPv4 addresses; strconv formats a number into a scratch
// buffer and copies it, netip an address octet by octet. Writing the digits
// in place, two at a time, renders a default-format line in about half the
// time, and a line per flow is most of what `flowlog read` costs beyond the
// flow table.

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// pow10 holds 10^0 to 10^19.
var pow10 = [20]uint64{
	1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

// decimalLen is the number of decimal digits of v (1 for 0).
func decimalLen(v uint64) int {
	// bits.Len64(v)*1233>>12 is floor(log10(2^Len64)), one less than or equal
	// to the digit count.
	n := bits.Len64(v) * 1233 >> 12
	if v >= pow10[n] {
		n++
	}
	if n == 0 {
		return 1
	}
	return n
}

// appendUint appends v in decimal, as strconv.AppendUint(b, v, 10) does.
func appendUint(b []byte, v uint64) []byte {
	if v < 10 {
		return append(b, byte('0'+v))
	}
	n := len(b) + decimalLen(v)
	if n > cap(b) {
		b = append(b[:cap(b)], make([]byte, n-cap(b))...)
	}
	b = b[:n]
	i := n
	for v >= 100 {
		q := v / 100
		r := (v - q*100) * 2
		i -= 2
		b[i], b[i+1] = digitPairs[r], digitPairs[r+1]
		v = q
	}
	if v >= 10 {
		b[i-2], b[i-1] = digitPairs[v*2], digitPairs[v*2+1]
	} else {
		b[i-1] = byte('0' + v)
	}
	return b
}

// appendInt appends v in decimal, as strconv.AppendInt(b, v, 10) does.
func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendUint(append(b, '-'), -uint64(v))
	}
	return appendUint(b, uint64(v))
}

// appendAddr appends a as netip.Addr.AppendTo does, "-" for the zero Addr.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.Is4() {
		if !a.IsValid() {
			return append(b, '-')
		}
		if a.Is4In6() || a.Zone() != "" {
			return a.AppendTo(b)
		}
		return appendIPv6(b, a.As16())
	}
	o := a.As4()
	b = appendOctet(b, o[0])
	b = appendOctet(append(b, '.'), o[1])
	b = appendOctet(append(b, '.'), o[2])
	return appendOctet(append(b, '.'), o[3])
}

// appendIPv6 appends x in the text form of RFC 5952, as netip does: groups
// in lower-case hex without leading zeros, the longest run of two or more
// zero groups (the first of equals) as "::".
func appendIPv6(b []byte, x [16]byte) []byte {
	var groups [8]uint16
	var zero uint // bit i: group i is 0
	for i := range groups {
		groups[i] = uint16(x[2*i])<<8 | uint16(x[2*i+1])
		if groups[i] == 0 {
			zero |= 1 << i
		}
	}
	runStart, runEnd := 8, 8 // no run
	for i, longest := 0, 1; zero>>i != 0; {
		i += bits.TrailingZeros(zero >> i) // next zero group
		n := bits.TrailingZeros(^(zero >> i))
		if n > longest {
			runStart, runEnd, longest = i, i+n, n
		}
		i += n
	}
	for i := 0; i < 8; i++ {
		if i == runStart {
			b = append(b, ':', ':')
			i = runEnd
			if i == 8 {
				break
			}
		} else if i > 0 {
			b = append(b, ':')
		}
		b = appendHex16(b, groups[i])
	}
	return b
}

func appendHex16(b []byte, v uint16) []byte {
	switch {
	case v >= 0x1000:
		return append(b, hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
	case v >= 0x100:
		return append(b, hexDigits[v>>8], hexDigits[v>>4&0xf], hexDigits[v&0xf])
	case v >= 0x10:
		return append(b, hexDigits[v>>4], hexDigits[v&0xf])
	}
	return append(b, hexDigits[v])
}

func appendOctet(b []byte, v byte) []byte {
	switch {
	case v >= 100:
		r := int(v%100) * 2
		return append(b, '0'+v/100, digitPairs[r], digitPairs[r+1])
	case v >= 10:
		return append(b, digitPairs[int(v)*2], digitPairs[int(v)*2+1])
	}
	return append(b, '0'+v)
}
