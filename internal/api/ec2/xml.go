package ec2

import (
	"encoding/xml"
	"time"
)

// The response shapes follow botocore's model of EC2 2016-11-15: every
// member under its locationName, every list as <name><item>…</item></name>.
// A list is always written, empty or not, as EC2 does (the CLI then shows
// an empty list instead of leaving the key out).

// list is an EC2 list: <name><item/>…</name>.
type list[T any] struct {
	Items []T `xml:"item"`
}

type responseHead struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func head(requestID string) responseHead {
	return responseHead{Xmlns: XMLNamespace, RequestID: requestID}
}

type unsuccessfulItemXML struct {
	Error struct {
		Code    string `xml:"code"`
		Message string `xml:"message"`
	} `xml:"error"`
	ResourceID string `xml:"resourceId"`
}

func unsuccessfulXML(us []Unsuccessful) list[unsuccessfulItemXML] {
	l := list[unsuccessfulItemXML]{Items: make([]unsuccessfulItemXML, 0, len(us))}
	for _, u := range us {
		var it unsuccessfulItemXML
		it.ResourceID, it.Error.Code, it.Error.Message = u.ResourceID, u.Code, u.Message
		l.Items = append(l.Items, it)
	}
	return l
}

type createFlowLogsResponse struct {
	XMLName xml.Name `xml:"CreateFlowLogsResponse"`
	responseHead
	ClientToken  string                    `xml:"clientToken,omitempty"`
	FlowLogIDs   list[string]              `xml:"flowLogIdSet"`
	Unsuccessful list[unsuccessfulItemXML] `xml:"unsuccessful"`
}

type deleteFlowLogsResponse struct {
	XMLName xml.Name `xml:"DeleteFlowLogsResponse"`
	responseHead
	Unsuccessful list[unsuccessfulItemXML] `xml:"unsuccessful"`
}

type destinationOptionsXML struct {
	FileFormat               string `xml:"fileFormat"`
	HiveCompatiblePartitions bool   `xml:"hiveCompatiblePartitions"`
	PerHourPartition         bool   `xml:"perHourPartition"`
}

type flowLogXML struct {
	CreationTime             string                 `xml:"creationTime"`
	DeliverLogsErrorMessage  string                 `xml:"deliverLogsErrorMessage,omitempty"`
	DeliverLogsPermissionArn string                 `xml:"deliverLogsPermissionArn,omitempty"`
	DeliverLogsStatus        string                 `xml:"deliverLogsStatus"`
	FlowLogID                string                 `xml:"flowLogId"`
	FlowLogStatus            string                 `xml:"flowLogStatus"`
	LogGroupName             string                 `xml:"logGroupName,omitempty"`
	ResourceID               string                 `xml:"resourceId"`
	TrafficType              string                 `xml:"trafficType"`
	LogDestinationType       string                 `xml:"logDestinationType"`
	LogDestination           string                 `xml:"logDestination,omitempty"`
	LogFormat                string                 `xml:"logFormat"`
	Tags                     list[Tag]              `xml:"tagSet"`
	MaxAggregationInterval   int                    `xml:"maxAggregationInterval"`
	DestinationOptions       *destinationOptionsXML `xml:"destinationOptions,omitempty"`
}

// millis is EC2's MillisecondDateTime.
func millis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func flowLogToXML(fl FlowLog) flowLogXML {
	x := flowLogXML{
		CreationTime: millis(fl.CreationTime), DeliverLogsErrorMessage: fl.DeliverLogsErrorMessage,
		DeliverLogsPermissionArn: fl.DeliverLogsPermissionArn, DeliverLogsStatus: fl.DeliverLogsStatus, FlowLogID: fl.ID,
		FlowLogStatus: fl.FlowLogStatus, LogGroupName: fl.LogGroupName, ResourceID: fl.ResourceID, TrafficType: fl.TrafficType,
		LogDestinationType: fl.LogDestinationType, LogDestination: fl.LogDestination, LogFormat: fl.LogFormat,
		Tags: list[Tag]{Items: fl.Tags}, MaxAggregationInterval: fl.MaxAggregationInterval,
	}
	if fl.FileFormat != "" {
		x.DestinationOptions = &destinationOptionsXML{fl.FileFormat, fl.HiveCompatiblePartitions, fl.PerHourPartition}
	}
	return x
}

type describeFlowLogsResponse struct {
	XMLName xml.Name `xml:"DescribeFlowLogsResponse"`
	responseHead
	FlowLogs  list[flowLogXML] `xml:"flowLogSet"`
	NextToken string           `xml:"nextToken,omitempty"`
}

type cidrStateXML struct {
	State string `xml:"state"`
}

