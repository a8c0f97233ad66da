package flow

import (
	"errors"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
)

// FieldError reports a record value that is not valid for its field.
type FieldError struct {
	Field string // field name, e.g. "srcport"
	Value string // the value as written
	Err   error  // what is wrong with it
}

func (e *FieldError) Error() string {
	return "field " + e.Field + ": invalid value " + strconv.Quote(e.Value) + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// CountError reports a record line with a different number of values than
// its format has fields.
type CountError struct {
	Expected, Found int
}

func (e *CountError) Error() string {
	return "expected " + strconv.Itoa(e.Expected) + " fields, found " + strconv.Itoa(e.Found)
}

var (
	errNotNumber = errors.New("not a decimal number")
	errEnum      = errors.New("not a known value")
)

type rangeError struct{ min, max int64 }

func (e rangeError) Error() string {
	return "out of range " + strconv.FormatInt(e.min, 10) + "…" + strconv.FormatInt(e.max, 10)
}

// ParseRecord parses one record line in format f into r, overwriting every
// field of r. Values are separated by runs of whitespace (AWS's own samples
// have a doubled space); there must be exactly f.Len() of them, else the
// error is a *CountError. "-" means no value: the field is left out of
// r.Present. A value that does not parse for its field is a *FieldError
// naming the field and the value. On error, r holds a partial record.
//
// Numbers, enums and addresses are parsed without allocating. String
// values never point into line (the caller may reuse it): a string equal
// to the one r already holds for that field is kept, any other is copied.
// Reading a file into one reused Record therefore allocates only when an
// id changes, with no cache to size or share: the Record is the cache.
// r.Extra is a new slice for each record of a format with unknown fields
// (so a caller keeping copies of r never sees them change) and nil
// otherwise.
func (f *Format) ParseRecord(line []byte, r *Record) error {
	oldExtra := r.Extra
	r.Extra = nil
	if len(f.unknown) > 0 {
		r.Extra = make([]string, 0, len(f.unknown))
	}
	r.Present = 0
	r.Version, r.SrcPort, r.DstPort, r.Protocol, r.TCPFlags, r.TrafficPath = 0, 0, 0, 0, 0, 0
	r.SrcAddr, r.DstAddr, r.PktSrcAddr, r.PktDstAddr = netip.Addr{}, netip.Addr{}, netip.Addr{}, netip.Addr{}
	r.Packets, r.Bytes, r.Start, r.End = 0, 0, 0, 0
	r.Action, r.LogStatus, r.FlowDirection = ActionUnknown, LogStatusUnknown, DirectionUnknown

	i := 0
	for ci := range f.cols {
		c := &f.cols[ci]
		for i < len(line) && isFormatSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return &CountError{Expected: len(f.cols), Found: ci}
		}
		switch c.kind {
		case kindUnsigned:
			// Most values are numbers: parse them in the same pass that
			// finds their end. Anything unusual takes the general path.
			var n uint64
			j := i
			for j < len(line) && j-i < 19 {
				d := line[j] - '0'
				if d > 9 {
					break
				}
				n = n*10 + uint64(d)
				j++
			}
			if j > i && (j == len(line) || isFormatSpace(line[j])) && setUnsigned(r, c.id, n) {
				r.Present |= 1 << c.id
				i = j
				continue
			}
		case kindAddr:
			if a, n := scanIPv4(line[i:]); n > 0 {
				*addrField(r, c.id) = a
				r.Present |= 1 << c.id
				i += n
				continue
			}
		}
		j := i
		for j < len(line) && !isFormatSpace(line[j]) {
			j++
		}
		tok := line[i:j]
		i = j
		if c.id == fieldExtra {
			v := ""
			if !(len(tok) == 1 && tok[0] == '-') {
				v = keepString(oldExtra, c.extra, tok)
			}
			r.Extra = append(r.Extra, v)
			continue
		}
		if len(tok) == 1 && tok[0] == '-' {
			continue
		}
		if err := setField(r, c.id, tok); err != nil {
			// A value in the wrong place is most often a line of
			// another format: say so rather than blame the value.
			if n := ci + 1 + countTokens(line[i:]); n != len(f.cols) {
				return &CountError{Expected: len(f.cols), Found: n}
			}
			return err
		}
		r.Present |= 1 << c.id
	}
	for i < len(line) && isFormatSpace(line[i]) {
		i++
	}
	if i < len(line) {
		return &CountError{Expected: len(f.cols), Found: len(f.cols) + countTokens(line[i:])}
	}
	if missing := stringFields &^ r.Present; missing != 0 {
		clearStrings(r, missing)
	}
	return nil
}

