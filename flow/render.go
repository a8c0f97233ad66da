package flow

import (
	"unicode/utf8"
)

// Append appends r as a record line in format f (without a line end):
// values in format order separated by one space, "-" for every field not
// in r.Present or without a value (an invalid address, an empty string, an
// unknown enum). ${version} is r.Version as stored. Unknown columns of a
// lenient format take r.Extra in order ("-" for a missing or empty value).
//
// A string value containing whitespace would split into two values for
// every reader, so whitespace bytes in strings are written as '_'.
//
// Append does not allocate when b has room for the line.
func (f *Format) Append(b []byte, r *Record) []byte {
	for i := range f.cols {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendText(b, &f.cols[i], r)
	}
	return b
}

func appendText(b []byte, c *column, r *Record) []byte {
	if c.id == fieldExtra {
		if c.extra < len(r.Extra) {
			return appendToken(b, r.Extra[c.extra])
		}
		return append(b, '-')
	}
	if !r.Present.Has(c.id) {
		return append(b, '-')
	}
	switch c.id {
	case FieldVersion:
		return appendUint(b, uint64(r.Version))
	case FieldSrcAddr:
		return appendAddr(b, r.SrcAddr)
	case FieldDstAddr:
		return appendAddr(b, r.DstAddr)
	case FieldPktSrcAddr:
		return appendAddr(b, r.PktSrcAddr)
	case FieldPktDstAddr:
		return appendAddr(b, r.PktDstAddr)
	case FieldSrcPort:
		return appendUint(b, uint64(r.SrcPort))
	case FieldDstPort:
		return appendUint(b, uint64(r.DstPort))
	case FieldProtocol:
		return appendUint(b, uint64(r.Protocol))
	case FieldPackets:
		return appendUint(b, r.Packets)
	case FieldBytes:
		return appendUint(b, r.Bytes)
	case FieldStart:
		return appendInt(b, r.Start)
	case FieldEnd:
		return appendInt(b, r.End)
	case FieldAction:
		return append(b, r.Action.String()...)
	case FieldLogStatus:
		return append(b, r.LogStatus.String()...)
	case FieldFlowDirection:
		return append(b, r.FlowDirection.String()...)
	case FieldTCPFlags:
		return appendUint(b, uint64(r.TCPFlags))
	case FieldTrafficPath:
		return appendUint(b, uint64(r.TrafficPath))
	}
	if p := stringField(r, c.id); p != nil {
		return appendToken(b, *p)
	}
	return append(b, '-')
}

// appendToken appends a string value, "-" when empty, with separator bytes
// replaced so the line keeps its shape.
func appendToken(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	n := len(b)
	b = append(b, s...)
	for i := n; i < len(b); i++ {
		if isFormatSpace(b[i]) {
			b[i] = '_'
		}
	}
	return b
}

// StringValue returns the value of a string-valued field (the ids, type,
// region and zone, sublocation, AWS services, ECS fields, reject-reason),
// "" for any other field.
func (r *Record) StringValue(id FieldID) string {
	if p := stringField(r, id); p != nil {
		return *p
	}
	return ""
}

// stringField returns the Record field holding the string-valued field id,
// or nil when id is not a string field.
func stringField(r *Record, id FieldID) *string {
	switch id {
	case FieldAccountID:
		return &r.AccountID
	case FieldInterfaceID:
		return &r.InterfaceID
	case FieldVPCID:
		return &r.VPCID
	case FieldSubnetID:
		return &r.SubnetID
	case FieldInstanceID:
		return &r.InstanceID
	case FieldType:
		return &r.Type
	case FieldRegion:
		return &r.Region
	case FieldAZID:
		return &r.AZID
	case FieldSublocationType:
		return &r.SublocationType
	case FieldSublocationID:
		return &r.SublocationID
	case FieldPktSrcAWSService:
		return &r.PktSrcService
	case FieldPktDstAWSService:
		return &r.PktDstService
	case FieldRejectReason:
		return &r.RejectReason
	}
	if id >= FieldECSClusterARN && id <= FieldECSTaskID {
		return &r.ECS[id-FieldECSClusterARN]
	}
	return nil
}

