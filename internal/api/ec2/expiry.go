package ec2

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Liveness and expiry of agents. Every agent call counts as hearing from
// the agent; an agent not heard from for Options.InventoryExpiry is
// dropped with its VPCs, subnets and interfaces, as AWS forgets a deleted
// ENI. Flow logs on those resources stay. An agent that calls again is
// answered control.CodeUnknownAgent and registers again.
//
// Last-seen times are kept in memory and written to the store (one
// transaction for all agents) at every sweep: an agent long-polls
// WatchFlowLogs continuously, and a commit per call is an fsync per call
// (synchronous=FULL), on the path every agent takes.

// DefaultSweepInterval bounds how often Start sweeps.
const DefaultSweepInterval = time.Minute

// addLastSeen adds ec2_agents.last_seen_ms to a store created before it
// existed (0: the registration time counts).
func addLastSeen(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('ec2_agents') WHERE name = 'last_seen_ms'`).Scan(&n); err != nil {
		return fmt.Errorf("read columns of ec2_agents: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE ec2_agents ADD COLUMN last_seen_ms INTEGER NOT NULL DEFAULT 0`); err != nil {
		return fmt.Errorf("add ec2_agents.last_seen_ms: %w", err)
	}
	return nil
}

// heard notes a call of the agent now. It only touches memory: it is on
// every agent call.
func (s *Service) heard(agentID string) {
	now := s.opts.Now().UnixMilli()
	s.seenMu.Lock()
	if now > s.seen[agentID] {
		s.seen[agentID] = now
	}
	s.seenMu.Unlock()
}

// heardSince reports whether the agent called at or after ms and its call
// is not yet in the store.
func (s *Service) heardSince(agentID string, ms int64) bool {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	return s.seen[agentID] >= ms
}

// lastSeen is when each agent called last, as far as memory knows.
func (s *Service) lastSeen() map[string]int64 {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	m := make(map[string]int64, len(s.seen))
	for k, v := range s.seen {
		m[k] = v
	}
	return m
}

// flushSeen writes the last-seen times kept in memory to the store, in
// one transaction, and forgets those that did not move meanwhile.
// Entries of agents the store does not know (never registered, or
// dropped) update nothing and are forgotten too.
func (s *Service) flushSeen(ctx context.Context) error {
	seen := s.lastSeen()
	if len(seen) == 0 {
		return nil
	}
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE ec2_agents SET last_seen_ms = max(last_seen_ms, ?) WHERE agent_id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for id, ms := range seen {
			if _, err := stmt.ExecContext(ctx, ms, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write last-seen times of %d agents: %w", len(seen), err)
	}
	s.seenMu.Lock()
	for id, ms := range seen {
		if s.seen[id] == ms {
			delete(s.seen, id)
		}
	}
	s.seenMu.Unlock()
	return nil
}

// ExpiredAgent is an agent Sweep dropped.
type ExpiredAgent struct {
	AgentID    string
	Hostname   string
	Interfaces int
	LastSeen   time.Time
}

// Sweep writes the agents' last-seen times to the store and, with an
// InventoryExpiry, drops the agents not heard from for longer than it
// (nor since the service started: a server that was down does not drop
// the agents that could not reach it), with their VPCs, subnets and
// interfaces. Their flow logs stay. It returns the agents dropped, each
// also logged.
func (s *Service) Sweep(ctx context.Context) ([]ExpiredAgent, error) {
	if err := s.flushSeen(ctx); err != nil {
		return nil, fmt.Errorf("sweep inventory: %w", err)
	}
	if s.opts.InventoryExpiry <= 0 {
		return nil, nil
	}
	now := s.opts.Now()
	cutoff := now.Add(-s.opts.InventoryExpiry).UnixMilli()
	if s.started.UnixMilli() >= cutoff {
		return nil, nil
	}
	var old []ExpiredAgent
	rows, err := s.db.QueryContext(ctx, `SELECT a.agent_id, a.hostname, max(a.last_seen_ms, a.registered_ms),
		(SELECT count(*) FROM ec2_interfaces i WHERE i.agent_id = a.agent_id)
		FROM ec2_agents a WHERE max(a.last_seen_ms, a.registered_ms) < ? ORDER BY a.agent_id`, cutoff)
	if err != nil {
		return nil, fmt.Errorf("sweep inventory: list agents: %w", err)
	}
	for rows.Next() {
		var a ExpiredAgent
		var ms int64
		if err := rows.Scan(&a.AgentID, &a.Hostname, &ms, &a.Interfaces); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sweep inventory: list agents: %w", err)
		}
		a.LastSeen = time.UnixMilli(ms).UTC()
		old = append(old, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sweep inventory: list agents: %w", err)
	}
	var dropped []ExpiredAgent
	for _, a := range old {
		// A call since the flush keeps the agent; a registration since
		// the listing moved registered_ms, which the delete checks.
		if s.heardSince(a.AgentID, cutoff) {
			continue
		}
		res, err := s.db.ExecContext(ctx, `DELETE FROM ec2_agents WHERE agent_id = ? AND max(last_seen_ms, registered_ms) < ?`, a.AgentID, cutoff)
		if err != nil {
			return dropped, fmt.Errorf("sweep inventory: drop agent %s: %w", a.AgentID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		s.log.Info("agent expired: not heard from within inventory-expiry; its VPCs, subnets and interfaces are dropped, their flow logs kept",
			"agent", a.AgentID, "hostname", a.Hostname, "interfaces", a.Interfaces, "last_seen", a.LastSeen, "inventory_expiry", s.opts.InventoryExpiry)
		dropped = append(dropped, a)
	}
	return dropped, nil
}

// sweeperRun is the state of Start and Stop.
type sweeperRun struct {
	mu      sync.Mutex
	stopped bool
	stop    chan struct{}
	done    chan struct{} // closed when Start returns; nil until it runs
}

func newSweeperRun() sweeperRun { return sweeperRun{stop: make(chan struct{})} }

// Start sweeps (Sweep) every Options.SweepInterval until ctx ends or Stop
// is called, then writes the last-seen times once more.
func (s *Service) Start(ctx context.Context) {
	s.run.mu.Lock()
	if s.run.stopped || s.run.done != nil {
		s.run.mu.Unlock()
		return
	}
	done := make(chan struct{})
	s.run.done = done
	s.run.mu.Unlock()
	defer close(done)
	if s.opts.InventoryExpiry > 0 {
		s.log.Info("inventory expiry", "inventory_expiry", s.opts.InventoryExpiry, "sweep_interval", s.opts.SweepInterval)
	}
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-s.run.stop:
			break loop
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("inventory sweep", "err", err)
			}
		}
	}
	// The last calls' times, for the next start and the console.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.flushSeen(fctx); err != nil {
		s.log.Warn("inventory sweep", "err", err)
	}
}

// Stop ends Start and waits for it; without Start, it writes the
// last-seen times kept in memory.
func (s *Service) Stop() error {
	s.run.mu.Lock()
	if !s.run.stopped {
		s.run.stopped = true
		close(s.run.stop)
	}
	done := s.run.done
	s.run.mu.Unlock()
	if done != nil {
		<-done
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.flushSeen(ctx)
}
