// Package ec2 owns flowlog's EC2 API: CreateFlowLogs, DescribeFlowLogs
// and DeleteFlowLogs, and the read-only DescribeVpcs, DescribeSubnets
// and DescribeNetworkInterfaces that serve the inventory agents register.
// It speaks the EC2 Query protocol (XML shaped as botocore's model of EC2
// 2016-11-15) so the stock AWS CLI and SDKs work with --endpoint-url, and
// keeps flow logs, their tags, client tokens, the inventory and each
// agent's delivery status in the server's SQLite store (ec2_* tables).
// Its sweeper (Start) drops the agents not heard from within
// Options.InventoryExpiry, with their part of the inventory.
//
// The same operations are a Go API for the web console and the agent
// protocol (package control): one validation, one set of *api.Error
// errors, whichever front end a request came through.
package ec2

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// API identity.
const (
	SigningName  = "ec2"
	Version      = "2016-11-15"
	XMLNamespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// Limits.
const (
	// DefaultMaxFlowLogs bounds the flow logs of the server.
	DefaultMaxFlowLogs = 10000
	// DefaultMaxFlowLogsPerResource is AWS's limit: two flow logs per
	// VPC, subnet or network interface (an interface can still be
	// covered by six: two of its own, two of its subnet, two of its VPC).
	DefaultMaxFlowLogsPerResource = 2
	// StatusTTL is how long an agent's FAILED report keeps a flow log
	// FAILED without being renewed (agents report every ~10 s).
	StatusTTL = 5 * time.Minute
	// ClientTokenTTL is how long a ClientToken is remembered; AWS keeps
	// them "at least 24 hours". A retry later than that creates again.
	ClientTokenTTL = 24 * time.Hour
	// maxResourceIDs bounds ResourceId.N of one CreateFlowLogs, as AWS.
	maxResourceIDs = 1000
	// maxTags bounds the tags of one flow log, as AWS.
	maxTags = 50
)

// Options configure a Service.
type Options struct {
	AccountID string
	Region    string
	// MaxFlowLogs bounds the number of flow logs; 0 means
	// DefaultMaxFlowLogs.
	MaxFlowLogs int
	// MaxFlowLogsPerResource bounds the flow logs of one resource; 0
	// means DefaultMaxFlowLogsPerResource.
	MaxFlowLogsPerResource int
	Logger                 *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// InventoryExpiry is how long an agent may go without calling the
	// server (Register, WatchFlowLogs, ReportStatus,
	// GetDeliveryCredentials) before Sweep drops it with its VPCs,
	// subnets and interfaces; 0 keeps agents until they register again.
	InventoryExpiry time.Duration
	// SweepInterval is how often Start sweeps and writes the agents'
	// last-seen times to the store; 0 means a tenth of InventoryExpiry,
	// from 1 s to DefaultSweepInterval.
	SweepInterval time.Duration
}

// Service is the EC2 API and the store of flow logs and inventory.
type Service struct {
	db   *sql.DB
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	changed chan struct{}

	// started is when the service was created: an agent is not dropped
	// before it has had InventoryExpiry to call a restarted server.
	started time.Time
	// seen is when each agent last called, since the last flush to
	// ec2_agents.last_seen_ms (unix ms): agents long-poll continuously,
	// and a commit per call is an fsync per call.
	seenMu sync.Mutex
	seen   map[string]int64

	run sweeperRun
}

// New creates the service's tables in db (if missing) and returns it.
func New(ctx context.Context, db *sql.DB, opts Options) (*Service, error) {
	if opts.AccountID == "" {
		opts.AccountID = api.DefaultAccountID
	}
	if opts.Region == "" {
		opts.Region = api.DefaultRegion
	}
	if opts.MaxFlowLogs == 0 {
		opts.MaxFlowLogs = DefaultMaxFlowLogs
	}
	if opts.MaxFlowLogsPerResource == 0 {
		opts.MaxFlowLogsPerResource = DefaultMaxFlowLogsPerResource
	}
	if opts.MaxFlowLogs < 0 || opts.MaxFlowLogsPerResource < 0 {
		return nil, errors.New("new ec2 service: negative flow log limit")
	}
	if opts.InventoryExpiry < 0 || opts.SweepInterval < 0 {
		return nil, errors.New("new ec2 service: negative inventory expiry or sweep interval")
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = min(max(opts.InventoryExpiry/10, time.Second), DefaultSweepInterval)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("new ec2 service: create tables: %w", err)
		}
	}
	if err := addLastSeen(ctx, db); err != nil {
		return nil, fmt.Errorf("new ec2 service: %w", err)
	}
	return &Service{db: db, opts: opts, log: opts.Logger, changed: make(chan struct{}),
		started: opts.Now(), seen: map[string]int64{}, run: newSweeperRun()}, nil
}

