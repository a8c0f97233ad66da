package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// quarantineDir is the subdirectory corrupt segments are moved to. Its
// files do not count toward MaxBytes; they are kept for inspection and
// may be deleted.
const quarantineDir = "quarantine"

// CorruptError reports a corrupt segment: where the first corrupt entry
// starts, how many bytes could not be read, and where the file was moved.
// The intact entries of the segment that were not yet acknowledged are
// spooled again.
type CorruptError struct {
	Segment     string // the segment's path in the spool
	Quarantined string // its path in quarantine/ ("" if moving it failed)
	Offset      int64  // byte offset in the file of the first corrupt entry
	LostBytes   int64  // bytes of corrupt entries
	Err         error  // the first decoding error
}

func (e *CorruptError) Error() string {
	where := "moved to " + e.Quarantined
	if e.Quarantined == "" {
		where = "could not be moved aside"
	}
	return fmt.Sprintf("spool segment %s is corrupt at byte %d (%d bytes unreadable, the rest spooled again; %s): %v", e.Segment, e.Offset, e.LostBytes, where, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// ErrCorrupt is matched (errors.Is) by the errors of corrupt segments and
// ack state.
var ErrCorrupt = errCorrupt

// scanned is a segment file decoded as far as it goes.
type scanned struct {
	entries []scannedEntry
	corrupt []span // byte ranges that are not entries
	torn    int64  // offset of an entry cut off at the end of the file, or -1
	first   error  // the first decoding error
}

type scannedEntry struct {
	off     int64
	kind    byte
	payload []byte
	size    int64
}

type span struct{ from, to int64 }

// scanSegment decodes every entry of a segment file. Bytes that do not
// decode are skipped up to the next valid entry; an incomplete entry with
// no valid entry after it is a torn tail.
func scanSegment(b []byte) scanned {
	sc := scanned{torn: -1}
	for p := 0; p < len(b); {
		kind, payload, n, err := decodeEntry(b[p:])
		if err == nil {
			sc.entries = append(sc.entries, scannedEntry{off: int64(p), kind: kind, payload: payload, size: int64(n)})
			p += n
			continue
		}
		q := resync(b, p)
		if q < 0 && errors.Is(err, errIncomplete) {
			sc.torn = int64(p)
			break
		}
		if sc.first == nil {
			sc.first = fmt.Errorf("at byte %d: %w", p, err)
		}
		if q < 0 {
			sc.corrupt = append(sc.corrupt, span{int64(p), int64(len(b))})
			break
		}
		sc.corrupt = append(sc.corrupt, span{int64(p), int64(q)})
		p = q
	}
	return sc
}

// format returns the record format of a scanned segment: its header's, or
// when the header is lost, the one this version writes (most likely what
// wrote it; lines that do not parse are reported).
func (sc *scanned) format() *flow.Format {
	if len(sc.entries) > 0 && sc.entries[0].off == 0 && sc.entries[0].kind == kindHeader {
		if f, err := headerFormat(sc.entries[0].payload); err == nil {
			return f
		}
	}
	return spoolFormat()
}

func (sc *scanned) lostBytes() int64 {
	var n int64
	for _, c := range sc.corrupt {
		n += c.to - c.from
	}
	return n
}

// salvaged is an intact entry of a quarantined segment, to spool again.
type salvaged struct {
	recs      []flow.Record // nil for a watermark
	watermark int64
}

// recover reads the ack state and the segments the previous run left:
// it deletes acknowledged segments, truncates an entry a crash cut off,
// quarantines corrupt segments and returns their intact entries.
func (s *Spool) recover() (ackState, []salvaged, error) {
	acks, ack, err := openAck(s.cfg.Dir)
	if acks == nil {
		return ack, nil, err
	}
	s.acks = acks
	if err != nil {
		// Without the ack state everything still in the spool is delivered
		// again: duplicates, not loss.
		s.reportLocked(err)
	}
	des, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return ack, nil, fmt.Errorf("read spool directory: %w", err)
	}
	var segs []segment
	for _, de := range des {
		if base, ok := parseSegmentName(de.Name()); ok && de.Type().IsRegular() {
			segs = append(segs, segment{base: base, path: filepath.Join(s.cfg.Dir, de.Name())})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int { return int(min(max(a.base-b.base, -1), 1)) })
	var salvage []salvaged
	for i := range segs {
		seg := &segs[i]
		b, err := os.ReadFile(seg.path)
		if err != nil {
			return ack, nil, fmt.Errorf("read spool segment: %w", err)
		}
		seg.size = int64(len(b))
		if seg.end() <= ack.Offset {
			if err := os.Remove(seg.path); err != nil {
				return ack, nil, fmt.Errorf("delete acknowledged segment: %w", err)
			}
			seg.path = ""
			continue
		}
		sc := scanSegment(b)
		if sc.torn >= 0 && len(sc.corrupt) == 0 && i == len(segs)-1 {
			// The last append of a crashed process, cut short: it never
			// counted as spooled. Drop it and keep the rest.
			s.stats.TornBytes += uint64(seg.size - sc.torn)
			if err := s.truncateTorn(seg, sc.torn); err != nil {
				return ack, nil, err
			}
			if seg.path == "" {
				continue
			}
			sc.torn = -1
		}
		if sc.torn < 0 && len(sc.corrupt) == 0 && len(sc.entries) > 0 && sc.entries[0].kind == kindHeader {
			continue
		}
		salvage = append(salvage, s.quarantine(seg, &sc, ack)...)
		seg.path = ""
	}
	segs = slices.DeleteFunc(segs, func(seg segment) bool { return seg.path == "" })
	s.segs = segs
	s.disk = 0
	for _, seg := range segs {
		s.disk += seg.size
	}
	if len(segs) > 0 {
		s.end = segs[len(segs)-1].end()
	}
	return ack, salvage, nil
}

// truncateTorn cuts a segment file back to its last complete entry, or
// deletes it when not even its header is complete.
func (s *Spool) truncateTorn(seg *segment, at int64) error {
	if at == 0 {
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("delete torn segment: %w", err)
		}
		seg.path = ""
		return nil
	}
	if err := os.Truncate(seg.path, at); err != nil {
		return fmt.Errorf("truncate torn entry of segment: %w", err)
	}
	s.reportLocked(fmt.Errorf("spool segment %s ended in an entry cut off by a crash: truncated %d bytes (they had not been spooled)", seg.path, seg.size-at))
	seg.size = at
	return nil
}

// quarantine moves a corrupt segment to quarantine/, reports it and
// returns its intact entries that the ack state does not cover.
func (s *Spool) quarantine(seg *segment, sc *scanned, ack ackState) []salvaged {
	cerr := &CorruptError{Segment: seg.path, Err: sc.first, LostBytes: sc.lostBytes()}
	switch {
	case len(sc.corrupt) > 0:
		cerr.Offset = sc.corrupt[0].from
	case sc.torn >= 0:
		cerr.Offset, cerr.LostBytes = sc.torn, seg.size-sc.torn
		cerr.Err = fmt.Errorf("%w: cut off at byte %d of a closed segment", errCorrupt, sc.torn)
	default:
		cerr.Err = fmt.Errorf("%w: no header entry", errCorrupt)
	}
	format := sc.format()
	var out []salvaged
	for _, e := range sc.entries {
		off := seg.base + e.off
		if off < ack.Offset {
			continue
		}
		switch e.kind {
		case kindAdvance:
			out = append(out, salvaged{watermark: advanceWatermark(e.payload)})
		case kindRecords:
			var keep func(*flow.Record) bool
			if off < ack.Upto {
				keep = func(r *flow.Record) bool { return r.End >= ack.Bound }
			}
			recs, err := parseRecords(format, e.payload, nil, keep)
			if err != nil {
				cerr.LostBytes += e.size
				if cerr.Err == nil {
					cerr.Err = err
				}
			}
			if len(recs) > 0 {
				out = append(out, salvaged{recs: recs})
			}
		}
	}
	dir := filepath.Join(s.cfg.Dir, quarantineDir)
	dst := filepath.Join(dir, fmt.Sprintf("%s.%s", filepath.Base(seg.path), time.Now().UTC().Format("20060102T150405.000000000Z")))
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.Rename(seg.path, dst)
	}
	if err == nil {
		cerr.Quarantined = dst
	} else if !errors.Is(err, fs.ErrNotExist) {
		// Moving it failed: delete it rather than read it again.
		os.Remove(seg.path)
	}
	s.stats.Quarantined++
	s.stats.CorruptBytes += uint64(cerr.LostBytes)
	s.reportLocked(cerr)
	return out
}

