package analyze

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/flowlog/flowlog/flow"
)

// noField marks a column the Scanner does not parse: a field flowlog does
// not know, or one the report does not need.
const noField = flow.FieldID(255)

// valueKind selects the fast path that parses a column's values; anything
// the fast path does not accept goes through flow.Record.SetField, which
// is what flow.Format.ParseRecord does for that field.
type valueKind uint8

const (
	kindOther valueKind = iota
	kindNumber
	kindAddr
	kindAction
	kindStatus
)

// Scanner parses only the values a report needs from record lines of one
// format. For the columns it parses it agrees with
// flow.Format.ParseRecord (FuzzScanner holds it to that): same values,
// same "-" handling, same errors for a bad value, and the same *CountError
// for a line with another number of values. Values of the other columns
// are not looked at, so a line ParseRecord refuses for a bad value in a
// column the report does not use is still read.
//
// A Scanner is not safe for concurrent use; each reader has its own.
type Scanner struct {
	format *flow.Format
	cols   []flow.FieldID // per column: the field to parse, or noField
	kinds  []valueKind
	need   flow.FieldSet // needed fields the format has
	n      int           // values per line
	last   int           // index of the last column to parse; -1 for none

	starts []int32 // where the first last+2 values of the line start
}

// NewScanner returns a Scanner that parses the fields of need that format
// has into a flow.Record.
func NewScanner(format *flow.Format, need flow.FieldSet) *Scanner {
	names := strings.Fields(format.Header())
	s := &Scanner{format: format, n: len(names), last: -1}
	s.cols = make([]flow.FieldID, len(names))
	s.kinds = make([]valueKind, len(names))
	for i, name := range names {
		id, ok := flow.FieldByName(name)
		if !ok || !need.Has(id) {
			s.cols[i] = noField
			continue
		}
		s.cols[i] = id
		s.kinds[i] = kindOf(id)
		s.need = s.need.With(id)
		s.last = i
	}
	s.starts = make([]int32, s.last+2)
	return s
}

func kindOf(id flow.FieldID) valueKind {
	switch id {
	case flow.FieldVersion, flow.FieldSrcPort, flow.FieldDstPort, flow.FieldProtocol,
		flow.FieldPackets, flow.FieldBytes, flow.FieldStart, flow.FieldEnd,
		flow.FieldTCPFlags, flow.FieldTrafficPath:
		return kindNumber
	case flow.FieldSrcAddr, flow.FieldDstAddr, flow.FieldPktSrcAddr, flow.FieldPktDstAddr:
		return kindAddr
	case flow.FieldAction:
		return kindAction
	case flow.FieldLogStatus:
		return kindStatus
	}
	return kindOther
}

// Format returns the format the Scanner reads.
func (s *Scanner) Format() *flow.Format { return s.format }

// Fields returns the fields the Scanner parses: the needed fields the
// format has.
func (s *Scanner) Fields() flow.FieldSet { return s.need }

// Scan parses the needed values of line into r. r.Present is set to the
// parsed fields that have a value; the values of other fields of r are
// left as they were (a reused Record keeps its strings, so an id equal to
// the last one is not copied again). Errors are those of
// flow.Format.ParseRecord: a *flow.CountError when the line has another
// number of values, a *flow.FieldError for a bad needed value.
func (s *Scanner) Scan(line []byte, r *flow.Record) error {
	count, ok := s.tokenize(line)
	if !ok {
		count = s.tokenizeSlow(line)
	}
	if count != s.n {
		return &flow.CountError{Expected: s.n, Found: count}
	}
	r.Present = 0
	for i := 0; i <= s.last; i++ {
		id := s.cols[i]
		if id == noField {
			continue
		}
		tok := line[s.starts[i]:s.end(line, i, count)]
		switch s.kinds[i] {
		case kindNumber:
			if n, ok := parseDigits(tok); ok && setNumber(r, id, n) {
				r.Present |= 1 << id
				continue
			}
		case kindAddr:
			if a, ok := parseIPv4(tok); ok {
				setAddr(r, id, a)
				r.Present |= 1 << id
				continue
			}
		case kindAction:
			switch string(tok) {
			case "ACCEPT":
				r.Action = flow.ActionAccept
				r.Present |= 1 << id
				continue
			case "REJECT":
				r.Action = flow.ActionReject
				r.Present |= 1 << id
				continue
			}
		case kindStatus:
			if string(tok) == "OK" {
				r.LogStatus = flow.LogStatusOK
				r.Present |= 1 << id
				continue
			}
		}
		if err := r.SetField(id, tok); err != nil {
			return err
		}
	}
	return nil
}

const (
	lo7    = 0x7f7f7f7f7f7f7f7f
	hi     = 0x8080808080808080
	spaces = 0x2020202020202020
)

// zeroBytes returns a word with the high bit of each zero byte of x set,
// and nothing else (exact, unlike the borrow trick).
func zeroBytes(x uint64) uint64 { return ^((x&lo7 + lo7) | x | lo7) }

