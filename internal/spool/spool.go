package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/flowlog/flowlog/flow"
)

// Sink is a destination: the pipeline's Sink interface (Write one closed
// window's records, Advance the watermark, Close), which Spool both
// implements and wraps.
//
// A destination wrapped in a Spool must keep nothing it could not deliver
// once Write or Advance returned an error, or implement Resetter: the spool
// delivers the unacknowledged records again after every failure.
type Sink interface {
	Write(recs []flow.Record) error
	Advance(watermark int64) error
	Close() error
}

// Resetter is implemented by destinations that hold records between
// Advance calls (open objects, batches not yet sent). Reset drops every
// record written since the last Advance that succeeded, undelivered; the
// spool calls it after a failed Write or Advance, before delivering the
// same records again, so a retry does not put records twice into one
// object or batch.
type Resetter interface {
	Reset() error
}

// Aborter is implemented by destinations whose Write or Advance can wait
// long for a remote service. When delivery ends (the context given to
// Start ends, or Stop), the spool calls Abort from another goroutine so
// that a call in progress returns soon (with an error) instead of after
// the destination's timeouts; the destination is then only closed.
type Aborter interface {
	Abort()
}

// ErrNotStarted is returned by Write, Advance and Close before Start or
// after Stop.
var ErrNotStarted = errors.New("spool not started")

const minInt64 = math.MinInt64

// Spool is a durable, bounded spool in front of a destination Sink; see
// the package documentation. Write, Advance and Close are called by one
// producer (the pipeline) in order; Stats and Stop may be called from any
// goroutine.
type Spool struct {
	cfg  Config
	dest Sink

	mu       sync.Mutex
	state    int
	segs     []segment // by base; the last is the active one while started
	active   *os.File
	end      int64 // offset after the last complete entry
	disk     int64 // bytes of the segment files
	ackOff   int64 // the consumer's acknowledged offset
	buf      []byte
	skips    skipSet
	lastWM   int64 // watermark of the last advance entry
	wrote    bool  // records spooled since that entry
	unsynced bool
	diskFull bool
	stats    Stats
	lock     *os.File
	acks     *ackLog

	wake   chan struct{} // new entries or closing; capacity 1
	cancel context.CancelFunc
	done   chan struct{} // closed when the delivery goroutine ends
	closed chan error    // the result of Close's drain; capacity 1
	// destClosed is set by the delivery goroutine once it closed dest.
	destClosed bool
}

const (
	stateNew = iota
	stateStarted
	stateClosing
	stateStopped
)

// segment is one segment file: the offsets [base, base+size).
type segment struct {
	base int64
	size int64
	path string
}

func (s segment) end() int64 { return s.base + s.size }

// Stats counts what a Spool did. Counters only grow; the gauges
// (SpooledBytes, BacklogBytes, DiskFull) describe the present.
type Stats struct {
	SpooledBatches   uint64 // Write calls whose records were spooled
	SpooledRecords   uint64 // records spooled (SKIPDATA records made by the spool included)
	DeliveredRecords uint64 // records handed to the destination, repeats after failures and restarts included
	AckedBytes       int64  // spool bytes the destination acknowledged since Start
	Retries          uint64 // delivery attempts that failed and were retried
	DroppedBatches   uint64 // batches dropped because the spool or the disk was full
	DroppedRecords   uint64 // records in them
	SkipDataRecords  uint64 // SKIPDATA records spooled for dropped batches
	Quarantined      uint64 // corrupt segments moved to quarantine/
	CorruptBytes     uint64 // bytes of corrupt entries lost with them
	TornBytes        uint64 // bytes of an entry cut off by a crash, truncated at Start
	SpooledBytes     int64  // bytes of segment files now
	BacklogBytes     int64  // bytes not yet acknowledged
	DiskFull         bool   // the last append failed for lack of space
	LastError        error  // the latest problem handled (nil if none)
}

// New returns a spool for cfg in front of dest; Start opens it.
func New(cfg Config, dest Sink) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dest == nil {
		return nil, errors.New("spool: no destination")
	}
	return &Spool{
		cfg:    cfg,
		dest:   dest,
		lastWM: minInt64,
		wake:   make(chan struct{}, 1),
		closed: make(chan error, 1),
		done:   make(chan struct{}),
	}, nil
}

