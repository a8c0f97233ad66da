package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sort"
	"strings"

	"github.com/flowlog/flowlog/internal/api"
)

// Query protocol front of the operations: parameters in, XML out.

// parseCreate reads CreateFlowLogs' Query parameters.
func parseCreate(p params) (CreateFlowLogsInput, error) {
	if err := p.checkKnown("ResourceId", "ResourceType", "TrafficType", "LogDestinationType", "LogDestination", "LogGroupName",
		"DeliverLogsPermissionArn", "DeliverCrossAccountRole", "LogFormat", "MaxAggregationInterval", "DestinationOptions",
		"TagSpecification", "ClientToken", "DryRun"); err != nil {
		return CreateFlowLogsInput{}, err
	}
	if p.has("DeliverCrossAccountRole") {
		return CreateFlowLogsInput{}, api.Errorf("InvalidParameter", "DeliverCrossAccountRole is not supported: flowlog serves a single account")
	}
	in := CreateFlowLogsInput{
		ResourceType: p.str("ResourceType"), TrafficType: p.str("TrafficType"), LogDestinationType: p.str("LogDestinationType"),
		LogDestination: p.str("LogDestination"), LogGroupName: p.str("LogGroupName"), DeliverLogsPermissionArn: p.str("DeliverLogsPermissionArn"),
		LogFormat: p.str("LogFormat"), ClientToken: p.str("ClientToken"), FileFormat: p.str("DestinationOptions.FileFormat"),
	}
	for k := range p {
		switch k {
		case "DestinationOptions.FileFormat", "DestinationOptions.HiveCompatiblePartitions", "DestinationOptions.PerHourPartition":
		default:
			if strings.HasPrefix(k, "DestinationOptions") {
				return in, api.Errorf("UnknownParameter", "The parameter %s is not recognized", k)
			}
		}
	}
	var err error
	if in.ResourceIDs, err = p.list("ResourceId"); err != nil {
		return in, err
	}
	if in.HiveCompatiblePartitions, err = p.boolean("DestinationOptions.HiveCompatiblePartitions"); err != nil {
		return in, err
	}
	if in.PerHourPartition, err = p.boolean("DestinationOptions.PerHourPartition"); err != nil {
		return in, err
	}
	if in.DryRun, err = p.boolean("DryRun"); err != nil {
		return in, err
	}
	n, set, err := p.integer("MaxAggregationInterval")
	if err != nil {
		return in, err
	}
	if set {
		if n != 60 && n != 600 {
			return in, api.Errorf("InvalidParameterValue", "Value (%d) for parameter MaxAggregationInterval is invalid. Valid values: 60, 600.", n)
		}
		in.MaxAggregationInterval = int(n)
	}
	if in.TagSpecifications, err = p.tagSpecifications(); err != nil {
		return in, err
	}
	return in, nil
}

func (s *Service) serveCreate(ctx context.Context, call *api.Call) (any, error) {
	in, err := parseCreate(params(call.Params))
	if err != nil {
		return nil, err
	}
	out, err := s.CreateFlowLogs(ctx, call, in)
	if err != nil {
		return nil, err
	}
	return createFlowLogsResponse{responseHead: head(call.RequestID), ClientToken: out.ClientToken,
		FlowLogIDs: list[string]{Items: out.FlowLogIDs}, Unsuccessful: unsuccessfulXML(out.Unsuccessful)}, nil
}

func (s *Service) serveDelete(ctx context.Context, call *api.Call) (any, error) {
	p := params(call.Params)
	if err := p.checkKnown("FlowLogId", "DryRun"); err != nil {
		return nil, err
	}
	ids, err := p.list("FlowLogId")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, api.Errorf("MissingParameter", "The request must contain the parameter FlowLogId")
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	us, err := s.DeleteFlowLogs(ctx, call, ids)
	if err != nil {
		return nil, err
	}
	return deleteFlowLogsResponse{responseHead: head(call.RequestID), Unsuccessful: unsuccessfulXML(us)}, nil
}

// pageParams reads MaxResults and NextToken.
func pageParams(p params) (max int, token string, err error) {
	n, _, err := p.integer("MaxResults")
	if err != nil {
		return 0, "", err
	}
	if n != 0 && (n < 5 || n > 1000) {
		return 0, "", api.Errorf("InvalidParameterValue", "Value (%d) for parameter MaxResults is invalid. Expecting a value between 5 and 1000.", n)
	}
	return int(n), p.str("NextToken"), nil
}