// tokenize finds where the values of line start, eight bytes at a time:
// values are separated by runs of spaces. It records the starts of the
// first last+2 values (the start of the value after the last needed one
// bounds it) and returns how many values there are. It reports false,
// leaving the work to tokenizeSlow, when the line holds any byte below
// 0x20 (tabs, CR and the other separators ParseRecord also accepts).
func (s *Scanner) tokenize(line []byte) (int, bool) {
	starts := s.starts
	want := len(starts)
	count := 0
	afterSep := uint64(0x80) // the byte before the line counts as a separator
	n := len(line)
	full := n &^ 7
	// The last, partial word is padded with spaces, which end the last
	// value: loaded from the buffer beyond the line when it has room
	// (the bytes there are masked off), else copied.
	var tail uint64
	if full < n {
		if cap(line)-full >= 8 {
			keep := uint64(1)<<(8*uint(n-full)) - 1
			tail = binary.LittleEndian.Uint64(line[full:full+8])&keep | spaces&^keep
		} else {
			var b [8]byte
			copy(b[copy(b[:], line[full:]):], "        ")
			tail = binary.LittleEndian.Uint64(b[:])
		}
	}
	for base := 0; base < n; base += 8 {
		w := tail
		if base < full {
			w = binary.LittleEndian.Uint64(line[base : base+8])
		}
		// A byte below 0x20 sets the high bit of its lane here; with none
		// of them, no borrow crosses lanes, so the test is exact.
		if (w-spaces)&^w&hi != 0 {
			return 0, false
		}
		sep := zeroBytes(w ^ spaces)
		m := ^sep & hi & (sep<<8 | afterSep)
		afterSep = (sep >> 56) & 0x80
		switch c := bits.OnesCount64(m); {
		case count >= want:
			count += c
		case count+c <= want:
			for ; m != 0; m &= m - 1 {
				starts[count] = int32(base + bits.TrailingZeros64(m)>>3)
				count++
			}
		default:
			for ; m != 0; m &= m - 1 {
				if count < want {
					starts[count] = int32(base + bits.TrailingZeros64(m)>>3)
				}
				count++
			}
		}
	}
	return count, true
}

// end returns where value i ends, given that the line has count values
// and their starts are recorded up to index last+1.
func (s *Scanner) end(line []byte, i, count int) int {
	e := len(line)
	if i+1 < count {
		e = int(s.starts[i+1]) - 1
	}
	for e > int(s.starts[i]) && isSpace(line[e-1]) {
		e--
	}
	return e
}

// isSpace is flow's separator set: the bytes ParseRecord splits values on.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// tokenizeSlow is tokenize byte by byte, for lines with control bytes.
func (s *Scanner) tokenizeSlow(line []byte) int {
	count := 0
	want := len(s.starts)
	for i := 0; i < len(line); {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		if count < want {
			s.starts[count] = int32(i)
		}
		count++
		i = j
	}
	return count
}

// parseDigits parses 1 to 19 decimal digits, as ParseRecord's fast path.
// Eight digits at a time are checked and combined in one word (Unix
// times have ten).
func parseDigits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b[:8])
		v := w - 0x3030303030303030
		// Every byte '0'…'9': below 10 after the subtraction, with no
		// byte that borrowed (w's bytes were at least '0').
		if (w&0xf0f0f0f0f0f0f0f0) != 0x3030303030303030 || ((v+0x0606060606060606)&0xf0f0f0f0f0f0f0f0) != 0 {
			return 0, false
		}
		v = (v*10 + v>>8) & 0x00ff00ff00ff00ff
		v = (v*100 + v>>16) & 0x0000ffff0000ffff
		v = (v*10000 + v>>32) & 0xffffffff
		n = n*100000000 + v
		b = b[8:]
	}
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}

// setNumber stores n in the numeric field id, reporting false when n is
// out of the field's range (SetField then reports the error).
func setNumber(r *flow.Record, id flow.FieldID, n uint64) bool {
	switch id {
	case flow.FieldVersion:
		r.Version = uint8(n)
		return n <= math.MaxUint8
	case flow.FieldSrcPort:
		r.SrcPort = uint16(n)
		return n <= math.MaxUint16
	case flow.FieldDstPort:
		r.DstPort = uint16(n)
		return n <= math.MaxUint16
	case flow.FieldProtocol:
		r.Protocol = uint8(n)
		return n <= math.MaxUint8
	case flow.FieldTCPFlags:
		r.TCPFlags = uint8(n)
		return n <= math.MaxUint8
	case flow.FieldTrafficPath:
		r.TrafficPath = uint8(n)
		return n <= math.MaxUint8
	case flow.FieldPackets:
		r.Packets = n
	case flow.FieldBytes:
		r.Bytes = n
	case flow.FieldStart:
		r.Start = int64(n)
	case flow.FieldEnd:
		r.End = int64(n)
	default:
		return false
	}
	return true
}

func setAddr(r *flow.Record, id flow.FieldID, a netip.Addr) {
	switch id {
	case flow.FieldSrcAddr:
		r.SrcAddr = a
	case flow.FieldDstAddr:
		r.DstAddr = a
	case flow.FieldPktSrcAddr:
		r.PktSrcAddr = a
	case flow.FieldPktDstAddr:
		r.PktDstAddr = a
	}
}

// parseIPv4 parses a whole value as a dotted-quad IPv4 address the way
// netip.ParseAddr does (no leading zeros, four fields of at most 255).
func parseIPv4(b []byte) (netip.Addr, bool) {
	var fields [4]byte
	pos, val, digits := 0, 0, 0
	for _, c := range b {
		if d := c - '0'; d <= 9 {
			if digits == 1 && val == 0 {
				return netip.Addr{}, false
			}
			val = val*10 + int(d)
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
			continue
		}
		if c != '.' || digits == 0 || pos == 3 {
			return netip.Addr{}, false
		}
		fields[pos] = byte(val)
		pos, val, digits = pos+1, 0, 0
	}
	if pos != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	fields[3] = byte(val)
	return netip.AddrFrom4(fields), true
}
