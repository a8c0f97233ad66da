package ec2

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/control"
)

// Inventory is what the agents registered, as the console shows it.
type Inventory struct {
	VPCs       []VPC
	Subnets    []Subnet
	Interfaces []Interface
}

// VPC is a VPC some agent registered; several agents may share one.
type VPC struct {
	VPCID      string
	CIDRBlocks []string
	AgentIDs   []string
	// FlowLogIDs are the flow logs of the VPC itself.
	FlowLogIDs []string
}

// Subnet is a subnet some agent registered.
type Subnet struct {
	SubnetID   string
	VPCID      string
	CIDRBlocks []string
	AZID       string
	AgentIDs   []string
	FlowLogIDs []string
}

// Interface is one registered network interface.
type Interface struct {
	control.Interface
	AgentID      string
	Hostname     string
	RegisteredAt time.Time
	// LastSeen is when its agent last called the server (registered,
	// watched its flow logs or reported their status).
	LastSeen time.Time
	// FlowLogIDs are the flow logs covering the interface: its own, its
	// subnet's and its VPC's.
	FlowLogIDs []string
	// LastRecordTime is the end of the newest record an agent reported
	// delivering for any of those flow logs (zero: none yet).
	LastRecordTime time.Time
}

// checkRegistration refuses malformed ids and prefixes, naming the field.
func checkRegistration(r control.Registration) error {
	bad := func(field, v, want string) error {
		return api.Errorf("InvalidParameterValue", "registration %s: %q is not %s", field, v, want)
	}
	if r.AgentID == "" || len(r.AgentID) > 256 {
		return api.Errorf("MissingParameter", "registration agentId: 1 to 256 characters required")
	}
	cidrs := func(field string, list []string) error {
		for _, c := range list {
			if _, err := netip.ParsePrefix(c); err != nil {
				return bad(field, c, "an address prefix (10.0.0.0/16, fd00::/64)")
			}
		}
		return nil
	}
	for i, v := range r.VPCs {
		if !strings.HasPrefix(v.VPCID, "vpc-") {
			return bad(fmt.Sprintf("vpcs[%d].vpcId", i), v.VPCID, "vpc-…")
		}
		if err := cidrs(fmt.Sprintf("vpcs[%d].cidrBlocks", i), v.CIDRBlocks); err != nil {
			return err
		}
	}
	for i, sn := range r.Subnets {
		if !strings.HasPrefix(sn.SubnetID, "subnet-") {
			return bad(fmt.Sprintf("subnets[%d].subnetId", i), sn.SubnetID, "subnet-…")
		}
		if sn.VPCID != "" && !strings.HasPrefix(sn.VPCID, "vpc-") {
			return bad(fmt.Sprintf("subnets[%d].vpcId", i), sn.VPCID, "vpc-…")
		}
		if err := cidrs(fmt.Sprintf("subnets[%d].cidrBlocks", i), sn.CIDRBlocks); err != nil {
			return err
		}
	}
	for i, in := range r.Interfaces {
		if !strings.HasPrefix(in.InterfaceID, "eni-") {
			return bad(fmt.Sprintf("interfaces[%d].interfaceId", i), in.InterfaceID, "eni-…")
		}
		if in.SubnetID != "" && !strings.HasPrefix(in.SubnetID, "subnet-") {
			return bad(fmt.Sprintf("interfaces[%d].subnetId", i), in.SubnetID, "subnet-…")
		}
		if in.VPCID != "" && !strings.HasPrefix(in.VPCID, "vpc-") {
			return bad(fmt.Sprintf("interfaces[%d].vpcId", i), in.VPCID, "vpc-…")
		}
		if in.MAC != "" {
			if _, err := net.ParseMAC(in.MAC); err != nil {
				return bad(fmt.Sprintf("interfaces[%d].macAddress", i), in.MAC, "a MAC address")
			}
		}
		for _, a := range in.Addresses {
			if _, err := netip.ParseAddr(a); err != nil {
				return bad(fmt.Sprintf("interfaces[%d].addresses", i), a, "an IP address")
			}
		}
	}
	return nil
}