// Start opens the spool directory, recovers what a previous run left
// (truncating an entry a crash cut off, quarantining corrupt segments),
// and starts delivering, first what the destination had not acknowledged.
// Delivery runs until ctx ends or Stop.
func (s *Spool) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("spool: started twice")
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create spool directory: %w", err)
	}
	lock, err := lockDir(s.cfg.Dir)
	if err != nil {
		return err
	}
	s.lock = lock
	ack, salvaged, err := s.recover()
	if err == nil {
		err = s.openSegment(max(ack.Offset, s.end))
	}
	if err != nil {
		s.acks.close()
		unlockDir(s.lock)
		s.closeActive()
		return err
	}
	s.ackOff = ack.Offset
	s.state = stateStarted
	for _, e := range salvaged {
		s.respool(e)
	}
	ctx, s.cancel = context.WithCancel(ctx)
	if a, ok := s.dest.(Aborter); ok {
		// When delivery ends (ctx, Stop), a call in progress must not
		// hold it up for the destination's timeouts.
		go func() {
			<-ctx.Done()
			a.Abort()
		}()
	}
	c := newConsumer(s, ack)
	go c.run(ctx)
	return nil
}

// Write spools one window's records. It returns once they are appended to
// the spool (and synced under SyncAlways): from then on they count as
// produced. A batch that does not fit is dropped whole and SKIPDATA
// records for its interfaces and windows take its place; that is not an
// error (Stats counts it, Config.OnError hears of it).
func (s *Spool) Write(recs []flow.Record) error {
	if len(recs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateStarted {
		return fmt.Errorf("write %d records: %w", len(recs), ErrNotStarted)
	}
	s.flushSkipsLocked()
	s.buf = appendRecordEntries(s.buf[:0], spoolFormat(), recs)
	if err := s.appendLocked(s.buf, s.cfg.MaxBytes-s.cfg.reserveBytes()); err != nil {
		s.dropLocked(recs, err)
		return nil
	}
	s.wrote = true
	s.stats.SpooledBatches++
	s.stats.SpooledRecords += uint64(len(recs))
	if s.cfg.Sync == SyncAlways {
		s.syncLocked()
	}
	return nil
}

// Advance spools the watermark: the destination gets Advance(watermark)
// after the records spooled before it. Under SyncAdvance the segment is
// synced first, so the window's records are on disk when Advance returns.
func (s *Spool) Advance(watermark int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateStarted {
		return fmt.Errorf("advance to %d: %w", watermark, ErrNotStarted)
	}
	s.flushSkipsLocked()
	if watermark <= s.lastWM && !s.wrote {
		return nil
	}
	s.buf = appendAdvanceEntry(s.buf[:0], watermark)
	// A watermark that cannot be spooled is not a loss: a later one (or
	// Close) supersedes it.
	if err := s.appendLocked(s.buf, s.cfg.MaxBytes); err != nil {
		s.reportLocked(err)
		return nil
	}
	s.lastWM, s.wrote = max(s.lastWM, watermark), false
	if s.cfg.Sync != SyncNone {
		s.syncLocked()
	}
	return nil
}

// Close waits until everything spooled is delivered and acknowledged,
// then closes the destination. While the destination fails it keeps
// retrying; it gives up when the context given to Start ends or Stop is
// called, and then the records stay in the spool for the next Start.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.state != stateStarted {
		s.mu.Unlock()
		return fmt.Errorf("close: %w", ErrNotStarted)
	}
	s.flushSkipsLocked()
	s.syncLocked()
	s.state = stateClosing
	s.mu.Unlock()
	s.signal()
	select {
	case err := <-s.closed:
		return err
	case <-s.done:
		select {
		case err := <-s.closed:
			return err
		default:
		}
		st := s.Stats()
		return fmt.Errorf("close spool %s: stopped with %d bytes not delivered; they are delivered after the next start", s.cfg.Dir, st.BacklogBytes)
	}
}

