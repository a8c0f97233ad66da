package console

import (
	"context"

	"github.com/flowlog/flowlog/internal/api/ec2"
)

// viewFlowLog is a flow log as the pages show it.
func viewFlowLog(f ec2.FlowLog) FlowLog {
	v := FlowLog{ID: f.ID, CreationTime: f.CreationTime, ResourceID: f.ResourceID, TrafficType: f.TrafficType,
		DestinationType: f.LogDestinationType, Destination: f.LogDestination, LogGroupName: f.LogGroupName,
		LogFormat: f.LogFormat, MaxAggregationInterval: f.MaxAggregationInterval, FileFormat: f.FileFormat,
		HiveCompatible: f.HiveCompatiblePartitions, PerHourPartition: f.PerHourPartition,
		DeliverStatus: f.DeliverLogsStatus, DeliverError: f.DeliverLogsErrorMessage, Tags: []Tag{}}
	for _, t := range f.Tags {
		v.Tags = append(v.Tags, Tag{Key: t.Key, Value: t.Value})
	}
	return v
}

// allFlowLogs returns every flow log (DescribeFlowLogs without a page
// size answers all of them).
func (h *Handler) allFlowLogs(ctx context.Context) ([]FlowLog, error) {
	out, err := h.opts.FlowLogs.DescribeFlowLogs(ctx, ec2.DescribeFlowLogsInput{})
	if err != nil {
		return nil, err
	}
	fls := make([]FlowLog, 0, len(out.FlowLogs))
	for _, f := range out.FlowLogs {
		fls = append(fls, viewFlowLog(f))
	}
	return fls, nil
}

// createInput is the create form as CreateFlowLogs' parameters.
func createInput(in CreateRequest) ec2.CreateFlowLogsInput {
	c := ec2.CreateFlowLogsInput{ResourceIDs: in.ResourceIDs, ResourceType: in.ResourceType, TrafficType: in.TrafficType,
		LogDestinationType: in.DestinationType, LogDestination: in.Destination, LogGroupName: in.LogGroupName,
		DeliverLogsPermissionArn: in.DeliverLogsPermissionArn, LogFormat: in.LogFormat, MaxAggregationInterval: in.MaxAggregationInterval,
		FileFormat: in.FileFormat, HiveCompatiblePartitions: in.HiveCompatible, PerHourPartition: in.PerHourPartition}
	if len(in.Tags) > 0 {
		spec := ec2.TagSpecification{ResourceType: "vpc-flow-log"}
		for _, t := range in.Tags {
			spec.Tags = append(spec.Tags, ec2.Tag{Key: t.Key, Value: t.Value})
		}
		c.TagSpecifications = []ec2.TagSpecification{spec}
	}
	return c
}

// viewInventory is the inventory as the pages show it.
func viewInventory(inv ec2.Inventory) Inventory {
	v := Inventory{VPCs: []VPC{}, Subnets: []Subnet{}, Interfaces: []Interface{}}
	for _, x := range inv.VPCs {
		v.VPCs = append(v.VPCs, VPC{ID: x.VPCID, CIDRBlocks: x.CIDRBlocks})
	}
	for _, x := range inv.Subnets {
		v.Subnets = append(v.Subnets, Subnet{ID: x.SubnetID, VPCID: x.VPCID, CIDRBlocks: x.CIDRBlocks, AZID: x.AZID})
	}
	for _, x := range inv.Interfaces {
		fl := x.FlowLogIDs
		if fl == nil {
			fl = []string{}
		}
		v.Interfaces = append(v.Interfaces, Interface{ID: x.InterfaceID, SubnetID: x.SubnetID, VPCID: x.VPCID, InstanceID: x.InstanceID,
			MAC: x.MAC, Addresses: x.Addresses, Name: x.Name, Agent: x.Hostname, LastSeen: x.LastSeen, LastRecord: x.LastRecordTime, FlowLogs: fl})
	}
	return v
}