// Register replaces the agent's registered inventory with r, in one
// transaction, and wakes every watcher: the agent's flow log set may
// have changed with it. An interface another agent registered before
// moves to this one. It counts as hearing from the agent.
func (s *Service) Register(ctx context.Context, r control.Registration) error {
	if err := checkRegistration(r); err != nil {
		return err
	}
	now := s.opts.Now()
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		// Deleting the agent cascades to its VPCs, subnets and interfaces.
		if _, err := tx.ExecContext(ctx, `DELETE FROM ec2_agents WHERE agent_id = ?`, r.AgentID); err != nil {
			return fmt.Errorf("register agent %s: %w", r.AgentID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_agents(agent_id, hostname, version, instance_id, account_id, region, az_id, registered_ms, last_seen_ms)
			VALUES(?,?,?,?,?,?,?,?,?)`, r.AgentID, r.Hostname, r.Version, r.InstanceID, r.AccountID, r.Region, r.AZID, now.UnixMilli(), now.UnixMilli()); err != nil {
			return fmt.Errorf("register agent %s: %w", r.AgentID, err)
		}
		for _, v := range r.VPCs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_vpcs(vpc_id, agent_id, cidrs) VALUES(?,?,?)
				ON CONFLICT DO UPDATE SET cidrs = excluded.cidrs`, v.VPCID, r.AgentID, jsonList(v.CIDRBlocks)); err != nil {
				return fmt.Errorf("register vpc %s: %w", v.VPCID, err)
			}
		}
		for _, sn := range r.Subnets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_subnets(subnet_id, agent_id, vpc_id, cidrs, az_id) VALUES(?,?,?,?,?)
				ON CONFLICT DO UPDATE SET vpc_id = excluded.vpc_id, cidrs = excluded.cidrs, az_id = excluded.az_id`,
				sn.SubnetID, r.AgentID, sn.VPCID, jsonList(sn.CIDRBlocks), sn.AZID); err != nil {
				return fmt.Errorf("register subnet %s: %w", sn.SubnetID, err)
			}
		}
		for _, in := range r.Interfaces {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_interfaces(eni_id, agent_id, subnet_id, vpc_id, instance_id, mac, addresses, name, netns, description)
				VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(eni_id) DO UPDATE SET agent_id = excluded.agent_id, subnet_id = excluded.subnet_id,
				vpc_id = excluded.vpc_id, instance_id = excluded.instance_id, mac = excluded.mac, addresses = excluded.addresses,
				name = excluded.name, netns = excluded.netns, description = excluded.description`,
				in.InterfaceID, r.AgentID, in.SubnetID, in.VPCID, in.InstanceID, in.MAC, jsonList(in.Addresses), in.Name, in.Netns, in.Description); err != nil {
				return fmt.Errorf("register interface %s: %w", in.InterfaceID, err)
			}
		}
		return bumpRevision(ctx, tx)
	})
	if err != nil {
		return err
	}
	s.notify()
	s.log.Info("agent registered", "agent", r.AgentID, "hostname", r.Hostname, "vpcs", len(r.VPCs), "subnets", len(r.Subnets), "interfaces", len(r.Interfaces))
	return nil
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func parseList(s string) []string {
	var l []string
	_ = json.Unmarshal([]byte(s), &l)
	return l
}