// clearStrings empties the string fields in missing. Most are empty
// already; testing that first saves the writes (and their write barriers).
func clearStrings(r *Record, missing FieldSet) {
	if r.AccountID != "" && missing.Has(FieldAccountID) {
		r.AccountID = ""
	}
	if r.InterfaceID != "" && missing.Has(FieldInterfaceID) {
		r.InterfaceID = ""
	}
	if r.VPCID != "" && missing.Has(FieldVPCID) {
		r.VPCID = ""
	}
	if r.SubnetID != "" && missing.Has(FieldSubnetID) {
		r.SubnetID = ""
	}
	if r.InstanceID != "" && missing.Has(FieldInstanceID) {
		r.InstanceID = ""
	}
	if r.Type != "" && missing.Has(FieldType) {
		r.Type = ""
	}
	if r.Region != "" && missing.Has(FieldRegion) {
		r.Region = ""
	}
	if r.AZID != "" && missing.Has(FieldAZID) {
		r.AZID = ""
	}
	if r.SublocationType != "" && missing.Has(FieldSublocationType) {
		r.SublocationType = ""
	}
	if r.SublocationID != "" && missing.Has(FieldSublocationID) {
		r.SublocationID = ""
	}
	if r.PktSrcService != "" && missing.Has(FieldPktSrcAWSService) {
		r.PktSrcService = ""
	}
	if r.PktDstService != "" && missing.Has(FieldPktDstAWSService) {
		r.PktDstService = ""
	}
	if r.RejectReason != "" && missing.Has(FieldRejectReason) {
		r.RejectReason = ""
	}
	for i := range r.ECS {
		if r.ECS[i] != "" && missing.Has(FieldECSClusterARN+FieldID(i)) {
			r.ECS[i] = ""
		}
	}
}

func countTokens(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		for i < len(b) && isFormatSpace(b[i]) {
			i++
		}
		if i == len(b) {
			break
		}
		n++
		for i < len(b) && !isFormatSpace(b[i]) {
			i++
		}
	}
	return n
}

// keepString returns old[i] when it equals tok, else a copy of tok.
func keepString(old []string, i int, tok []byte) string {
	if i < len(old) && old[i] == string(tok) {
		return old[i]
	}
	return string(tok)
}

func fieldErr(id FieldID, tok []byte, err error) error {
	return &FieldError{Field: Fields[id].Name, Value: string(tok), Err: err}
}

// addrFields are the fields whose values are IP addresses.
const addrFields = FieldSet(0) | 1<<FieldSrcAddr | 1<<FieldDstAddr | 1<<FieldPktSrcAddr | 1<<FieldPktDstAddr

// addrField returns the Record field of the address field id.
func addrField(r *Record, id FieldID) *netip.Addr {
	switch id {
	case FieldSrcAddr:
		return &r.SrcAddr
	case FieldDstAddr:
		return &r.DstAddr
	case FieldPktSrcAddr:
		return &r.PktSrcAddr
	default:
		return &r.PktDstAddr
	}
}

// scanIPv4 parses the dotted-quad IPv4 address at the start of b, which
// must end at a separator or at the end of b, and returns it with its
// length; n == 0 when b does not start with one (then the general path
// parses or rejects the value). It accepts what netip.ParseAddr accepts.
func scanIPv4(b []byte) (addr netip.Addr, n int) {
	var fields [4]byte
	pos, val, digits := 0, 0, 0
	for ; n < len(b); n++ {
		c := b[n]
		if d := c - '0'; d <= 9 {
			if digits == 1 && val == 0 {
				return netip.Addr{}, 0 // leading zero
			}
			val = val*10 + int(d)
			digits++
			if val > 255 {
				return netip.Addr{}, 0
			}
			continue
		}
		if c == '.' {
			if digits == 0 || pos == 3 {
				return netip.Addr{}, 0
			}
			fields[pos] = byte(val)
			pos, val, digits = pos+1, 0, 0
			continue
		}
		if isFormatSpace(c) {
			break
		}
		return netip.Addr{}, 0
	}
	if pos != 3 || digits == 0 {
		return netip.Addr{}, 0
	}
	fields[3] = byte(val)
	return netip.AddrFrom4(fields), n
}

