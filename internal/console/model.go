package console

import (
	"context"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// FlowLogs is the flow-log service as the console uses it; *ec2.Service
// implements it. Creating and deleting go through the same code, checks,
// authorizations and *api.Error errors as the EC2 Query API.
type FlowLogs interface {
	CreateFlowLogs(ctx context.Context, call *api.Call, in ec2.CreateFlowLogsInput) (ec2.CreateFlowLogsOutput, error)
	DescribeFlowLogs(ctx context.Context, in ec2.DescribeFlowLogsInput) (ec2.DescribeFlowLogsOutput, error)
	DeleteFlowLogs(ctx context.Context, call *api.Call, ids []string) ([]ec2.Unsuccessful, error)
	Inventory(ctx context.Context) (ec2.Inventory, error)
}

// LogEvents reads the messages of a CloudWatch Logs group, for flow logs
// that deliver there; *logs.Service implements it.
type LogEvents interface {
	// Messages returns the messages of the group's events whose
	// timestamps lie in [since, until) (zero: open), oldest first, at
	// most limit of them; truncated says more were left out.
	Messages(ctx context.Context, group string, since, until time.Time, limit int) (msgs []string, truncated bool, err error)
}

// FlowLog is one flow log as the console shows it.
type FlowLog struct {
	ID              string    `json:"id"`
	CreationTime    time.Time `json:"creationTime"`
	ResourceID      string    `json:"resourceId"`
	TrafficType     string    `json:"trafficType"`
	DestinationType string    `json:"destinationType"`
	// Destination is the ARN, path or URL; LogGroupName the CloudWatch
	// Logs group when the flow log names it that way.
	Destination  string `json:"destination,omitempty"`
	LogGroupName string `json:"logGroupName,omitempty"`
	// LogFormat is the ${field} format ("" or the default format's text
	// for the default).
	LogFormat              string `json:"logFormat"`
	MaxAggregationInterval int    `json:"maxAggregationInterval"`
	FileFormat             string `json:"fileFormat,omitempty"`
	HiveCompatible         bool   `json:"hiveCompatiblePartitions,omitempty"`
	PerHourPartition       bool   `json:"perHourPartition,omitempty"`
	// DeliverStatus is SUCCESS or FAILED; DeliverError says why.
	DeliverStatus string `json:"deliverLogsStatus"`
	DeliverError  string `json:"deliverLogsErrorMessage,omitempty"`
	Tags          []Tag  `json:"tags"`
}

// Tag is a key and value.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// CreateRequest is the create form, in the API's terms.
type CreateRequest struct {
	ResourceType             string   `json:"resourceType"` // VPC, Subnet, NetworkInterface
	ResourceIDs              []string `json:"resourceIds"`
	TrafficType              string   `json:"trafficType"`
	DestinationType          string   `json:"destinationType"`
	Destination              string   `json:"destination"`
	LogGroupName             string   `json:"logGroupName"`
	DeliverLogsPermissionArn string   `json:"deliverLogsPermissionArn"`
	LogFormat                string   `json:"logFormat"`
	MaxAggregationInterval   int      `json:"maxAggregationInterval"`
	FileFormat               string   `json:"fileFormat"`
	HiveCompatible           bool     `json:"hiveCompatiblePartitions"`
	PerHourPartition         bool     `json:"perHourPartition"`
	Tags                     []Tag    `json:"tags"`
}

// Inventory is what the agents discovered, as the page shows it.
type Inventory struct {
	VPCs       []VPC       `json:"vpcs"`
	Subnets    []Subnet    `json:"subnets"`
	Interfaces []Interface `json:"interfaces"`
}

// VPC is one VPC.
type VPC struct {
	ID         string   `json:"id"`
	CIDRBlocks []string `json:"cidrBlocks"`
}

// Subnet is one subnet.
type Subnet struct {
	ID         string   `json:"id"`
	VPCID      string   `json:"vpcId"`
	CIDRBlocks []string `json:"cidrBlocks"`
	AZID       string   `json:"azId,omitempty"`
}

// Interface is one network interface with what covers it.
type Interface struct {
	ID         string   `json:"id"`
	SubnetID   string   `json:"subnetId"`
	VPCID      string   `json:"vpcId"`
	InstanceID string   `json:"instanceId"`
	MAC        string   `json:"macAddress"`
	Addresses  []string `json:"addresses"`
	Name       string   `json:"name"` // link name on the host
	Agent      string   `json:"agent"`
	// LastSeen is the agent's last call to the server; LastRecord the end of
	// the newest record an agent delivered for the interface (zero:
	// none yet).
	LastSeen   time.Time `json:"lastSeen,omitzero"`
	LastRecord time.Time `json:"lastRecord,omitzero"`
	// FlowLogs are the flow logs covering the interface (of the
	// interface itself, its subnet or its VPC).
	FlowLogs []string `json:"flowLogs"`
}