// FlowLogsFor returns the flow logs whose resource is one of the agent's
// registered VPCs, subnets or interfaces, with the set's revision; it is
// an agent's call (WatchFlowLogs, GetDeliveryCredentials), so it counts
// as hearing from the agent. An agent without a registration (never
// registered, or dropped after InventoryExpiry) gets a 404
// control.CodeUnknownAgent error: it registers again.
func (s *Service) FlowLogsFor(ctx context.Context, agentID string) (control.FlowLogSet, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return control.FlowLogSet{}, fmt.Errorf("read flow log set: %w", err)
	}
	defer tx.Rollback()
	set := control.FlowLogSet{FlowLogs: []control.FlowLog{}}
	var known int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ec2_agents WHERE agent_id = ?`, agentID).Scan(&known); err != nil {
		return set, fmt.Errorf("read flow log set of agent %s: %w", agentID, err)
	}
	if known == 0 {
		return set, &api.Error{Status: http.StatusNotFound, Code: control.CodeUnknownAgent,
			Message: "agent " + agentID + " is not registered (never, or not heard from within the server's inventory-expiry): register again"}
	}
	s.heard(agentID)
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT value FROM ec2_meta WHERE key = 'revision'), 0)`).Scan(&set.Revision); err != nil {
		return set, fmt.Errorf("read flow log set revision: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, created_ms, resource_id, traffic_type, dest_type, dest, log_group, role_arn,
		log_format, max_aggregation, file_format, hive, per_hour FROM ec2_flow_logs WHERE resource_id IN (
			SELECT vpc_id FROM ec2_vpcs WHERE agent_id = ?1
			UNION SELECT subnet_id FROM ec2_subnets WHERE agent_id = ?1
			UNION SELECT eni_id FROM ec2_interfaces WHERE agent_id = ?1) ORDER BY seq`, agentID)
	if err != nil {
		return set, fmt.Errorf("read flow log set: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fl control.FlowLog
		var ms int64
		if err := rows.Scan(&fl.FlowLogID, &ms, &fl.ResourceID, &fl.TrafficType, &fl.LogDestinationType, &fl.LogDestination,
			&fl.LogGroupName, &fl.DeliverLogsPermissionArn, &fl.LogFormat, &fl.MaxAggregationInterval, &fl.FileFormat,
			&fl.HiveCompatiblePartitions, &fl.PerHourPartition); err != nil {
			return set, fmt.Errorf("read flow log set: %w", err)
		}
		fl.CreationTime = time.UnixMilli(ms).UTC()
		set.FlowLogs = append(set.FlowLogs, fl)
	}
	return set, rows.Err()
}

// ReportStatus records an agent's delivery status of its flow logs.
// Statuses of flow logs deleted meanwhile are dropped. It counts as
// hearing from the agent.
func (s *Service) ReportStatus(ctx context.Context, r control.StatusReport) error {
	if r.AgentID == "" {
		return api.Errorf("MissingParameter", "status report agentId: required")
	}
	for i, st := range r.FlowLogs {
		if st.Status != "SUCCESS" && st.Status != "FAILED" {
			return api.Errorf("InvalidParameterValue", "status report flowLogs[%d].status: %q is not SUCCESS or FAILED", i, st.Status)
		}
		if len(st.Message) > 4096 {
			return api.Errorf("InvalidParameterValue", "status report flowLogs[%d].message: longer than 4096 bytes", i)
		}
	}
	s.heard(r.AgentID)
	now := s.opts.Now().UnixMilli()
	return api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		for _, st := range r.FlowLogs {
			msg := st.Message
			if st.Status == "SUCCESS" {
				msg = ""
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_flow_log_status(flow_log_id, agent_id, status, message, last_delivery_ms, records, last_record_end_ms, reported_ms)
				SELECT id, ?, ?, ?, ?, ?, ?, ? FROM ec2_flow_logs WHERE id = ?
				ON CONFLICT(flow_log_id, agent_id) DO UPDATE SET status = excluded.status, message = excluded.message,
					last_delivery_ms = max(last_delivery_ms, excluded.last_delivery_ms), records = excluded.records,
					last_record_end_ms = max(last_record_end_ms, excluded.last_record_end_ms), reported_ms = excluded.reported_ms`,
				r.AgentID, st.Status, msg, unixMilli(st.LastDelivery), st.Records, unixMilli(st.LastRecordEnd), now, st.FlowLogID); err != nil {
				return fmt.Errorf("record status of %s from %s: %w", st.FlowLogID, r.AgentID, err)
			}
		}
		return nil
	})
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// inventory reads the registered inventory, merged across agents, with
// each resource's flow logs; vpcs, subnets and interfaces sorted by id.
func (s *Service) inventory(ctx context.Context) (Inventory, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Inventory{}, fmt.Errorf("read inventory: %w", err)
	}
	defer tx.Rollback()
	var inv Inventory
	// Flow logs by resource, for coverage.
	byResource := map[string][]string{}
	if err := eachRow(ctx, tx, `SELECT resource_id, id FROM ec2_flow_logs ORDER BY seq`, func(rows *sql.Rows) error {
		var rid, id string
		if err := rows.Scan(&rid, &id); err != nil {
			return err
		}
		byResource[rid] = append(byResource[rid], id)
		return nil
	}); err != nil {
		return inv, err
	}
	vpcIndex := map[string]int{}
	if err := eachRow(ctx, tx, `SELECT vpc_id, agent_id, cidrs FROM ec2_vpcs ORDER BY vpc_id, agent_id`, func(rows *sql.Rows) error {
		var id, agent, cidrs string
		if err := rows.Scan(&id, &agent, &cidrs); err != nil {
			return err
		}
		i, ok := vpcIndex[id]
		if !ok {
			i = len(inv.VPCs)
			vpcIndex[id] = i
			inv.VPCs = append(inv.VPCs, VPC{VPCID: id, FlowLogIDs: byResource[id]})
		}
		v := &inv.VPCs[i]
		v.AgentIDs = append(v.AgentIDs, agent)
		v.CIDRBlocks = union(v.CIDRBlocks, parseList(cidrs))
		return nil
	}); err != nil {
		return inv, err
	}
	subnetIndex := map[string]int{}
	if err := eachRow(ctx, tx, `SELECT subnet_id, agent_id, vpc_id, cidrs, az_id FROM ec2_subnets ORDER BY subnet_id, agent_id`, func(rows *sql.Rows) error {
		var id, agent, vpc, cidrs, az string
		if err := rows.Scan(&id, &agent, &vpc, &cidrs, &az); err != nil {
			return err
		}
		i, ok := subnetIndex[id]
		if !ok {
			i = len(inv.Subnets)
			subnetIndex[id] = i
			inv.Subnets = append(inv.Subnets, Subnet{SubnetID: id, VPCID: vpc, AZID: az, FlowLogIDs: byResource[id]})
		}
		sn := &inv.Subnets[i]
		sn.AgentIDs = append(sn.AgentIDs, agent)
		sn.CIDRBlocks = union(sn.CIDRBlocks, parseList(cidrs))
		return nil
	}); err != nil {
		return inv, err
	}
	// Last record end per (flow log, agent).
	type key struct{ fl, agent string }
	lastEnd := map[key]int64{}
	if err := eachRow(ctx, tx, `SELECT flow_log_id, agent_id, last_record_end_ms FROM ec2_flow_log_status`, func(rows *sql.Rows) error {
		var k key
		var ms int64
		if err := rows.Scan(&k.fl, &k.agent, &ms); err != nil {
			return err
		}
		lastEnd[k] = ms
		return nil
	}); err != nil {
		return inv, err
	}
	seen := s.lastSeen()
	if err := eachRow(ctx, tx, `SELECT i.eni_id, i.agent_id, i.subnet_id, i.vpc_id, i.instance_id, i.mac, i.addresses, i.name, i.netns, i.description,
		a.hostname, a.registered_ms, max(a.last_seen_ms, a.registered_ms) FROM ec2_interfaces i JOIN ec2_agents a ON a.agent_id = i.agent_id ORDER BY i.eni_id`, func(rows *sql.Rows) error {
		var in Interface
		var addrs string
		var ms, seenMS int64
		if err := rows.Scan(&in.InterfaceID, &in.AgentID, &in.SubnetID, &in.VPCID, &in.InstanceID, &in.MAC, &addrs, &in.Name, &in.Netns,
			&in.Description, &in.Hostname, &ms, &seenMS); err != nil {
			return err
		}
		in.Addresses = parseList(addrs)
		in.RegisteredAt = time.UnixMilli(ms).UTC()
		in.LastSeen = time.UnixMilli(max(seenMS, seen[in.AgentID])).UTC()
		for _, rid := range []string{in.InterfaceID, in.SubnetID, in.VPCID} {
			for _, fl := range byResource[rid] {
				in.FlowLogIDs = append(in.FlowLogIDs, fl)
				if ms := lastEnd[key{fl, in.AgentID}]; ms > 0 && time.UnixMilli(ms).After(in.LastRecordTime) {
					in.LastRecordTime = time.UnixMilli(ms).UTC()
				}
			}
		}
		inv.Interfaces = append(inv.Interfaces, in)
		return nil
	}); err != nil {
		return inv, err
	}
	return inv, nil
}

// Inventory returns the VPCs, subnets and interfaces the agents
// registered, each with the flow logs covering it; each interface with
// its agent, registration time and last record time.
func (s *Service) Inventory(ctx context.Context) (Inventory, error) { return s.inventory(ctx) }

func eachRow(ctx context.Context, tx *sql.Tx, q string, f func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return fmt.Errorf("read inventory: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	return nil
}

func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}
