package sink

import "github.com/flowlog/flowlog/flow"

// MaxFieldBytes is the widest text of each field's value, by flow.FieldID:
// the type's widest value for numbers and addresses, the length AWS
// allows for ids and names (an "arn:aws-iso-b" ARN in the longest region
// for the ARNs, 255 characters for ECS names). TestMaxLineBytes renders a
// record of such values to check every entry.
var MaxFieldBytes = [flow.NumFields]int{
	flow.FieldVersion:                 3,  // uint8
	flow.FieldAccountID:               12, // 12 digits ("unknown" is shorter)
	flow.FieldInterfaceID:             21, // eni- and 17 hex digits
	flow.FieldSrcAddr:                 39, // eight groups of four hex digits
	flow.FieldDstAddr:                 39,
	flow.FieldSrcPort:                 5,
	flow.FieldDstPort:                 5,
	flow.FieldProtocol:                3,
	flow.FieldPackets:                 20, // uint64
	flow.FieldBytes:                   20,
	flow.FieldStart:                   20, // int64, sign included
	flow.FieldEnd:                     20,
	flow.FieldAction:                  6,
	flow.FieldLogStatus:               8,
	flow.FieldVPCID:                   21,
	flow.FieldSubnetID:                24,
	flow.FieldInstanceID:              19,
	flow.FieldTCPFlags:                3,
	flow.FieldType:                    4,
	flow.FieldPktSrcAddr:              39,
	flow.FieldPktDstAddr:              39,
	flow.FieldRegion:                  20, // region codes are at most 15 today
	flow.FieldAZID:                    20,
	flow.FieldSublocationType:         10, // wavelength
	flow.FieldSublocationID:           32,
	flow.FieldPktSrcAWSService:        32, // ROUTE53_HEALTHCHECKS_PUBLISHING is 31
	flow.FieldPktDstAWSService:        32,
	flow.FieldFlowDirection:           7,
	flow.FieldTrafficPath:             3,
	flow.FieldECSClusterARN:           315, // arn:aws-iso-b:ecs:REGION:ACCOUNT:cluster/NAME(255)
	flow.FieldECSClusterName:          255,
	flow.FieldECSContainerInstanceARN: 359, // …:container-instance/CLUSTER(255)/ID(32)
	flow.FieldECSContainerInstanceID:  32,
	flow.FieldECSContainerID:          64,
	flow.FieldECSSecondContainerID:    64,
	flow.FieldECSServiceName:          255,
	flow.FieldECSTaskDefinitionARN:    334, // …:task-definition/FAMILY(255):REVISION(10)
	flow.FieldECSTaskARN:              345, // …:task/CLUSTER(255)/ID(32)
	flow.FieldECSTaskID:               32,
	flow.FieldRejectReason:            32,
}

// MaxLineBytes is the longest record line (without its line end) of a
// record whose values fit MaxFieldBytes, in any format: every field,
// separated by single spaces. Line-based destinations budget with it in
// advance: a CloudWatch Logs event (at most 256 KiB) or a Kafka message
// always has room for one record line, so a record is never refused for
// its size.
const MaxLineBytes = 2652

// Compile-time checks that one line fits the destinations' per-message
// limits: CloudWatch Logs events (262,144 bytes including 26 bytes of
// overhead) and Kafka's default message.max.bytes (1,048,588).
const (
	_ uint = 262144 - 26 - MaxLineBytes
	_ uint = 1048588 - 2*MaxLineBytes
)
