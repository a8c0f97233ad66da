package flow

// FieldID names one field of the AWS record format. The order is the order
// of the spec's field table (spec §3), which is also the order AWS documents.
type FieldID uint8

const (
	FieldVersion FieldID = iota
	FieldAccountID
	FieldInterfaceID
	FieldSrcAddr
	FieldDstAddr
	FieldSrcPort
	FieldDstPort
	FieldProtocol
	FieldPackets
	FieldBytes
	FieldStart
	FieldEnd
	FieldAction
	FieldLogStatus
	FieldVPCID
	FieldSubnetID
	FieldInstanceID
	FieldTCPFlags
	FieldType
	FieldPktSrcAddr
	FieldPktDstAddr
	FieldRegion
	FieldAZID
	FieldSublocationType
	FieldSublocationID
	FieldPktSrcAWSService
	FieldPktDstAWSService
	FieldFlowDirection
	FieldTrafficPath
	FieldECSClusterARN
	FieldECSClusterName
	FieldECSContainerInstanceARN
	FieldECSContainerInstanceID
	FieldECSContainerID
	FieldECSSecondContainerID
	FieldECSServiceName
	FieldECSTaskDefinitionARN
	FieldECSTaskARN
	FieldECSTaskID
	FieldRejectReason

	NumFields int = iota // number of known fields
)

// FieldInfo describes one field: its name in formats, the record version
// that introduced it, and what it means.
type FieldInfo struct {
	ID      FieldID
	Name    string // as written in ${name}
	Version int
	Meaning string
}

// Fields lists every known field in spec order; Fields[id].ID == id.
var Fields = [NumFields]FieldInfo{
	{FieldVersion, "version", 2, "record version: the highest version among the fields of the format"},
	{FieldAccountID, "account-id", 2, "AWS account id of the owner of the interface"},
	{FieldInterfaceID, "interface-id", 2, "id of the network interface (eni-…)"},
	{FieldSrcAddr, "srcaddr", 2, "source address; for outgoing traffic the interface's primary address"},
	{FieldDstAddr, "dstaddr", 2, "destination address; for incoming traffic the interface's primary address"},
	{FieldSrcPort, "srcport", 2, "source port (0 for protocols without ports)"},
	{FieldDstPort, "dstport", 2, "destination port (0 for protocols without ports)"},
	{FieldProtocol, "protocol", 2, "IANA protocol number"},
	{FieldPackets, "packets", 2, "number of packets in the flow during the window"},
	{FieldBytes, "bytes", 2, "sum of IP-layer packet lengths"},
	{FieldStart, "start", 2, "Unix seconds of the first packet in the window"},
	{FieldEnd, "end", 2, "Unix seconds of the last packet in the window"},
	{FieldAction, "action", 2, "ACCEPT or REJECT"},
	{FieldLogStatus, "log-status", 2, "OK, NODATA (no traffic in the window) or SKIPDATA (records lost)"},
	{FieldVPCID, "vpc-id", 3, "id of the VPC of the interface"},
	{FieldSubnetID, "subnet-id", 3, "id of the subnet of the interface"},
	{FieldInstanceID, "instance-id", 3, "id of the instance the interface is attached to"},
	{FieldTCPFlags, "tcp-flags", 3, "OR of FIN(1), SYN(2), RST(4) and ACK(16, only with SYN)"},
	{FieldType, "type", 3, "traffic type: IPv4, IPv6 or EFA"},
	{FieldPktSrcAddr, "pkt-srcaddr", 3, "source address in the packet itself"},
	{FieldPktDstAddr, "pkt-dstaddr", 3, "destination address in the packet itself"},
	{FieldRegion, "region", 4, "region of the interface"},
	{FieldAZID, "az-id", 4, "availability zone id of the interface"},
	{FieldSublocationType, "sublocation-type", 4, "wavelength, outpost or localzone"},
	{FieldSublocationID, "sublocation-id", 4, "id of the sublocation"},
	{FieldPktSrcAWSService, "pkt-src-aws-service", 5, "AWS service of pkt-srcaddr (from ip-ranges.json)"},
	{FieldPktDstAWSService, "pkt-dst-aws-service", 5, "AWS service of pkt-dstaddr (from ip-ranges.json)"},
	{FieldFlowDirection, "flow-direction", 5, "ingress or egress, relative to the interface"},
	{FieldTrafficPath, "traffic-path", 5, "egress path: 1 same VPC … 8 internet gateway"},
	{FieldECSClusterARN, "ecs-cluster-arn", 7, "ARN of the ECS cluster"},
	{FieldECSClusterName, "ecs-cluster-name", 7, "name of the ECS cluster"},
	{FieldECSContainerInstanceARN, "ecs-container-instance-arn", 7, "ARN of the ECS container instance"},
	{FieldECSContainerInstanceID, "ecs-container-instance-id", 7, "id of the ECS container instance"},
	{FieldECSContainerID, "ecs-container-id", 7, "Docker id of the first container of the task"},
	{FieldECSSecondContainerID, "ecs-second-container-id", 7, "Docker id of the second container of the task"},
	{FieldECSServiceName, "ecs-service-name", 7, "name of the ECS service"},
	{FieldECSTaskDefinitionARN, "ecs-task-definition-arn", 7, "ARN of the ECS task definition"},
	{FieldECSTaskARN, "ecs-task-arn", 7, "ARN of the ECS task"},
	{FieldECSTaskID, "ecs-task-id", 7, "id of the ECS task"},
	{FieldRejectReason, "reject-reason", 8, "why traffic was rejected (BPA, or a flowlog extension)"},
}

// String returns the field's name as written in formats.
func (id FieldID) String() string {
	if int(id) < NumFields {
		return Fields[id].Name
	}
	return "unknown"
}

// FieldSet is a set of FieldIDs.
type FieldSet uint64

// Has reports whether id is in the set.
func (s FieldSet) Has(id FieldID) bool { return s&(1<<id) != 0 }

// With returns the set with id added.
func (s FieldSet) With(id FieldID) FieldSet { return s | 1<<id }

// Without returns the set with id removed.
func (s FieldSet) Without(id FieldID) FieldSet { return s &^ (1 << id) }