// stringFields is the set of fields whose values are strings.
const stringFields = FieldSet(0) |
	1<<FieldAccountID | 1<<FieldInterfaceID | 1<<FieldVPCID | 1<<FieldSubnetID |
	1<<FieldInstanceID | 1<<FieldType | 1<<FieldRegion | 1<<FieldAZID |
	1<<FieldSublocationType | 1<<FieldSublocationID | 1<<FieldPktSrcAWSService |
	1<<FieldPktDstAWSService | 1<<FieldRejectReason |
	1<<FieldECSClusterARN | 1<<FieldECSClusterName | 1<<FieldECSContainerInstanceARN |
	1<<FieldECSContainerInstanceID | 1<<FieldECSContainerID | 1<<FieldECSSecondContainerID |
	1<<FieldECSServiceName | 1<<FieldECSTaskDefinitionARN | 1<<FieldECSTaskARN | 1<<FieldECSTaskID

// numericFields is the set of fields AppendJSON writes as JSON numbers.
const numericFields = FieldSet(0) |
	1<<FieldVersion | 1<<FieldSrcPort | 1<<FieldDstPort | 1<<FieldProtocol |
	1<<FieldPackets | 1<<FieldBytes | 1<<FieldStart | 1<<FieldEnd |
	1<<FieldTCPFlags | 1<<FieldTrafficPath

// AppendJSON appends r as one JSON object (no line end): keys are the field
// names in format order, numeric fields (version, ports, protocol, packets,
// bytes, start, end, tcp-flags, traffic-path) are JSON numbers, every other
// value a JSON string, and a value Append would write as "-" is null.
// Unknown columns of a lenient format are strings from r.Extra.
//
// AppendJSON does not allocate when b has room for the object.
func (f *Format) AppendJSON(b []byte, r *Record) []byte {
	for i := range f.cols {
		c := &f.cols[i]
		b = append(b, f.jsonKeys[i]...)
		if c.id == fieldExtra {
			if c.extra < len(r.Extra) && r.Extra[c.extra] != "" {
				b = appendJSONString(b, r.Extra[c.extra])
			} else {
				b = append(b, "null"...)
			}
			continue
		}
		if !r.Present.Has(c.id) {
			b = append(b, "null"...)
			continue
		}
		if numericFields.Has(c.id) {
			b = appendText(b, c, r)
			continue
		}
		switch c.id {
		case FieldSrcAddr, FieldDstAddr, FieldPktSrcAddr, FieldPktDstAddr:
			a := *addrField(r, c.id)
			if !a.IsValid() {
				b = append(b, "null"...)
				continue
			}
			if a.Zone() != "" {
				b = appendJSONString(b, a.String())
				continue
			}
			// Addresses without a zone need no escaping.
			b = append(b, '"')
			b = a.AppendTo(b)
			b = append(b, '"')
			continue
		}
		var s string
		switch c.id {
		case FieldAction:
			s = enumJSON(r.Action.String())
		case FieldLogStatus:
			s = enumJSON(r.LogStatus.String())
		case FieldFlowDirection:
			s = enumJSON(r.FlowDirection.String())
		default:
			if p := stringField(r, c.id); p != nil {
				s = *p
			}
		}
		if s == "" {
			b = append(b, "null"...)
			continue
		}
		b = appendJSONString(b, s)
	}
	if len(f.cols) == 0 {
		b = append(b, '{')
	}
	return append(b, '}')
}

// enumJSON maps an enum's "-" (no value) to "" so it renders as null.
func enumJSON(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string, escaping like
// encoding/json: quotes, backslashes, control characters, U+2028/U+2029,
// and invalid UTF-8 as U+FFFD. HTML characters are left alone.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
