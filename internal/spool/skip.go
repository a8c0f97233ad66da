package spool

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/flowlog/flowlog/flow"
)

// maxSkipWindows bounds the (interface, window) pairs of dropped batches
// held in memory while not even their SKIPDATA records can be spooled
// (the disk is full). Past it, further windows of an interface widen one
// SKIPDATA record per interface that spans them all, so memory stays
// bounded by the number of interfaces however long the outage.
const maxSkipWindows = 1 << 14

// skipKey is one interface of one account.
type skipKey struct {
	account, iface string
}

// skipWindow is one aggregation window of one interface.
type skipWindow struct {
	skipKey
	window int64
}

// skipSpan is the windows of an interface merged once maxSkipWindows was
// reached: [first, last] window starts.
type skipSpan struct {
	version     uint8
	first, last int64
}

// skipSet gathers the interfaces and windows of dropped batches until
// their SKIPDATA records are spooled.
type skipSet struct {
	windows map[skipWindow]uint8 // → record version
	wide    map[skipKey]skipSpan
}

func (k *skipSet) empty() bool { return len(k.windows) == 0 && len(k.wide) == 0 }

// add notes the interface and window of every record in recs.
func (k *skipSet) add(recs []flow.Record, interval int64) {
	if k.windows == nil {
		k.windows = make(map[skipWindow]uint8)
		k.wide = make(map[skipKey]skipSpan)
	}
	for i := range recs {
		r := &recs[i]
		w := skipWindow{skipKey{r.AccountID, r.InterfaceID}, floorDiv(r.Start, interval) * interval}
		if _, ok := k.windows[w]; ok {
			continue
		}
		if sp, ok := k.wide[w.skipKey]; ok {
			sp.first, sp.last = min(sp.first, w.window), max(sp.last, w.window)
			k.wide[w.skipKey] = sp
			continue
		}
		if len(k.windows) < maxSkipWindows {
			k.windows[w] = r.Version
			continue
		}
		k.wide[w.skipKey] = skipSpan{version: r.Version, first: w.window, last: w.window}
	}
}

// records returns the SKIPDATA records of the set, ordered by start and
// interface like a window's batch.
func (k *skipSet) records(interval int64) []flow.Record {
	recs := make([]flow.Record, 0, len(k.windows)+len(k.wide))
	for w, v := range k.windows {
		recs = append(recs, skipRecord(v, w.skipKey, w.window, w.window+interval))
	}
	for key, sp := range k.wide {
		recs = append(recs, skipRecord(sp.version, key, sp.first, sp.last+interval))
	}
	slices.SortFunc(recs, func(a, b flow.Record) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.InterfaceID, b.InterfaceID), cmp.Compare(a.AccountID, b.AccountID), cmp.Compare(a.End, b.End))
	})
	return recs
}

func (k *skipSet) clear() {
	clear(k.windows)
	clear(k.wide)
}

// skipFields are the fields of a SKIPDATA record (spec §2).
const skipFields = flow.FieldSet(0) |
	1<<flow.FieldVersion | 1<<flow.FieldAccountID | 1<<flow.FieldInterfaceID |
	1<<flow.FieldStart | 1<<flow.FieldEnd | 1<<flow.FieldLogStatus

func skipRecord(version uint8, key skipKey, start, end int64) flow.Record {
	present := skipFields
	if key.account == "" {
		present = present.Without(flow.FieldAccountID)
	}
	if key.iface == "" {
		present = present.Without(flow.FieldInterfaceID)
	}
	if version == 0 {
		present = present.Without(flow.FieldVersion)
	}
	return flow.Record{
		Present:     present,
		Version:     version,
		AccountID:   key.account,
		InterfaceID: key.iface,
		Start:       start,
		End:         end,
		LogStatus:   flow.LogStatusSkipData,
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// dropLocked drops a batch that could not be spooled: its interfaces and
// windows become SKIPDATA records, spooled now if they fit.
func (s *Spool) dropLocked(recs []flow.Record, cause error) {
	s.stats.DroppedBatches++
	s.stats.DroppedRecords += uint64(len(recs))
	s.skips.add(recs, s.cfg.Interval)
	s.reportLocked(fmt.Errorf("drop batch of %d records: %w (reported as SKIPDATA)", len(recs), cause))
	s.flushSkipsLocked()
}

// flushSkipsLocked spools the pending SKIPDATA records, which may use the
// reserve of the spool; if they do not fit either, they wait in memory
// for the next attempt.
func (s *Spool) flushSkipsLocked() {
	if s.skips.empty() {
		return
	}
	recs := s.skips.records(s.cfg.Interval)
	b := appendRecordEntries(nil, spoolFormat(), recs)
	if err := s.appendLocked(b, s.cfg.MaxBytes); err != nil {
		return
	}
	s.skips.clear()
	s.wrote = true
	s.stats.SkipDataRecords += uint64(len(recs))
	s.stats.SpooledRecords += uint64(len(recs))
}

// pendingSkips returns the SKIPDATA records waiting in memory, once
// spooling them was tried again; they stay pending until skipsDelivered.
func (s *Spool) pendingSkips() []flow.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushSkipsLocked()
	if s.skips.empty() {
		return nil
	}
	return s.skips.records(s.cfg.Interval)
}

// skipsDelivered clears the n pending SKIPDATA records delivery wrote to
// the destination directly.
func (s *Spool) skipsDelivered(n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skips.clear()
	s.stats.SkipDataRecords += uint64(n)
}