// Stop ends delivery and closes the spool's files. Records not yet
// acknowledged stay in the spool for the next Start. A delivery in
// progress is interrupted (Aborter) or waited for. If Close did not close
// the destination, Stop resets (Resetter) and closes it. Stop may be
// called more than once.
func (s *Spool) Stop() {
	s.mu.Lock()
	if s.state == stateNew || s.state == stateStopped {
		s.state = stateStopped
		s.mu.Unlock()
		return
	}
	s.state = stateStopped
	s.mu.Unlock()
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncLocked()
	s.closeActive()
	s.acks.close()
	unlockDir(s.lock)
	if !s.destClosed {
		if r, ok := s.dest.(Resetter); ok {
			_ = r.Reset()
		}
		_ = s.dest.Close()
		s.destClosed = true
	}
}

// Stats returns what the spool did so far.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.SpooledBytes = s.disk
	st.BacklogBytes = s.end - s.ackOff
	if st.BacklogBytes < 0 {
		st.BacklogBytes = 0
	}
	st.DiskFull = s.diskFull
	return st
}

// signal wakes the delivery goroutine.
func (s *Spool) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// reportLocked records err as the latest problem and tells OnError.
func (s *Spool) reportLocked(err error) {
	s.stats.LastError = err
	if s.cfg.OnError != nil {
		s.cfg.OnError(err)
	}
}

// errSpoolFull is why a batch is dropped when MaxBytes is reached.
var errSpoolFull = errors.New("spool full")

// appendLocked appends the complete entries in b to the active segment if
// the segment files stay within limit, starting a new segment first when
// the active one would pass SegmentBytes. On a write error the segment is
// truncated back, so it never holds part of an entry.
func (s *Spool) appendLocked(b []byte, limit int64) error {
	need := int64(len(b))
	if s.needsSegment(need) {
		need += headerEntrySize()
	}
	if s.disk+need > limit {
		s.reclaimLocked()
		need = int64(len(b))
		if s.needsSegment(need) {
			need += headerEntrySize()
		}
		if s.disk+need > limit {
			return fmt.Errorf("%w: %d of %d bytes used (spool.max_bytes), %d more needed", errSpoolFull, s.disk, s.cfg.MaxBytes, need)
		}
	}
	if s.active == nil {
		// An earlier roll failed (disk full): try again.
		if err := s.openSegment(s.end); err != nil {
			return err
		}
	} else if s.needsSegment(int64(len(b))) {
		if err := s.rollLocked(); err != nil {
			return err
		}
	}
	act := &s.segs[len(s.segs)-1]
	n, err := s.active.Write(b)
	if err != nil {
		if n > 0 {
			if terr := s.active.Truncate(act.size); terr != nil {
				// The segment now ends in part of an entry; Start will
				// truncate it. Appending after it would bury it, so start a
				// new segment.
				s.closeActive()
			} else if _, serr := s.active.Seek(act.size, 0); serr != nil {
				s.closeActive()
			}
		}
		return s.appendErr(err)
	}
	if s.diskFull {
		s.diskFull = false
	}
	act.size += int64(n)
	s.disk += int64(n)
	s.end += int64(n)
	s.unsynced = true
	s.signal()
	return nil
}

// needsSegment reports whether appending n bytes starts a new segment:
// there is no active one, or n would take it past SegmentBytes (a segment
// holds at least one entry after its header).
func (s *Spool) needsSegment(n int64) bool {
	if s.active == nil {
		return true
	}
	act := s.segs[len(s.segs)-1]
	return act.size+n > s.cfg.segmentBytes() && act.size > headerEntrySize()
}