func setField(r *Record, id FieldID, tok []byte) error {
	var err error
	switch id {
	case FieldVersion:
		r.Version, err = parseUint8(tok)
	case FieldSrcAddr:
		r.SrcAddr, err = parseAddr(tok)
	case FieldDstAddr:
		r.DstAddr, err = parseAddr(tok)
	case FieldPktSrcAddr:
		r.PktSrcAddr, err = parseAddr(tok)
	case FieldPktDstAddr:
		r.PktDstAddr, err = parseAddr(tok)
	case FieldSrcPort:
		r.SrcPort, err = parseUint16(tok)
	case FieldDstPort:
		r.DstPort, err = parseUint16(tok)
	case FieldProtocol:
		r.Protocol, err = parseUint8(tok)
	case FieldTCPFlags:
		r.TCPFlags, err = parseUint8(tok)
	case FieldTrafficPath:
		r.TrafficPath, err = parseUint8(tok)
	case FieldPackets:
		r.Packets, err = parseUint(tok, math.MaxUint64)
	case FieldBytes:
		r.Bytes, err = parseUint(tok, math.MaxUint64)
	case FieldStart:
		r.Start, err = parseInt64(tok)
	case FieldEnd:
		r.End, err = parseInt64(tok)
	case FieldAction:
		switch string(tok) {
		case "ACCEPT":
			r.Action = ActionAccept
		case "REJECT":
			r.Action = ActionReject
		default:
			err = errEnum
		}
	case FieldLogStatus:
		switch string(tok) {
		case "OK":
			r.LogStatus = LogStatusOK
		case "NODATA":
			r.LogStatus = LogStatusNoData
		case "SKIPDATA":
			r.LogStatus = LogStatusSkipData
		default:
			err = errEnum
		}
	case FieldFlowDirection:
		switch string(tok) {
		case "ingress":
			r.FlowDirection = DirectionIngress
		case "egress":
			r.FlowDirection = DirectionEgress
		default:
			err = errEnum
		}
	default:
		p := stringField(r, id)
		if *p != string(tok) {
			*p = string(tok)
		}
	}
	if err != nil {
		return fieldErr(id, tok, err)
	}
	return nil
}

// parseUint parses an unsigned decimal number no greater than max.
func parseUint(tok []byte, max uint64) (uint64, error) {
	if len(tok) == 0 {
		return 0, errNotNumber
	}
	var n uint64
	if len(tok) < 20 { // at most 19 digits: no uint64 overflow
		for _, c := range tok {
			d := c - '0'
			if d > 9 {
				return 0, errNotNumber
			}
			n = n*10 + uint64(d)
		}
		if n > max {
			return 0, rangeError{0, int64(min(max, math.MaxInt64))}
		}
		return n, nil
	}
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, errNotNumber
		}
		hi, lo := bits.Mul64(n, 10)
		lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 {
			return 0, rangeError{0, int64(min(max, math.MaxInt64))}
		}
		n = lo
	}
	if n > max {
		return 0, rangeError{0, int64(min(max, math.MaxInt64))}
	}
	return n, nil
}

func parseUint8(tok []byte) (uint8, error) {
	n, err := parseUint(tok, math.MaxUint8)
	return uint8(n), err
}

func parseUint16(tok []byte) (uint16, error) {
	n, err := parseUint(tok, math.MaxUint16)
	return uint16(n), err
}

