package spool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// consumer is the delivery goroutine's state: it reads entries from the
// acknowledged offset on and hands them to the destination.
type consumer struct {
	s    *Spool
	dest Sink
	ack  ackState // as persisted
	pos  int64    // offset of the next entry to deliver
	// pending lists the record entries delivered since ack.Offset with the
	// largest End among their records, for Config.Durable.
	pending []pendingEntry
	maxWM   int64 // highest watermark the destination accepted in this run

	file    *os.File
	fileSeg segment
	format  *flow.Format
	recs    []flow.Record
	buf     []byte
	attempt int // consecutive failures
}

type pendingEntry struct {
	off    int64
	maxEnd int64
}

// corruptSegment is a decoding error in a segment while delivering.
type corruptSegment struct {
	seg segment
	err error
}

func (e *corruptSegment) Error() string {
	return fmt.Sprintf("read spool segment %s: %v", e.seg.path, e.err)
}

func (e *corruptSegment) Unwrap() error { return e.err }

func newConsumer(s *Spool, ack ackState) *consumer {
	return &consumer{s: s, dest: s.dest, ack: ack, pos: ack.Offset, maxWM: minInt64}
}

func (c *consumer) run(ctx context.Context) {
	defer close(c.s.done)
	defer c.closeFile()
	for ctx.Err() == nil {
		end, closing := c.s.committed()
		if c.pos < end {
			if err := c.step(); err != nil {
				c.failed(ctx, err)
			}
			continue
		}
		if closing {
			done, err := c.finish(end)
			if err != nil {
				c.failed(ctx, err)
				continue
			}
			if done {
				return
			}
			continue
		}
		select {
		case <-c.s.wake:
		case <-ctx.Done():
		}
	}
}

// step delivers the entry at c.pos.
func (c *consumer) step() error {
	seg, ok := c.s.segmentAt(c.pos)
	if !ok {
		// Nothing left at or after pos (the rest was quarantined): the
		// next entry is wherever the spool appends.
		end, _ := c.s.committed()
		c.pos = end
		return nil
	}
	c.pos = max(c.pos, seg.base)
	if c.file == nil || c.fileSeg.base != seg.base {
		c.closeFile()
		f, err := os.Open(seg.path)
		if err != nil {
			return fmt.Errorf("open spool segment: %w", err)
		}
		c.file, c.fileSeg = f, seg
	}
	if c.format == nil {
		kind, payload, n, err := c.read(0)
		if err == nil && kind != kindHeader {
			err = fmt.Errorf("%w: segment does not start with a header entry", errCorrupt)
		}
		if err == nil {
			c.format, err = headerFormat(payload)
		}
		if err != nil {
			return c.corrupt(seg, err)
		}
		if c.pos == seg.base {
			c.pos += int64(n)
			return nil
		}
	}
	kind, payload, n, err := c.read(c.pos - seg.base)
	if err != nil {
		return c.corrupt(seg, err)
	}
	switch kind {
	case kindHeader:
		return c.corrupt(seg, fmt.Errorf("%w: header entry at byte %d", errCorrupt, c.pos-seg.base))
	case kindRecords:
		var keep func(*flow.Record) bool
		if c.pos < c.ack.Upto && c.ack.Bound != minInt64 {
			bound := c.ack.Bound
			keep = func(r *flow.Record) bool { return r.End >= bound }
		}
		recs, err := parseRecords(c.format, payload, c.recs, keep)
		c.recs = recs
		if err != nil {
			return c.corrupt(seg, err)
		}
		maxEnd := int64(minInt64)
		for i := range recs {
			maxEnd = max(maxEnd, recs[i].End)
		}
		if len(recs) > 0 {
			if err := c.dest.Write(recs); err != nil {
				return fmt.Errorf("write %d records: %w", len(recs), err)
			}
			c.s.delivered(len(recs))
		}
		c.pending = append(c.pending, pendingEntry{off: c.pos, maxEnd: maxEnd})
		c.pos += int64(n)
	case kindAdvance:
		wm := advanceWatermark(payload)
		if err := c.dest.Advance(wm); err != nil {
			return fmt.Errorf("advance to %d: %w", wm, err)
		}
		c.pos += int64(n)
		c.maxWM = max(c.maxWM, wm)
		c.acknowledge()
	}
	return nil
}

// read reads and decodes the entry at byte off of the open segment.
func (c *consumer) read(off int64) (kind byte, payload []byte, n int, err error) {
	var hdr [entryHeaderLen]byte
	if _, err := c.file.ReadAt(hdr[:], off); err != nil {
		return 0, nil, 0, fmt.Errorf("%w: entry header at byte %d: %w", errCorrupt, off, err)
	}
	size := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16 | int(hdr[3])<<24
	if size <= 0 || size > maxEntryBody {
		return 0, nil, 0, fmt.Errorf("%w: body length %d at byte %d", errCorrupt, size, off)
	}
	if cap(c.buf) < entryHeaderLen+size {
		c.buf = make([]byte, entryHeaderLen+size)
	}
	b := c.buf[:entryHeaderLen+size]
	if _, err := c.file.ReadAt(b, off); err != nil {
		return 0, nil, 0, fmt.Errorf("%w: entry at byte %d: %w", errCorrupt, off, err)
	}
	kind, payload, n, err = decodeEntry(b)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("entry at byte %d: %w", off, err)
	}
	return kind, payload, n, nil
}