type vpcCIDRAssocXML struct {
	AssociationID  string       `xml:"associationId"`
	CidrBlock      string       `xml:"cidrBlock"`
	CidrBlockState cidrStateXML `xml:"cidrBlockState"`
}

type ipv6CIDRAssocXML struct {
	AssociationID      string       `xml:"associationId"`
	Ipv6CidrBlock      string       `xml:"ipv6CidrBlock"`
	Ipv6CidrBlockState cidrStateXML `xml:"ipv6CidrBlockState"`
}

type vpcXML struct {
	CidrBlock                   string                 `xml:"cidrBlock,omitempty"`
	State                       string                 `xml:"state"`
	VpcID                       string                 `xml:"vpcId"`
	OwnerID                     string                 `xml:"ownerId"`
	InstanceTenancy             string                 `xml:"instanceTenancy"`
	Ipv6CidrBlockAssociationSet list[ipv6CIDRAssocXML] `xml:"ipv6CidrBlockAssociationSet"`
	CidrBlockAssociationSet     list[vpcCIDRAssocXML]  `xml:"cidrBlockAssociationSet"`
	IsDefault                   bool                   `xml:"isDefault"`
	Tags                        list[Tag]              `xml:"tagSet"`
}

type describeVpcsResponse struct {
	XMLName xml.Name `xml:"DescribeVpcsResponse"`
	responseHead
	Vpcs      list[vpcXML] `xml:"vpcSet"`
	NextToken string       `xml:"nextToken,omitempty"`
}

type subnetXML struct {
	AvailabilityZoneID          string                 `xml:"availabilityZoneId,omitempty"`
	AvailableIPAddressCount     int64                  `xml:"availableIpAddressCount"`
	CidrBlock                   string                 `xml:"cidrBlock,omitempty"`
	DefaultForAz                bool                   `xml:"defaultForAz"`
	MapPublicIPOnLaunch         bool                   `xml:"mapPublicIpOnLaunch"`
	State                       string                 `xml:"state"`
	SubnetID                    string                 `xml:"subnetId"`
	VpcID                       string                 `xml:"vpcId"`
	OwnerID                     string                 `xml:"ownerId"`
	AssignIpv6AddressOnCreation bool                   `xml:"assignIpv6AddressOnCreation"`
	Ipv6CidrBlockAssociationSet list[ipv6CIDRAssocXML] `xml:"ipv6CidrBlockAssociationSet"`
	Tags                        list[Tag]              `xml:"tagSet"`
	SubnetArn                   string                 `xml:"subnetArn"`
}

type describeSubnetsResponse struct {
	XMLName xml.Name `xml:"DescribeSubnetsResponse"`
	responseHead
	Subnets   list[subnetXML] `xml:"subnetSet"`
	NextToken string          `xml:"nextToken,omitempty"`
}

type eniAttachmentXML struct {
	AttachmentID        string `xml:"attachmentId"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	DeviceIndex         int    `xml:"deviceIndex"`
	InstanceID          string `xml:"instanceId"`
	InstanceOwnerID     string `xml:"instanceOwnerId"`
	Status              string `xml:"status"`
}

type privateIPXML struct {
	Primary          bool   `xml:"primary"`
	PrivateIPAddress string `xml:"privateIpAddress"`
}

type ipv6AddrXML struct {
	Ipv6Address string `xml:"ipv6Address"`
}

type eniXML struct {
	Attachment         *eniAttachmentXML  `xml:"attachment,omitempty"`
	AvailabilityZone   string             `xml:"availabilityZone,omitempty"`
	Description        string             `xml:"description"`
	InterfaceType      string             `xml:"interfaceType"`
	Ipv6Addresses      list[ipv6AddrXML]  `xml:"ipv6AddressesSet"`
	MacAddress         string             `xml:"macAddress"`
	NetworkInterfaceID string             `xml:"networkInterfaceId"`
	OwnerID            string             `xml:"ownerId"`
	PrivateIPAddress   string             `xml:"privateIpAddress,omitempty"`
	PrivateIPAddresses list[privateIPXML] `xml:"privateIpAddressesSet"`
	RequesterManaged   bool               `xml:"requesterManaged"`
	SourceDestCheck    bool               `xml:"sourceDestCheck"`
	Status             string             `xml:"status"`
	SubnetID           string             `xml:"subnetId"`
	Tags               list[Tag]          `xml:"tagSet"`
	VpcID              string             `xml:"vpcId"`
}

type describeNetworkInterfacesResponse struct {
	XMLName xml.Name `xml:"DescribeNetworkInterfacesResponse"`
	responseHead
	NetworkInterfaces list[eniXML] `xml:"networkInterfaceSet"`
	NextToken         string       `xml:"nextToken,omitempty"`
}