// parseInt64 parses a decimal int64 with an optional leading '-' (start
// and end are Unix seconds; negative ones are odd but representable).
func parseInt64(tok []byte) (int64, error) {
	neg := len(tok) > 0 && tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	n, err := parseUint(tok, math.MaxInt64+1)
	if err != nil {
		if _, ok := err.(rangeError); ok {
			return 0, rangeError{math.MinInt64, math.MaxInt64}
		}
		return 0, err
	}
	if neg {
		return -int64(n), nil // MaxInt64+1 wraps to MinInt64, as wanted
	}
	if n > math.MaxInt64 {
		return 0, rangeError{math.MinInt64, math.MaxInt64}
	}
	return int64(n), nil
}

// parseAddr parses an IPv4 or IPv6 address exactly as netip.ParseAddr
// does, without allocating (netip.ParseAddr takes a string, and converting
// the line's bytes would allocate for every address). Addresses with a
// zone, which flow logs never have, and all errors go through
// netip.ParseAddr for its exact behaviour and messages.
func parseAddr(tok []byte) (netip.Addr, error) {
	for _, c := range tok {
		switch c {
		case '.':
			var a [4]byte
			if parseIPv4Fields(tok, a[:]) {
				return netip.AddrFrom4(a), nil
			}
			return netip.ParseAddr(string(tok))
		case ':':
			if a, ok := parseIPv6(tok); ok {
				return a, nil
			}
			return netip.ParseAddr(string(tok))
		case '%':
			return netip.ParseAddr(string(tok))
		}
	}
	return netip.ParseAddr(string(tok))
}

// parseIPv4Fields and parseIPv6 follow net/netip's parseIPv4Fields and
// parseIPv6 (Copyright The Go Authors, BSD licence) on bytes, reporting
// only success; FuzzParseAddr checks they accept exactly what
// netip.ParseAddr accepts and give the same address.
func parseIPv4Fields(s []byte, fields []byte) bool {
	var val, pos, digLen int
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if digLen == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digLen++
			if val > 255 {
				return false
			}
		case c == '.':
			if i == 0 || i == len(s)-1 || s[i-1] == '.' || pos == 3 {
				return false
			}
			fields[pos] = byte(val)
			pos++
			val, digLen = 0, 0
		default:
			return false
		}
	}
	if pos < 3 {
		return false
	}
	fields[3] = byte(val)
	return true
}

func parseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off := 0
		acc := uint32(0)
		for ; off < len(s); off++ {
			c := s[off]
			switch {
			case c >= '0' && c <= '9':
				acc = acc<<4 + uint32(c-'0')
			case c >= 'a' && c <= 'f':
				acc = acc<<4 + uint32(c-'a'+10)
			case c >= 'A' && c <= 'F':
				acc = acc<<4 + uint32(c-'A'+10)
			default:
				goto done
			}
			if off > 3 || acc > math.MaxUint16 {
				return netip.Addr{}, false
			}
		}
	done:
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' {
			if ellipsis < 0 && i != 12 || i+4 > 16 {
				return netip.Addr{}, false
			}
			if !parseIPv4Fields(s, ip[i:i+4]) {
				return netip.Addr{}, false
			}
			s = nil
			i += 4
			break
		}
		ip[i] = byte(acc >> 8)
		ip[i+1] = byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+n] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}

// setUnsigned stores n in the numeric field id, reporting false when n is
// out of the field's range (the general path then reports the error).
func setUnsigned(r *Record, id FieldID, n uint64) bool {
	switch id {
	case FieldVersion:
		r.Version = uint8(n)
		return n <= math.MaxUint8
	case FieldSrcPort:
		r.SrcPort = uint16(n)
		return n <= math.MaxUint16
	case FieldDstPort:
		r.DstPort = uint16(n)
		return n <= math.MaxUint16
	case FieldProtocol:
		r.Protocol = uint8(n)
		return n <= math.MaxUint8
	case FieldTCPFlags:
		r.TCPFlags = uint8(n)
		return n <= math.MaxUint8
	case FieldTrafficPath:
		r.TrafficPath = uint8(n)
		return n <= math.MaxUint8
	case FieldPackets:
		r.Packets = n
	case FieldBytes:
		r.Bytes = n
	case FieldStart:
		r.Start = int64(n)
		return n <= math.MaxInt64
	case FieldEnd:
		r.End = int64(n)
		return n <= math.MaxInt64
	default:
		return false
	}
	return true
}
