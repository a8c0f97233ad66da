package flow

import (
	"errors"
	"net/netip"
)

var errUnknownField = errors.New("not a known field")

// SetField sets the known field id of r from its text value, exactly as
// ParseRecord reads that field in a record line: "-" means no value (the
// field leaves r.Present and is zeroed), anything else must be valid for
// the field (else a *FieldError) and joins r.Present. Other fields of r are
// left alone. A string equal to the one r holds is kept, so setting the
// same ids again does not allocate. It lets a reader parse only the values
// a query needs.
func (r *Record) SetField(id FieldID, value []byte) error {
	if int(id) >= NumFields {
		return &FieldError{Field: id.String(), Value: string(value), Err: errUnknownField}
	}
	if len(value) == 1 && value[0] == '-' {
		r.Present = r.Present.Without(id)
		clearField(r, id)
		return nil
	}
	if err := setField(r, id, value); err != nil {
		return err
	}
	r.Present = r.Present.With(id)
	return nil
}

// clearField zeroes the field id of r.
func clearField(r *Record, id FieldID) {
	switch id {
	case FieldVersion:
		r.Version = 0
	case FieldSrcAddr, FieldDstAddr, FieldPktSrcAddr, FieldPktDstAddr:
		*addrField(r, id) = netip.Addr{}
	case FieldSrcPort:
		r.SrcPort = 0
	case FieldDstPort:
		r.DstPort = 0
	case FieldProtocol:
		r.Protocol = 0
	case FieldTCPFlags:
		r.TCPFlags = 0
	case FieldTrafficPath:
		r.TrafficPath = 0
	case FieldPackets:
		r.Packets = 0
	case FieldBytes:
		r.Bytes = 0
	case FieldStart:
		r.Start = 0
	case FieldEnd:
		r.End = 0
	case FieldAction:
		r.Action = ActionUnknown
	case FieldLogStatus:
		r.LogStatus = LogStatusUnknown
	case FieldFlowDirection:
		r.FlowDirection = DirectionUnknown
	default:
		if p := stringField(r, id); p != nil {
			*p = ""
		}
	}
}