func (c *consumer) corrupt(seg segment, err error) error {
	return &corruptSegment{seg: seg, err: err}
}

// acknowledge persists how far the destination has everything durable
// after a successful Advance.
func (c *consumer) acknowledge() {
	a := ackState{Offset: c.pos, Bound: minInt64, Upto: c.pos}
	if c.s.cfg.Durable != nil {
		a.Bound = c.s.cfg.Durable(c.maxWM)
		i := 0
		for i < len(c.pending) && c.pending[i].maxEnd < a.Bound {
			i++
		}
		if i < len(c.pending) {
			a.Offset = c.pending[i].off
		}
		c.pending = append(c.pending[:0], c.pending[i:]...)
	} else {
		c.pending = c.pending[:0]
	}
	c.attempt = 0
	c.commit(a, false)
}

// commit persists a and lets the spool delete what it covers.
func (c *consumer) commit(a ackState, sync bool) {
	if a == c.ack && !sync {
		return
	}
	if err := c.s.acks.write(a, sync); err != nil {
		c.s.report(err)
		return
	}
	c.ack = a
	c.s.acknowledged(a.Offset)
}

// finish completes Close: everything is delivered, so the destination
// publishes what it still holds, the whole spool is acknowledged and the
// destination is closed.
//
// SKIPDATA records still waiting in memory for space in the spool are
// written to the destination directly: nothing comes after them.
func (c *consumer) finish(end int64) (done bool, err error) {
	skips := c.s.pendingSkips()
	if len(skips) > 0 {
		if err := c.dest.Write(skips); err != nil {
			return false, fmt.Errorf("write %d SKIPDATA records: %w", len(skips), err)
		}
	}
	if err := c.dest.Advance(math.MaxInt64); err != nil {
		return false, fmt.Errorf("flush destination: %w", err)
	}
	c.s.skipsDelivered(len(skips))
	c.pending = c.pending[:0]
	c.commit(ackState{Offset: end, Bound: minInt64, Upto: end}, true)
	if now, _ := c.s.committed(); now > end {
		// The space acknowledged let waiting SKIPDATA records into the
		// spool: deliver them first.
		return false, nil
	}
	err = c.dest.Close()
	c.s.mu.Lock()
	c.s.destClosed = true
	c.s.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("close destination: %w", err)
	}
	c.s.closed <- err
	return true, nil
}

// failed handles a failed delivery: a corrupt segment is quarantined; any
// other error is reported and retried after a backoff. Either way the
// destination drops what it holds undelivered (Resetter) and delivery
// starts again at the acknowledged offset.
func (c *consumer) failed(ctx context.Context, err error) {
	if r, ok := c.dest.(Resetter); ok {
		if rerr := r.Reset(); rerr != nil {
			c.s.report(fmt.Errorf("reset destination: %w", rerr))
		}
	}
	var cs *corruptSegment
	if errors.As(err, &cs) {
		c.closeFile()
		c.s.quarantineRunning(cs.seg, c.ack)
	} else {
		wait := backoff(c.s.cfg.Retry, c.attempt)
		c.attempt++
		c.s.retrying(fmt.Errorf("deliver from spool %s: %w (attempt %d, next in %v)", c.s.cfg.Dir, err, c.attempt, wait.Round(time.Millisecond)))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	c.pos = c.ack.Offset
	c.pending = c.pending[:0]
	c.format = nil
}

func (c *consumer) closeFile() {
	if c.file != nil {
		c.file.Close()
		c.file = nil
		c.format = nil
	}
}

// backoff is the wait before retry number attempt+1: Initial doubled per
// attempt up to Max, drawn uniformly from its upper half.
func backoff(r Retry, attempt int) time.Duration {
	d := r.Max
	if attempt < 32 {
		d = min(r.Max, r.Initial<<attempt)
		if d <= 0 {
			d = r.Max
		}
	}
	return d/2 + rand.N(d/2+1)
}

// delivered counts records handed to the destination.
func (s *Spool) delivered(n int) {
	s.mu.Lock()
	s.stats.DeliveredRecords += uint64(n)
	s.mu.Unlock()
}

// retrying counts and reports a failed delivery attempt.
func (s *Spool) retrying(err error) {
	s.mu.Lock()
	s.stats.Retries++
	s.reportLocked(err)
	s.mu.Unlock()
}

// report records a problem from the delivery goroutine.
func (s *Spool) report(err error) {
	s.mu.Lock()
	s.reportLocked(err)
	s.mu.Unlock()
}
