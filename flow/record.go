package flow

import "net/netip"

// Record is one flow log record with every known field. A field whose bit
// is not in Present has no value and renders as "-".
type Record struct {
	Present FieldSet

	Version         uint8
	AccountID       string
	InterfaceID     string
	SrcAddr         netip.Addr
	DstAddr         netip.Addr
	SrcPort         uint16
	DstPort         uint16
	Protocol        uint8
	Packets         uint64
	Bytes           uint64
	Start           int64
	End             int64
	Action          Action
	LogStatus       LogStatus
	VPCID           string
	SubnetID        string
	InstanceID      string
	TCPFlags        uint8
	Type            string // IPv4, IPv6, EFA
	PktSrcAddr      netip.Addr
	PktDstAddr      netip.Addr
	Region          string
	AZID            string
	SublocationType string
	SublocationID   string
	PktSrcService   string
	PktDstService   string
	FlowDirection   Direction
	TrafficPath     uint8
	ECS             [10]string // FieldECSClusterARN … FieldECSTaskID, in that order
	RejectReason    string

	// Extra holds the values of fields flowlog does not know (fields of
	// other AWS log kinds or later versions), in the order the format lists
	// them (Format.Unknown).
	Extra []string
}