// schema is the service's tables. Every write of one API call happens in
// one transaction, so a crash leaves a call entirely done or not at all.
var schema = []string{
	// seq orders flow logs by creation: pagination tokens are a seq, so
	// creates during a listing only ever land after it.
	`CREATE TABLE IF NOT EXISTS ec2_flow_logs (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		id TEXT NOT NULL UNIQUE,
		created_ms INTEGER NOT NULL,
		resource_id TEXT NOT NULL,
		resource_type TEXT NOT NULL,
		traffic_type TEXT NOT NULL,
		dest_type TEXT NOT NULL,
		dest TEXT NOT NULL,
		log_group TEXT NOT NULL,
		role_arn TEXT NOT NULL,
		log_format TEXT NOT NULL,
		max_aggregation INTEGER NOT NULL,
		file_format TEXT NOT NULL,
		hive INTEGER NOT NULL,
		per_hour INTEGER NOT NULL,
		client_token TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS ec2_flow_logs_resource ON ec2_flow_logs(resource_id)`,
	`CREATE TABLE IF NOT EXISTS ec2_flow_log_tags (
		flow_log_id TEXT NOT NULL REFERENCES ec2_flow_logs(id) ON DELETE CASCADE,
		key TEXT NOT NULL,
		value TEXT NOT NULL,
		PRIMARY KEY (flow_log_id, key)
	)`,
	// A client token remembers the request it came with (hash) and the
	// answer given, so a retry gets the same answer.
	`CREATE TABLE IF NOT EXISTS ec2_client_tokens (
		token TEXT PRIMARY KEY,
		request_hash TEXT NOT NULL,
		response TEXT NOT NULL,
		created_ms INTEGER NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS ec2_client_tokens_created ON ec2_client_tokens(created_ms)`,
	`CREATE TABLE IF NOT EXISTS ec2_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS ec2_agents (
		agent_id TEXT PRIMARY KEY,
		hostname TEXT NOT NULL,
		version TEXT NOT NULL,
		instance_id TEXT NOT NULL,
		account_id TEXT NOT NULL,
		region TEXT NOT NULL,
		az_id TEXT NOT NULL,
		registered_ms INTEGER NOT NULL,
		last_seen_ms INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE IF NOT EXISTS ec2_vpcs (
		vpc_id TEXT NOT NULL,
		agent_id TEXT NOT NULL REFERENCES ec2_agents(agent_id) ON DELETE CASCADE,
		cidrs TEXT NOT NULL,
		PRIMARY KEY (vpc_id, agent_id)
	)`,
	`CREATE TABLE IF NOT EXISTS ec2_subnets (
		subnet_id TEXT NOT NULL,
		agent_id TEXT NOT NULL REFERENCES ec2_agents(agent_id) ON DELETE CASCADE,
		vpc_id TEXT NOT NULL,
		cidrs TEXT NOT NULL,
		az_id TEXT NOT NULL,
		PRIMARY KEY (subnet_id, agent_id)
	)`,
	`CREATE TABLE IF NOT EXISTS ec2_interfaces (
		eni_id TEXT PRIMARY KEY,
		agent_id TEXT NOT NULL REFERENCES ec2_agents(agent_id) ON DELETE CASCADE,
		subnet_id TEXT NOT NULL,
		vpc_id TEXT NOT NULL,
		instance_id TEXT NOT NULL,
		mac TEXT NOT NULL,
		addresses TEXT NOT NULL,
		name TEXT NOT NULL,
		netns TEXT NOT NULL,
		description TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS ec2_interfaces_agent ON ec2_interfaces(agent_id)`,
	`CREATE TABLE IF NOT EXISTS ec2_flow_log_status (
		flow_log_id TEXT NOT NULL REFERENCES ec2_flow_logs(id) ON DELETE CASCADE,
		agent_id TEXT NOT NULL,
		status TEXT NOT NULL,
		message TEXT NOT NULL,
		last_delivery_ms INTEGER NOT NULL,
		records INTEGER NOT NULL,
		last_record_end_ms INTEGER NOT NULL,
		reported_ms INTEGER NOT NULL,
		PRIMARY KEY (flow_log_id, agent_id)
	)`,
}