func (s *Service) serveDescribe(ctx context.Context, call *api.Call) (any, error) {
	p := params(call.Params)
	if err := p.checkKnown("FlowLogId", "Filter", "MaxResults", "NextToken", "DryRun"); err != nil {
		return nil, err
	}
	var in DescribeFlowLogsInput
	var err error
	if in.FlowLogIDs, err = p.list("FlowLogId"); err != nil {
		return nil, err
	}
	if in.Filters, err = p.filters(); err != nil {
		return nil, err
	}
	n, set, err := p.integer("MaxResults")
	if err != nil {
		return nil, err
	}
	if set && (n < 5 || n > 1000) {
		return nil, api.Errorf("InvalidParameterValue", "Value (%d) for parameter MaxResults is invalid. Expecting a value between 5 and 1000.", n)
	}
	// EC2 pages DescribeFlowLogs at 1000 when MaxResults is not given.
	in.MaxResults, in.NextToken = int(n), p.str("NextToken")
	if !set {
		in.MaxResults = 1000
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	out, err := s.DescribeFlowLogs(ctx, in)
	if err != nil {
		return nil, err
	}
	resp := describeFlowLogsResponse{responseHead: head(call.RequestID), NextToken: out.NextToken}
	resp.FlowLogs.Items = make([]flowLogXML, 0, len(out.FlowLogs))
	for _, fl := range out.FlowLogs {
		resp.FlowLogs.Items = append(resp.FlowLogs.Items, flowLogToXML(fl))
	}
	return resp, nil
}

// describeInventory is the common part of the three inventory Describe
// calls: ids (unknown → idCode), filters, pagination by id.
type describeInventory struct {
	idParam, idCode, noun string
}

type invPage struct {
	ids    []string // the ids of the resources to return, in order
	next   string
	filter []Filter
}

func (d describeInventory) parse(p params, all []string, fields func(id string) fieldsFunc) (invPage, error) {
	var pg invPage
	if err := p.checkKnown(d.idParam, "Filter", "MaxResults", "NextToken", "DryRun"); err != nil {
		return pg, err
	}
	ids, err := p.list(d.idParam)
	if err != nil {
		return pg, err
	}
	if pg.filter, err = p.filters(); err != nil {
		return pg, err
	}
	max, token, err := pageParams(p)
	if err != nil {
		return pg, err
	}
	if max != 0 && len(ids) > 0 && d.idParam == "NetworkInterfaceId" {
		return pg, api.Errorf("InvalidParameterCombination", "You cannot specify MaxResults together with NetworkInterfaceId")
	}
	for _, f := range pg.filter {
		if _, known := fields("")(f.Name); !known {
			return pg, api.Errorf("InvalidParameterValue", "The filter '%s' is invalid", f.Name)
		}
	}
	if err := dryRun(p); err != nil {
		return pg, err
	}
	after := ""
	if token != "" {
		if after, err = decodeToken(token); err != nil {
			return pg, err
		}
	}
	candidates := all
	if len(ids) > 0 {
		known := map[string]bool{}
		for _, id := range all {
			known[id] = true
		}
		var missing []string
		for _, id := range ids {
			if !known[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return pg, api.Errorf(d.idCode, "The %s ID '%s' does not exist", d.noun, missing[0])
		}
		candidates = dedupSorted(ids)
	}
	for _, id := range candidates {
		if id <= after {
			continue
		}
		ok, err := matches(pg.filter, fields(id))
		if err != nil {
			return pg, err
		}
		if !ok {
			continue
		}
		if max > 0 && len(pg.ids) == max {
			pg.next = encodeToken(pg.ids[len(pg.ids)-1])
			break
		}
		pg.ids = append(pg.ids, id)
	}
	return pg, nil
}

func dedupSorted(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	j := 0
	for i, id := range out {
		if i == 0 || id != out[j-1] {
			out[j] = id
			j++
		}
	}
	return out[:j]
}

// splitCIDRs separates IPv4 and IPv6 prefixes.
func splitCIDRs(cidrs []string) (v4, v6 []string) {
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() {
			v6 = append(v6, c)
		} else {
			v4 = append(v4, c)
		}
	}
	return v4, v6
}

func assocID(prefix, owner, cidr string) string {
	sum := sha256.Sum256([]byte(owner + "|" + cidr))
	return prefix + hex.EncodeToString(sum[:])[:17]
}

func (s *Service) serveDescribeVpcs(ctx context.Context, call *api.Call) (any, error) {
	inv, err := s.inventory(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*VPC{}
	ids := make([]string, 0, len(inv.VPCs))
	for i := range inv.VPCs {
		byID[inv.VPCs[i].VPCID] = &inv.VPCs[i]
		ids = append(ids, inv.VPCs[i].VPCID)
	}
	fields := func(id string) fieldsFunc {
		v := byID[id]
		return func(name string) ([]string, bool) {
			if v == nil {
				_, known := vpcFilter(name, &VPC{}, s.opts.AccountID)
				return nil, known
			}
			return vpcFilter(name, v, s.opts.AccountID)
		}
	}
	pg, err := describeInventory{idParam: "VpcId", idCode: "InvalidVpcID.NotFound", noun: "vpc"}.parse(params(call.Params), ids, fields)
	if err != nil {
		return nil, err
	}
	resp := describeVpcsResponse{responseHead: head(call.RequestID), NextToken: pg.next}
	resp.Vpcs.Items = []vpcXML{}
	for _, id := range pg.ids {
		v := byID[id]
		v4, v6 := splitCIDRs(v.CIDRBlocks)
		x := vpcXML{State: "available", VpcID: v.VPCID, OwnerID: s.opts.AccountID, InstanceTenancy: "default"}
		x.Ipv6CidrBlockAssociationSet.Items = []ipv6CIDRAssocXML{}
		x.CidrBlockAssociationSet.Items = []vpcCIDRAssocXML{}
		if len(v4) > 0 {
			x.CidrBlock = v4[0]
		}
		for _, c := range v4 {
			x.CidrBlockAssociationSet.Items = append(x.CidrBlockAssociationSet.Items, vpcCIDRAssocXML{assocID("vpc-cidr-assoc-", id, c), c, cidrStateXML{"associated"}})
		}
		for _, c := range v6 {
			x.Ipv6CidrBlockAssociationSet.Items = append(x.Ipv6CidrBlockAssociationSet.Items, ipv6CIDRAssocXML{assocID("vpc-cidr-assoc-", id, c), c, cidrStateXML{"associated"}})
		}
		x.Tags.Items = []Tag{}
		resp.Vpcs.Items = append(resp.Vpcs.Items, x)
	}
	return resp, nil
}

func vpcFilter(name string, v *VPC, owner string) ([]string, bool) {
	v4, v6 := splitCIDRs(v.CIDRBlocks)
	switch name {
	case "vpc-id":
		return []string{v.VPCID}, true
	case "cidr":
		if len(v4) > 0 {
			return v4[:1], true
		}
		return nil, true
	case "cidr-block-association.cidr-block", "cidr-block":
		return v4, true
	case "ipv6-cidr-block-association.ipv6-cidr-block":
		return v6, true
	case "state":
		return []string{"available"}, true
	case "owner-id":
		return []string{owner}, true
	case "is-default":
		return []string{"false"}, true
	}
	return tagValues(name, nil)
}

func (s *Service) serveDescribeSubnets(ctx context.Context, call *api.Call) (any, error) {
	inv, err := s.inventory(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*Subnet{}
	ids := make([]string, 0, len(inv.Subnets))
	for i := range inv.Subnets {
		byID[inv.Subnets[i].SubnetID] = &inv.Subnets[i]
		ids = append(ids, inv.Subnets[i].SubnetID)
	}
	fields := func(id string) fieldsFunc {
		sn := byID[id]
		if sn == nil {
			sn = &Subnet{}
		}
		return func(name string) ([]string, bool) { return subnetFilter(name, sn, s.opts.AccountID) }
	}
	pg, err := describeInventory{idParam: "SubnetId", idCode: "InvalidSubnetID.NotFound", noun: "subnet"}.parse(params(call.Params), ids, fields)
	if err != nil {
		return nil, err
	}
	resp := describeSubnetsResponse{responseHead: head(call.RequestID), NextToken: pg.next}
	resp.Subnets.Items = []subnetXML{}
	for _, id := range pg.ids {
		sn := byID[id]
		v4, v6 := splitCIDRs(sn.CIDRBlocks)
		x := subnetXML{AvailabilityZoneID: sn.AZID, State: "available", SubnetID: sn.SubnetID, VpcID: sn.VPCID,
			OwnerID: s.opts.AccountID, SubnetArn: s.arn("subnet", sn.SubnetID)}
		x.Ipv6CidrBlockAssociationSet.Items = []ipv6CIDRAssocXML{}
		x.Tags.Items = []Tag{}
		if len(v4) > 0 {
			x.CidrBlock = v4[0]
			if p, err := netip.ParsePrefix(v4[0]); err == nil && p.Bits() >= 0 && p.Bits() <= 32 {
				// AWS reserves five addresses of every subnet.
				if n := int64(1)<<(32-p.Bits()) - 5; n > 0 {
					x.AvailableIPAddressCount = n
				}
			}
		}
		for _, c := range v6 {
			x.Ipv6CidrBlockAssociationSet.Items = append(x.Ipv6CidrBlockAssociationSet.Items, ipv6CIDRAssocXML{assocID("subnet-cidr-assoc-", id, c), c, cidrStateXML{"associated"}})
		}
		resp.Subnets.Items = append(resp.Subnets.Items, x)
	}
	return resp, nil
}

func subnetFilter(name string, sn *Subnet, owner string) ([]string, bool) {
	v4, v6 := splitCIDRs(sn.CIDRBlocks)
	switch name {
	case "subnet-id":
		return []string{sn.SubnetID}, true
	case "vpc-id":
		return []string{sn.VPCID}, true
	case "cidr", "cidr-block", "cidrBlock":
		return v4, true
	case "ipv6-cidr-block-association.ipv6-cidr-block":
		return v6, true
	case "availability-zone-id", "availabilityZoneId":
		return []string{sn.AZID}, true
	case "state":
		return []string{"available"}, true
	case "owner-id":
		return []string{owner}, true
	case "subnet-arn":
		return nil, true
	case "default-for-az", "defaultForAz":
		return []string{"false"}, true
	}
	return tagValues(name, nil)
}

// interfaceTags are the tags an interface shows: where the agent found it.
func interfaceTags(in *Interface) []Tag {
	tags := []Tag{}
	if in.Hostname != "" {
		tags = append(tags, Tag{"flowlog:hostname", in.Hostname})
	}
	if in.Name != "" {
		tags = append(tags, Tag{"flowlog:link", in.Name})
	}
	if in.Netns != "" {
		tags = append(tags, Tag{"flowlog:netns", in.Netns})
	}
	if in.AgentID != "" {
		tags = append(tags, Tag{"flowlog:agent-id", in.AgentID})
	}
	return tags
}

func (s *Service) serveDescribeNetworkInterfaces(ctx context.Context, call *api.Call) (any, error) {
	inv, err := s.inventory(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*Interface{}
	ids := make([]string, 0, len(inv.Interfaces))
	for i := range inv.Interfaces {
		byID[inv.Interfaces[i].InterfaceID] = &inv.Interfaces[i]
		ids = append(ids, inv.Interfaces[i].InterfaceID)
	}
	fields := func(id string) fieldsFunc {
		in := byID[id]
		if in == nil {
			in = &Interface{}
		}
		return func(name string) ([]string, bool) { return eniFilter(name, in, s.opts.AccountID) }
	}
	pg, err := describeInventory{idParam: "NetworkInterfaceId", idCode: "InvalidNetworkInterfaceID.NotFound", noun: "networkInterface"}.parse(params(call.Params), ids, fields)
	if err != nil {
		return nil, err
	}
	resp := describeNetworkInterfacesResponse{responseHead: head(call.RequestID), NextToken: pg.next}
	resp.NetworkInterfaces.Items = []eniXML{}
	for _, id := range pg.ids {
		in := byID[id]
		v4, v6 := splitAddrs(in.Addresses)
		x := eniXML{Description: in.Description, InterfaceType: "interface", MacAddress: in.MAC, NetworkInterfaceID: in.InterfaceID,
			OwnerID: s.opts.AccountID, SourceDestCheck: true, Status: "in-use", SubnetID: in.SubnetID, VpcID: in.VPCID}
		x.Ipv6Addresses.Items = []ipv6AddrXML{}
		x.PrivateIPAddresses.Items = []privateIPXML{}
		for i, a := range v4 {
			if i == 0 {
				x.PrivateIPAddress = a
			}
			x.PrivateIPAddresses.Items = append(x.PrivateIPAddresses.Items, privateIPXML{i == 0, a})
		}
		for _, a := range v6 {
			x.Ipv6Addresses.Items = append(x.Ipv6Addresses.Items, ipv6AddrXML{a})
		}
		if in.InstanceID != "" {
			x.Attachment = &eniAttachmentXML{AttachmentID: assocID("eni-attach-", in.InterfaceID, in.InstanceID), InstanceID: in.InstanceID,
				InstanceOwnerID: s.opts.AccountID, Status: "attached"}
		}
		x.Tags.Items = interfaceTags(in)
		resp.NetworkInterfaces.Items = append(resp.NetworkInterfaces.Items, x)
	}
	return resp, nil
}

func splitAddrs(addrs []string) (v4, v6 []string) {
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Unmap().Is4() {
			v4 = append(v4, ip.Unmap().String())
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

func eniFilter(name string, in *Interface, owner string) ([]string, bool) {
	v4, v6 := splitAddrs(in.Addresses)
	switch name {
	case "network-interface-id":
		return []string{in.InterfaceID}, true
	case "subnet-id":
		return []string{in.SubnetID}, true
	case "vpc-id":
		return []string{in.VPCID}, true
	case "attachment.instance-id":
		return []string{in.InstanceID}, true
	case "addresses.private-ip-address", "private-ip-address":
		return v4, true
	case "ipv6-addresses.ipv6-address", "ipv6-address":
		return v6, true
	case "mac-address":
		return []string{in.MAC}, true
	case "description":
		return []string{in.Description}, true
	case "status":
		return []string{"in-use"}, true
	case "owner-id":
		return []string{owner}, true
	case "interface-type":
		return []string{"interface"}, true
	}
	return tagValues(name, interfaceTags(in))
}
