// Package control owns flowlog's agent protocol: how an agent registers
// the inventory it discovered, learns which flow logs cover it (long
// poll), and reports delivery status back. The protocol is JSON over
// HTTP at /flowlog/v1/, signed with SigV4 (service name "flowlog") with
// the agent's access key, served by `flowlog serve`.
//
// This file is the wire contract shared by the server side (Service) and
// the agent side (Client).
package control

import "time"

// Protocol constants.
const (
	// SigningName is the SigV4 service name of agent calls.
	SigningName = "flowlog"
	// PathPrefix is where the operations live: POST PathPrefix+OpRegister …
	PathPrefix = "/flowlog/v1/"

	// OpRegister: POST, body Registration, answer RegisterResult.
	OpRegister = "Register"
	// OpWatchFlowLogs: POST, body WatchRequest, answer FlowLogSet. It
	// answers at once when the set's revision differs from
	// WatchRequest.Revision, else when it changes, else after Wait.
	OpWatchFlowLogs = "WatchFlowLogs"
	// OpReportStatus: POST, body StatusReport, answer {}.
	OpReportStatus = "ReportStatus"
	// OpGetDeliveryCredentials: POST, body DeliveryCredentialsRequest,
	// answer DeliveryCredentials; refused with CodeDeliveryAccessError
	// (HTTP 403) when the flow log's delivery role cannot be used. A
	// server older than this operation answers 404 UnknownOperation: the
	// agent then signs with its own keys.
	OpGetDeliveryCredentials = "GetDeliveryCredentials"

	// CodeDeliveryAccessError is the error code of a GetDeliveryCredentials
	// whose flow log's delivery role may not be used (missing, its trust
	// policy not allowing vpc-flow-logs.amazonaws.com): its message is
	// the flow log's deliverLogsErrorMessage, starting with
	// DeliverLogsAccessError.
	CodeDeliveryAccessError = "DeliveryAccessError"
	// DeliverLogsAccessError is how AWS's deliverLogsErrorMessage starts
	// when the delivery role does not let flow logs publish.
	DeliverLogsAccessError = "Access error"

	// CodeUnknownAgent (HTTP 404) answers WatchFlowLogs and
	// GetDeliveryCredentials for an agent id the server has no
	// registration of: it never registered, the server dropped it after
	// not hearing from it for its inventory-expiry, or the server's store
	// was replaced. The agent registers again (then watches again).
	CodeUnknownAgent = "UnknownAgent"
)

// Registration is what an agent discovered on its host. Registering again
// replaces the agent's previous registration (interfaces it no longer
// reports are gone from DescribeNetworkInterfaces).
type Registration struct {
	// AgentID identifies the agent across restarts (the host's
	// instance id is a good choice).
	AgentID    string      `json:"agentId"`
	Hostname   string      `json:"hostname"`
	Version    string      `json:"version"`
	AccountID  string      `json:"accountId"`
	Region     string      `json:"region"`
	AZID       string      `json:"azId,omitempty"`
	InstanceID string      `json:"instanceId"`
	VPCs       []VPC       `json:"vpcs"`
	Subnets    []Subnet    `json:"subnets"`
	Interfaces []Interface `json:"interfaces"`
}

// VPC is a VPC the agent's interfaces belong to.
type VPC struct {
	VPCID      string   `json:"vpcId"`
	CIDRBlocks []string `json:"cidrBlocks"` // IPv4 and IPv6 prefixes
}

// Subnet is a subnet the agent's interfaces belong to.
type Subnet struct {
	SubnetID   string   `json:"subnetId"`
	VPCID      string   `json:"vpcId"`
	CIDRBlocks []string `json:"cidrBlocks"`
	AZID       string   `json:"azId,omitempty"`
}

// Interface is one network interface (link) of the agent's host.
type Interface struct {
	InterfaceID string   `json:"interfaceId"` // eni-…
	SubnetID    string   `json:"subnetId"`
	VPCID       string   `json:"vpcId"`
	InstanceID  string   `json:"instanceId"`
	MAC         string   `json:"macAddress"`
	Addresses   []string `json:"addresses"` // IPv4 and IPv6, no prefix length
	Name        string   `json:"name"`      // link name on the host
	Netns       string   `json:"netns,omitempty"`
	Description string   `json:"description,omitempty"`
}