// appendErr wraps an append error, noting a full disk.
func (s *Spool) appendErr(err error) error {
	if isNoSpace(err) {
		s.diskFull = true
		return fmt.Errorf("append to spool %s: disk full: %w", s.cfg.Dir, err)
	}
	return fmt.Errorf("append to spool %s: %w", s.cfg.Dir, err)
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// headerEntrySize is the size of a segment's header entry.
func headerEntrySize() int64 { return hdrSize() }

var hdrSize = sync.OnceValue(func() int64 { return int64(len(appendHeaderEntry(nil, spoolFormat()))) })

// reclaimLocked frees space when the active segment is fully
// acknowledged: it starts a new segment and deletes the old one.
func (s *Spool) reclaimLocked() {
	if s.active == nil || s.ackOff < s.end || len(s.segs) == 0 {
		return
	}
	if s.segs[len(s.segs)-1].size <= headerEntrySize() {
		return
	}
	if err := s.rollLocked(); err != nil {
		return
	}
	s.deleteAckedLocked()
}

// rollLocked closes the active segment and starts the next one.
func (s *Spool) rollLocked() error {
	if s.unsynced && s.cfg.Sync != SyncNone {
		s.syncLocked()
	}
	s.closeActive()
	return s.openSegment(s.end)
}

// openSegment creates the segment starting at offset base and makes it
// the active one.
func (s *Spool) openSegment(base int64) error {
	path := filepath.Join(s.cfg.Dir, segmentName(base))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s.appendErr(fmt.Errorf("create segment: %w", err))
	}
	hdr := appendHeaderEntry(nil, spoolFormat())
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		os.Remove(path)
		return s.appendErr(fmt.Errorf("create segment %s: %w", path, err))
	}
	// The new name must survive a crash along with what gets appended.
	if s.cfg.Sync != SyncNone {
		if err := syncDir(s.cfg.Dir); err != nil {
			f.Close()
			os.Remove(path)
			return s.appendErr(err)
		}
	}
	s.active = f
	s.segs = append(s.segs, segment{base: base, size: int64(len(hdr)), path: path})
	s.end = base + int64(len(hdr))
	s.disk += int64(len(hdr))
	s.unsynced = true
	return nil
}

func (s *Spool) closeActive() {
	if s.active != nil {
		s.active.Close()
		s.active = nil
	}
}

// syncLocked makes the active segment durable.
func (s *Spool) syncLocked() {
	if !s.unsynced || s.active == nil {
		return
	}
	if err := s.active.Sync(); err != nil {
		s.reportLocked(s.appendErr(fmt.Errorf("sync segment: %w", err)))
		return
	}
	s.unsynced = false
}

// acknowledged records that the destination acknowledged everything
// before offset and deletes the segments wholly before it.
func (s *Spool) acknowledged(offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset > s.ackOff {
		s.stats.AckedBytes += offset - s.ackOff
		s.ackOff = offset
	}
	s.deleteAckedLocked()
	// Space may have come back for the SKIPDATA records waiting in memory;
	// after Close the producer no longer comes by to spool them.
	if s.state == stateStarted || s.state == stateClosing {
		s.flushSkipsLocked()
	}
}

// deleteAckedLocked deletes acknowledged segments other than the active one.
func (s *Spool) deleteAckedLocked() {
	n := 0
	for n < len(s.segs) && s.segs[n].end() <= s.ackOff && !(s.active != nil && n == len(s.segs)-1) {
		if err := os.Remove(s.segs[n].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.reportLocked(fmt.Errorf("delete acknowledged segment: %w", err))
			break
		}
		s.disk -= s.segs[n].size
		n++
	}
	s.segs = slices.Delete(s.segs, 0, n)
}

// segmentAt returns the segment holding offset pos, or else the first
// segment after pos (a quarantined segment leaves a gap), and whether
// there is one.
func (s *Spool) segmentAt(pos int64) (segment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		if pos < seg.end() {
			return seg, true
		}
	}
	return segment{}, false
}

// committed returns the end of the complete entries and whether Close is
// waiting for them to be delivered.
func (s *Spool) committed() (end int64, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end, s.state == stateClosing
}

func segmentName(base int64) string {
	return fmt.Sprintf("%020d%s", base, segmentSuffix)
}

// SegmentBytes sums the segment files in the spool directory dir without
// opening the spool (another process may hold it): what a spool left on
// disk, for a caller that has not opened it yet.
func SegmentBytes(dir string) (bytes int64, segments int) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, de := range des {
		if _, ok := parseSegmentName(de.Name()); !ok || !de.Type().IsRegular() {
			continue
		}
		if fi, err := de.Info(); err == nil {
			bytes += fi.Size()
			segments++
		}
	}
	return bytes, segments
}

// parseSegmentName returns the base offset a segment file name holds.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync spool directory: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync spool directory: %w", err)
	}
	return nil
}
