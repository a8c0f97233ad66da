package logs

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// sweepChunk is how many events one sweeping transaction deletes: small
// enough that PutLogEvents calls waiting for the write lock wait little.
const sweepChunk = 5000

// Start runs the sweeper until ctx ends: every Options.SweepInterval, and
// soon after a group or stream is deleted or a retention set, it deletes
// events older than their group's retention and the events of deleted
// groups and streams, keeping storedBytes current.
func (s *Service) Start(ctx context.Context) {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		switch n, err := s.Sweep(ctx); {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("logs sweep", "deleted-events", n, "err", err)
		case n > 0:
			s.log.Info("logs sweep", "deleted-events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.sweep:
		}
	}
}

// Sweep deletes what retention and deletions have left behind, now, and
// returns how many events it deleted.
func (s *Service) Sweep(ctx context.Context) (int64, error) {
	var total int64
	// Deleted groups and streams.
	type trash struct{ gid, sid int64 }
	var bins []trash
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT group_id, stream_id FROM logs_trash`)
	if err != nil {
		return 0, fmt.Errorf("sweep: list deleted: %w", err)
	}
	for rows.Next() {
		var t trash
		if err := rows.Scan(&t.gid, &t.sid); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sweep: list deleted: %w", err)
		}
		bins = append(bins, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sweep: list deleted: %w", err)
	}
	for _, b := range bins {
		for {
			var n int64
			err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
				var res sql.Result
				var err error
				if b.sid == 0 {
					res, err = tx.ExecContext(ctx, `DELETE FROM logs_events WHERE seq IN (SELECT seq FROM logs_events WHERE group_id = ? LIMIT ?)`, b.gid, sweepChunk)
				} else {
					res, err = tx.ExecContext(ctx, `DELETE FROM logs_events WHERE seq IN (SELECT seq FROM logs_events WHERE stream_id = ? LIMIT ?)`, b.sid, sweepChunk)
				}
				if err != nil {
					return err
				}
				n, _ = res.RowsAffected()
				if n < sweepChunk {
					// The last of them: ids are never reused, so no event
					// can arrive for a deleted group or stream after this.
					// Forgetting the bin in the same transaction means no one
					// sees it empty but still listed.
					_, err = tx.ExecContext(ctx, `DELETE FROM logs_trash WHERE group_id = ? AND stream_id = ?`, b.gid, b.sid)
				}
				return err
			})
			if err != nil {
				return total, fmt.Errorf("sweep: delete events of deleted group %d stream %d: %w", b.gid, b.sid, err)
			}
			total += n
			if n < sweepChunk {
				break
			}
		}
	}
	// Retention.
	type kept struct{ gid, days int64 }
	var groups []kept
	rows, err = s.db.QueryContext(ctx, `SELECT id, retention_days FROM logs_groups WHERE retention_days IS NOT NULL`)
	if err != nil {
		return total, fmt.Errorf("sweep: list retention: %w", err)
	}
	for rows.Next() {
		var k kept
		if err := rows.Scan(&k.gid, &k.days); err != nil {
			rows.Close()
			return total, fmt.Errorf("sweep: list retention: %w", err)
		}
		groups = append(groups, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return total, fmt.Errorf("sweep: list retention: %w", err)
	}
	for _, g := range groups {
		cutoff := ms(s.now()) - g.days*24*3600*1000
		for {
			n, err := s.expire(ctx, g.gid, cutoff)
			if err != nil {
				return total, fmt.Errorf("sweep: expire events of group %d: %w", g.gid, err)
			}
			total += n
			if n < sweepChunk {
				break
			}
		}
	}
	return total, nil
}

// expire deletes up to sweepChunk events of a group older than cutoff and
// takes their bytes off the counts.
func (s *Service) expire(ctx context.Context, gid, cutoff int64) (int64, error) {
	var n int64
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM logs_events WHERE seq IN
			(SELECT seq FROM logs_events WHERE group_id = ? AND ts < ? ORDER BY ts LIMIT ?) RETURNING stream_id, size`, gid, cutoff, sweepChunk)
		if err != nil {
			return err
		}
		bytes := map[int64]int64{}
		var total int64
		for rows.Next() {
			var sid, size int64
			if err := rows.Scan(&sid, &size); err != nil {
				rows.Close()
				return err
			}
			bytes[sid] += size
			total += size
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for sid, b := range bytes {
			if _, err := tx.ExecContext(ctx, `UPDATE logs_streams SET stored_bytes = stored_bytes - ? WHERE id = ?`, b, sid); err != nil {
				return err
			}
		}
		if total > 0 {
			_, err = tx.ExecContext(ctx, `UPDATE logs_groups SET stored_bytes = stored_bytes - ? WHERE id = ?`, total, gid)
		}
		return err
	})
	return n, err
}