// RegisterResult answers a Registration.
type RegisterResult struct {
	// PollWait is how long WatchFlowLogs may hold a request; the agent
	// sets its HTTP timeout above it.
	PollWait time.Duration `json:"pollWait"`
}

// WatchRequest asks for the flow logs covering the agent.
type WatchRequest struct {
	AgentID string `json:"agentId"`
	// Revision is the FlowLogSet.Revision the agent has; 0 at first.
	Revision int64 `json:"revision"`
	// Wait bounds how long the server holds the request when nothing
	// changed; the server caps it (RegisterResult.PollWait).
	Wait time.Duration `json:"wait"`
}

// FlowLogSet is every flow log whose resource is one of the agent's
// registered VPCs, subnets or interfaces.
type FlowLogSet struct {
	// Revision changes whenever a flow log is created or deleted.
	Revision int64     `json:"revision"`
	FlowLogs []FlowLog `json:"flowLogs"`
}

// FlowLog is one flow log definition as CreateFlowLogs stored it.
type FlowLog struct {
	FlowLogID    string    `json:"flowLogId"`
	CreationTime time.Time `json:"creationTime"`
	ResourceID   string    `json:"resourceId"` // vpc-…, subnet-… or eni-…
	TrafficType  string    `json:"trafficType"`
	// LogDestinationType is cloud-watch-logs, s3, kinesis-data-firehose,
	// or the extensions file and kafka.
	LogDestinationType       string `json:"logDestinationType"`
	LogDestination           string `json:"logDestination,omitempty"` // ARN, path or URL
	LogGroupName             string `json:"logGroupName,omitempty"`
	DeliverLogsPermissionArn string `json:"deliverLogsPermissionArn,omitempty"`
	// LogFormat is the ${field} format; "" is the default format.
	LogFormat              string `json:"logFormat"`
	MaxAggregationInterval int64  `json:"maxAggregationInterval"` // 60 or 600
	// FileFormat is plain-text or parquet (DestinationOptions).
	FileFormat               string `json:"fileFormat,omitempty"`
	HiveCompatiblePartitions bool   `json:"hiveCompatiblePartitions,omitempty"`
	PerHourPartition         bool   `json:"perHourPartition,omitempty"`
}

// StatusReport is the agent's delivery status of each flow log it runs.
type StatusReport struct {
	AgentID  string          `json:"agentId"`
	FlowLogs []FlowLogStatus `json:"flowLogs"`
}

// FlowLogStatus is one flow log's delivery status on one agent.
type FlowLogStatus struct {
	FlowLogID string `json:"flowLogId"`
	// Status is SUCCESS or FAILED.
	Status string `json:"status"`
	// Message says why delivery fails (the destination's error); "" when
	// it succeeds.
	Message string `json:"message,omitempty"`
	// LastDelivery is when the destination last accepted records.
	LastDelivery time.Time `json:"lastDelivery,omitzero"`
	// Records is how many records the agent delivered so far.
	Records int64 `json:"records"`
	// LastRecordEnd is the end of the newest delivered record.
	LastRecordEnd time.Time `json:"lastRecordEnd,omitzero"`
}

// DeliveryCredentialsRequest asks for the credentials that deliver one
// flow log of the agent (a cloud-watch-logs flow log with a
// DeliverLogsPermissionArn) to the server's CloudWatch Logs API.
type DeliveryCredentialsRequest struct {
	AgentID   string `json:"agentId"`
	FlowLogID string `json:"flowLogId"`
}

// DeliveryCredentials answers a DeliveryCredentialsRequest: a session of
// the flow log's delivery role (temporary keys with a session token,
// valid until Expiration), or AgentKeys.
type DeliveryCredentials struct {
	// AgentKeys is set when the server issues no role sessions for the
	// flow log (it runs without IAM, or the flow log has no delivery
	// role): the agent signs delivery with its own keys.
	AgentKeys       bool      `json:"agentKeys,omitempty"`
	AccessKeyID     string    `json:"accessKeyId,omitempty"`
	SecretAccessKey string    `json:"secretAccessKey,omitempty"`
	SessionToken    string    `json:"sessionToken,omitempty"`
	Expiration      time.Time `json:"expiration,omitzero"`
}