// respool appends a salvaged entry at the end of the spool.
func (s *Spool) respool(e salvaged) {
	if e.recs == nil {
		s.buf = appendAdvanceEntry(s.buf[:0], e.watermark)
		if err := s.appendLocked(s.buf, s.cfg.MaxBytes); err == nil {
			s.lastWM = max(s.lastWM, e.watermark)
		}
		return
	}
	s.buf = appendRecordEntries(s.buf[:0], spoolFormat(), e.recs)
	if err := s.appendLocked(s.buf, s.cfg.MaxBytes-s.cfg.reserveBytes()); err != nil {
		s.dropLocked(e.recs, err)
		return
	}
	s.wrote = true
	s.stats.SpooledRecords += uint64(len(e.recs))
}

// quarantineRunning quarantines a segment found corrupt while delivering
// and spools its unacknowledged intact entries again.
func (s *Spool) quarantineRunning(seg segment, ack ackState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.segs, func(x segment) bool { return x.base == seg.base })
	if i < 0 {
		return
	}
	if s.active != nil && i == len(s.segs)-1 {
		if err := s.rollLocked(); err != nil {
			s.reportLocked(err)
			return
		}
	}
	seg = s.segs[i]
	b, err := os.ReadFile(seg.path)
	if err != nil {
		s.reportLocked(fmt.Errorf("read corrupt spool segment: %w", err))
		return
	}
	sc := scanSegment(b)
	salvage := s.quarantine(&seg, &sc, ack)
	s.segs = slices.Delete(s.segs, i, i+1)
	s.disk -= seg.size
	for _, e := range salvage {
		s.respool(e)
	}
	s.signal()
}