// Changed returns a channel that is closed at the next change of any
// agent's flow log set (a flow log created or deleted, an agent
// registered). Take it before reading the set, then wait on it.
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Service) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// bumpRevision increments the flow log set revision inside tx.
func bumpRevision(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO ec2_meta(key, value) VALUES('revision', 1)
		ON CONFLICT(key) DO UPDATE SET value = value + 1`)
	if err != nil {
		return fmt.Errorf("bump revision: %w", err)
	}
	return nil
}

// Info implements api.Service.
func (s *Service) Info() api.ServiceInfo {
	return api.ServiceInfo{SigningName: SigningName, Protocol: api.ProtocolEC2Query, Version: Version, XMLNamespace: XMLNamespace}
}

// arn is the ARN of an EC2 resource of the service's account and region.
func (s *Service) arn(kind, id string) string {
	return "arn:aws:ec2:" + s.opts.Region + ":" + s.opts.AccountID + ":" + kind + "/" + id
}

// resourceARN is the ARN of a flow log's resource, by its id's prefix.
func (s *Service) resourceARN(resourceType, id string) string {
	switch resourceType {
	case "VPC":
		return s.arn("vpc", id)
	case "Subnet":
		return s.arn("subnet", id)
	default:
		return s.arn("network-interface", id)
	}
}

// Resources implements api.Service: the flow logs a call deletes or
// describes by id, the resources a create covers; nil ("*") otherwise.
func (s *Service) Resources(_ context.Context, call *api.Call) ([]string, error) {
	p := params(call.Params)
	switch call.Action {
	case "CreateFlowLogs":
		ids, err := p.list("ResourceId")
		if err != nil {
			return nil, err
		}
		rt := p.str("ResourceType")
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			out = append(out, s.resourceARN(rt, id))
		}
		return out, nil
	case "DeleteFlowLogs", "DescribeFlowLogs":
		ids, err := p.list("FlowLogId")
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			out = append(out, s.arn("vpc-flow-log", id))
		}
		return out, nil
	}
	return nil, nil
}

// Serve implements api.Service.
func (s *Service) Serve(ctx context.Context, call *api.Call) (any, error) {
	switch call.Action {
	case "CreateFlowLogs":
		return s.serveCreate(ctx, call)
	case "DescribeFlowLogs":
		return s.serveDescribe(ctx, call)
	case "DeleteFlowLogs":
		return s.serveDelete(ctx, call)
	case "DescribeVpcs":
		return s.serveDescribeVpcs(ctx, call)
	case "DescribeSubnets":
		return s.serveDescribeSubnets(ctx, call)
	case "DescribeNetworkInterfaces":
		return s.serveDescribeNetworkInterfaces(ctx, call)
	}
	return nil, api.Errorf("InvalidAction", "The action %s is not valid for this web service.", call.Action)
}

// errDryRun is EC2's answer to a permitted DryRun request.
func errDryRun() *api.Error {
	return &api.Error{Status: 412, Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set."}
}

// dryRun reads DryRun and, when set, answers DryRunOperation: the router
// has authorized the call by then.
func dryRun(p params) error {
	dr, err := p.boolean("DryRun")
	if err != nil {
		return err
	}
	if dr {
		return errDryRun()
	}
	return nil
}
