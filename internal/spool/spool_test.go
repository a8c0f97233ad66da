package spool

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink"
)

// produce writes windows [first, first+n) of 60 s with an Advance after
// each, like the pipeline, and returns every record line.
func produce(t testing.TB, s *Spool, first int64, n, perWindow int) []string {
	t.Helper()
	var all []string
	for w := first; w < first+int64(n)*60; w += 60 {
		recs := window(uint64(w), w, 60, perWindow, 4)
		if err := s.Write(recs); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := s.Advance(w + 60); err != nil {
			t.Fatalf("Advance: %v", err)
		}
		all = append(all, lines(recs)...)
	}
	return all
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDeliversInOrder: with a healthy destination every record arrives
// once, in the order written, with the watermarks, and Close leaves an
// empty spool.
func TestDeliversInOrder(t *testing.T) {
	dir := t.TempDir()
	dest := newStreamSink()
	s := startSpool(t, testConfig(dir), dest)
	want := produce(t, s, t0, 30, 50)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := dest.got(); !slices.Equal(got, want) {
		t.Fatalf("delivered %d lines, want %d in order", len(got), len(want))
	}
	if !dest.closed {
		t.Error("destination not closed")
	}
	if n := len(dest.advances); n != 31 || dest.advances[0] != t0+60 || dest.advances[30] != 1<<63-1 {
		t.Errorf("advances %v, want every window's end then the final flush", dest.advances)
	}
	st := s.Stats()
	if st.SpooledRecords != uint64(len(want)) || st.DeliveredRecords != uint64(len(want)) || st.BacklogBytes != 0 || st.Retries != 0 || st.LastError != nil {
		t.Errorf("Stats %+v", st)
	}
	s.Stop()
	// A second start finds nothing to deliver.
	dest2 := newStreamSink()
	s2 := startSpool(t, testConfig(dir), dest2)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dest2.got(); len(got) != 0 {
		t.Errorf("restart delivered %d lines again", len(got))
	}
	if st := s2.Stats(); st.SpooledBytes > 2*headerEntrySize() {
		t.Errorf("spool holds %d bytes after everything was acknowledged", st.SpooledBytes)
	}
}

// TestDestinationDownThenBack: while the destination fails, records wait
// in the spool and delivery is retried with backoff; once it is back,
// everything arrives, each record at least once and repeated only if its
// window was not acknowledged.
func TestDestinationDownThenBack(t *testing.T) {
	for _, inWrite := range []bool{false, true} {
		name := "advance fails"
		if inWrite {
			name = "write fails"
		}
		t.Run(name, func(t *testing.T) {
			dest := newStreamSink()
			dest.writeErr = inWrite
			var errs errorLog
			cfg := testConfig(t.TempDir())
			cfg.OnError = errs.add
			s := startSpool(t, cfg, dest)
			want := produce(t, s, t0, 5, 20)
			waitFor(t, "the first windows", func() bool { return len(dest.got()) == len(want) })
			dest.setDown(true)
			want = append(want, produce(t, s, t0+300, 10, 20)...)
			waitFor(t, "failed attempts", func() bool { return dest.failureCount() >= 5 })
			if st := s.Stats(); st.BacklogBytes == 0 || st.Retries == 0 || !errors.Is(st.LastError, errDown) {
				t.Errorf("while down: Stats %+v", st)
			}
			dest.setDown(false)
			want = append(want, produce(t, s, t0+900, 5, 20)...)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got := dest.got()
			if !slices.Equal(got, want) {
				// The stream contract drops what failed, so nothing is
				// delivered twice here.
				t.Fatalf("delivered %d lines, want the %d written, once each, in order", len(got), len(want))
			}
			if len(errs.all()) == 0 {
				t.Error("OnError heard of no failure")
			}
		})
	}
}

// TestRestartReplays: records spooled but not acknowledged when the
// process stops are delivered by the next start, and only those.
func TestRestartReplays(t *testing.T) {
	dir := t.TempDir()
	dest := newStreamSink()
	s := startSpool(t, testConfig(dir), dest)
	first := produce(t, s, t0, 5, 30)
	waitFor(t, "the first windows", func() bool { return len(dest.got()) == len(first) })
	dest.setDown(true)
	pending := produce(t, s, t0+300, 5, 30)
	s.Stop()

	dest2 := newStreamSink()
	s2 := startSpool(t, testConfig(dir), dest2)
	more := produce(t, s2, t0+600, 2, 30)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := dest2.got(), append(pending, more...); !slices.Equal(got, want) {
		t.Fatalf("after restart delivered %d lines, want the %d not acknowledged then the %d new", len(got), len(pending), len(more))
	}
}

// TestObjectDestinationRestart: the directory destination behind a spool,
// stopped mid-stream (its open objects discarded, as by a crash) and
// started again, ends with exactly the objects of a run without the stop,
// byte for byte: the replay skips records in already published objects
// and refills the others identically, so the names match too.
func TestObjectDestinationRestart(t *testing.T) {
	layout := sink.Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-1234abcd"}
	newDir := func(root string) *sink.Dir {
		d, err := sink.NewDir(sink.DirConfig{Root: root, Layout: layout, Format: flow.DefaultFormat()})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg := func(dir string) Config {
		c := testConfig(dir)
		c.Durable = ObjectDurable
		return c
	}

	refRoot := t.TempDir()
	ref := startSpool(t, cfg(t.TempDir()), newDir(refRoot))
	produce(t, ref, t0, 23, 40)
	if err := ref.Close(); err != nil {
		t.Fatal(err)
	}

	root, dir := t.TempDir(), t.TempDir()
	d1 := newDir(root)
	s1 := startSpool(t, cfg(dir), d1)
	produce(t, s1, t0, 12, 40)
	waitFor(t, "two published objects", func() bool { return len(d1.Published()) >= 2 })
	s1.Stop()
	s2 := startSpool(t, cfg(dir), newDir(root))
	for w := int64(t0 + 12*60); w < t0+23*60; w += 60 {
		if err := s2.Write(window(uint64(w), w, 60, 40, 4)); err != nil {
			t.Fatal(err)
		}
		if err := s2.Advance(w + 60); err != nil {
			t.Fatal(err)
		}
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	got, want := files(t, root), files(t, refRoot)
	if !slices.Equal(got, want) {
		t.Fatalf("objects after restart:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, k := range want {
		a, _ := os.ReadFile(filepath.Join(root, k))
		b, _ := os.ReadFile(filepath.Join(refRoot, k))
		if string(a) != string(b) {
			t.Errorf("%s differs from the run without restart", k)
		}
	}
}

// files lists every file under root whose name does not start with '.'.
func files(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestOverflowBecomesSkipData: with the destination down and a small
// spool, batches that do not fit are dropped whole; SKIPDATA records for
// exactly their interfaces and windows are spooled and delivered with the
// rest, and Stats counts the loss.
func TestOverflowBecomesSkipData(t *testing.T) {
	dest := newStreamSink()
	var errs errorLog
	cfg := testConfig(t.TempDir())
	cfg.MaxBytes = MinMaxBytes
	cfg.OnError = errs.add
	dest.setDown(true)
	s := startSpool(t, cfg, dest)
	var kept []string
	dropped := map[string]bool{} // interface-id + window start
	for w := int64(t0); w < t0+40*60; w += 60 {
		recs := window(uint64(w), w, 60, 20, 3)
		before := s.Stats().DroppedBatches
		if err := s.Write(recs); err != nil {
			t.Fatal(err)
		}
		if s.Stats().DroppedBatches > before {
			for _, r := range recs {
				dropped[r.InterfaceID+" "+itoa(w)] = true
			}
		} else {
			kept = append(kept, lines(recs)...)
		}
		if err := s.Advance(w + 60); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.DroppedBatches == 0 || st.DroppedRecords != 20*st.DroppedBatches || st.SpooledBytes > cfg.MaxBytes {
		t.Fatalf("Stats %+v: want dropped batches, at most %d bytes", st, cfg.MaxBytes)
	}
	// The overflow is reported as it happens; LastError may since hold
	// the down destination's next retry error, which races with it.
	if !slices.ContainsFunc(errs.all(), func(err error) bool { return errors.Is(err, errSpoolFull) }) {
		t.Errorf("errors reported %v, want spool full among them (LastError %v)", errs.all(), st.LastError)
	}
	if st.LastError == nil {
		t.Error("LastError is nil while the destination is down and the spool overflowed")
	}
	dest.setDown(false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.SkipDataRecords != uint64(len(dropped)) {
		t.Errorf("Stats %+v, want %d SKIPDATA records", st, len(dropped))
	}
	var gotKept []string
	gotSkip := map[string]bool{}
	for _, l := range dest.got() {
		var r flow.Record
		if err := testFormat.ParseRecord([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.LogStatus != flow.LogStatusSkipData {
			gotKept = append(gotKept, l)
			continue
		}
		if r.End-r.Start != 60 || r.Version != 5 || r.AccountID != "123456789012" || r.Present != skipFields {
			t.Errorf("SKIPDATA record %q", l)
		}
		gotSkip[r.InterfaceID+" "+itoa(r.Start)] = true
	}
	if !slices.Equal(gotKept, kept) {
		t.Errorf("delivered %d records of kept batches, want %d", len(gotKept), len(kept))
	}
	if len(gotSkip) != len(dropped) {
		t.Errorf("SKIPDATA for %d interface windows, want %d", len(gotSkip), len(dropped))
	}
	for k := range dropped {
		if !gotSkip[k] {
			t.Errorf("no SKIPDATA for %s", k)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestSkipSetBounded: however many windows are lost while nothing can be
// spooled, the pending SKIPDATA set stays bounded and still names every
// interface and the whole span.
func TestSkipSetBounded(t *testing.T) {
	var k skipSet
	for w := int64(0); w < 3*maxSkipWindows; w++ {
		k.add([]flow.Record{{Version: 2, AccountID: "123456789012", InterfaceID: "eni-a", Start: w * 60}, {Version: 2, AccountID: "123456789012", InterfaceID: "eni-b", Start: w * 60}}, 60)
	}
	if n := len(k.windows) + len(k.wide); n > maxSkipWindows+2 {
		t.Fatalf("%d pending entries, want at most %d", n, maxSkipWindows+2)
	}
	recs := k.records(60)
	covered := map[string]int64{}
	for _, r := range recs {
		covered[r.InterfaceID] += (r.End - r.Start) / 60
		if r.LogStatus != flow.LogStatusSkipData {
			t.Fatalf("record %+v", r)
		}
	}
	for _, iface := range []string{"eni-a", "eni-b"} {
		if covered[iface] < 3*maxSkipWindows {
			t.Errorf("%s: SKIPDATA covers %d windows, want %d", iface, covered[iface], 3*maxSkipWindows)
		}
	}
}

// TestCorruptSegmentQuarantined: a flipped byte in a closed segment is
// found at the next start; the segment is moved to quarantine/ and
// reported with its offset, and every intact entry in it is still
// delivered: only the corrupt entry's records are lost.
func TestCorruptSegmentQuarantined(t *testing.T) {
	dir := t.TempDir()
	dest := newStreamSink()
	dest.setDown(true)
	cfg := testConfig(dir)
	cfg.SegmentBytes = 32 << 10
	s := startSpool(t, cfg, dest)
	var batches [][]string
	for w := int64(t0); w < t0+30*60; w += 60 {
		recs := window(uint64(w), w, 60, 25, 4)
		if err := s.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Advance(w + 60); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, lines(recs))
	}
	s.Stop()
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	victim := segs[1]
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	sc := scanSegment(b)
	hit := sc.entries[3] // a records entry
	if hit.kind != kindRecords {
		hit = sc.entries[4]
	}
	lost := map[string]bool{}
	recs, err := parseRecords(spoolFormat(), hit.payload, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines(recs) {
		lost[l] = true
	}
	b[hit.off+entryHeaderLen+40] ^= 0x20
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var errs errorLog
	cfg.OnError = errs.add
	dest2 := newStreamSink()
	s2 := startSpool(t, cfg, dest2)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	var cerr *CorruptError
	for _, e := range errs.all() {
		if errors.As(e, &cerr) {
			break
		}
	}
	if cerr == nil {
		t.Fatalf("no CorruptError reported; heard %v", errs.all())
	}
	if cerr.Segment != victim || cerr.Offset != hit.off || cerr.LostBytes != hit.size || !errors.Is(cerr, ErrCorrupt) {
		t.Errorf("CorruptError %+v, want segment %s at %d, %d bytes lost", cerr, victim, hit.off, hit.size)
	}
	if _, err := os.Stat(cerr.Quarantined); err != nil || filepath.Dir(cerr.Quarantined) != filepath.Join(dir, quarantineDir) {
		t.Errorf("quarantined file %q: %v", cerr.Quarantined, err)
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Errorf("corrupt segment still in the spool: %v", err)
	}
	got := counts(dest2.got())
	for _, batch := range batches {
		for _, l := range batch {
			if lost[l] {
				continue
			}
			if got[l] != 1 {
				t.Fatalf("record delivered %d times: %s", got[l], l)
			}
		}
	}
	if st := s2.Stats(); st.Quarantined != 1 || st.CorruptBytes != uint64(hit.size) {
		t.Errorf("Stats %+v", st)
	}
}

// TestCorruptWhileRunning: corruption that appears after Start (a bad
// disk) is found by delivery, quarantined, and the rest still arrives.
func TestCorruptWhileRunning(t *testing.T) {
	dir := t.TempDir()
	dest := newStreamSink()
	dest.setDown(true)
	cfg := testConfig(dir)
	cfg.SegmentBytes = 16 << 10
	var errs errorLog
	cfg.OnError = errs.add
	s := startSpool(t, cfg, dest)
	want := produce(t, s, t0, 20, 25)
	segs := segmentFiles(t, dir)
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	sc := scanSegment(b)
	hit := sc.entries[len(sc.entries)-2]
	// Flip the byte in place: rewriting the file would let delivery read
	// it half written.
	f, err := os.OpenFile(segs[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b[hit.off+entryHeaderLen+1] ^ 0x01}, hit.off+entryHeaderLen+1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dest.setDown(false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Quarantined != 1 {
		t.Fatalf("Stats %+v, want a quarantined segment", st)
	}
	got := counts(dest.got())
	missing := 0
	for _, l := range want {
		if got[l] == 0 {
			missing++
		}
	}
	if missing == 0 || missing > 25 {
		t.Errorf("%d records missing, want those of the one corrupt entry", missing)
	}
}

// TestTornTailTruncated: an entry cut off at the end of the last segment
// (a crash in the middle of an append) is dropped at start, without
// quarantine, and everything before it is delivered.
func TestTornTailTruncated(t *testing.T) {
	dir := t.TempDir()
	dest := newStreamSink()
	dest.setDown(true)
	s := startSpool(t, testConfig(dir), dest)
	want := produce(t, s, t0, 3, 10)
	s.Stop()
	segs := segmentFiles(t, dir)
	last := segs[len(segs)-1]
	torn := appendRecordEntries(nil, spoolFormat(), window(1, t0+600, 60, 10, 2))
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn[:len(torn)/2])
	f.Close()

	dest2 := newStreamSink()
	s2 := startSpool(t, testConfig(dir), dest2)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dest2.got(); !slices.Equal(got, want) {
		t.Errorf("delivered %d lines, want %d", len(got), len(want))
	}
	if st := s2.Stats(); st.Quarantined != 0 || st.TornBytes != uint64(len(torn)/2) {
		t.Errorf("Stats %+v, want %d torn bytes and no quarantine", st, len(torn)/2)
	}
}

// TestCloseGivesUpWhenStopped: Close waits while the destination is down
// and returns an error naming the backlog once the context ends; the
// records stay for the next start.
func TestCloseGivesUpWhenStopped(t *testing.T) {
	dir := t.TempDir()
	dest := newStreamSink()
	dest.setDown(true)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(testConfig(dir), dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	want := produce(t, s, t0, 3, 10)
	go func() {
		waitFor(t, "retries", func() bool { return dest.failureCount() > 3 })
		cancel()
	}()
	err = s.Close()
	if err == nil || !strings.Contains(err.Error(), "not delivered") {
		t.Fatalf("Close: %v, want an error about the backlog", err)
	}
	s.Stop()
	dest2 := newStreamSink()
	s2 := startSpool(t, testConfig(dir), dest2)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dest2.got(); !slices.Equal(got, want) {
		t.Errorf("next start delivered %d lines, want %d", len(got), len(want))
	}
}

func TestLockedDir(t *testing.T) {
	dir := t.TempDir()
	startSpool(t, testConfig(dir), newStreamSink())
	s, err := New(testConfig(dir), newStreamSink())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Start on one directory: %v", err)
	}
}

func TestNotStarted(t *testing.T) {
	s, err := New(testConfig(t.TempDir()), newStreamSink())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(window(1, t0, 60, 1, 1)); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Write before Start: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Close before Start: %v", err)
	}
	s.Stop()
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig("/var/spool/flowlog").Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for key, mut := range map[string]func(*Config){
		"spool.dir":           func(c *Config) { c.Dir = "" },
		"spool.max_bytes":     func(c *Config) { c.MaxBytes = 1000 },
		"spool.segment_bytes": func(c *Config) { c.SegmentBytes = 10 },
		"spool.sync":          func(c *Config) { c.Sync = "sometimes" },
		"spool.retry":         func(c *Config) { c.Retry.Max = 0 },
		"interval":            func(c *Config) { c.Interval = 300 },
	} {
		c := DefaultConfig("d")
		mut(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), key) {
			t.Errorf("%s: Validate() = %v, want an error naming it", key, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	r := Retry{Initial: 100e6, Max: 3e9}
	for attempt, want := range []int64{100e6, 200e6, 400e6, 800e6, 1600e6, 3e9, 3e9} {
		for range 50 {
			d := backoff(r, attempt)
			if int64(d) < want/2 || int64(d) > want {
				t.Fatalf("attempt %d: %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := backoff(r, 100); d > r.Max {
		t.Errorf("attempt 100: %v", d)
	}
}

// TestRandomFaultsAndRestarts drives a spool through random windows,
// destination outages and restarts (Stop without Close, as a crash leaves
// it), with segments small enough to roll often. In the end every record
// written was delivered at least once, and nothing else was.
func TestRandomFaultsAndRestarts(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 42))
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.SegmentBytes = 8 << 10
		dest := newStreamSink()
		s := startSpool(t, cfg, dest)
		var delivered []string // by destinations closed by a restart
		written := map[string]bool{}
		w := int64(t0)
		for range 200 {
			switch r := rng.IntN(20); {
			case r < 14:
				recs := window(uint64(w), w, 60, 1+rng.IntN(30), 3)
				if err := s.Write(recs); err != nil {
					t.Fatal(err)
				}
				for _, l := range lines(recs) {
					written[l] = true
				}
				if err := s.Advance(w + 60); err != nil {
					t.Fatal(err)
				}
				w += 60
			case r < 17:
				dest.setDown(rng.IntN(2) == 0)
			case r < 19:
				// A restart opens the destination anew.
				s.Stop()
				delivered = append(delivered, dest.got()...)
				down := dest.isDown()
				dest = newStreamSink()
				dest.setDown(down)
				s = startSpool(t, cfg, dest)
			default:
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
			}
		}
		dest.setDown(false)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		got := counts(append(delivered, dest.got()...))
		for l := range written {
			if got[l] == 0 {
				t.Fatalf("seed %d: record lost: %s", seed, l)
			}
		}
		for l := range got {
			if !written[l] {
				t.Fatalf("seed %d: delivered a record never written: %s", seed, l)
			}
		}
		if st := s.Stats(); st.DroppedBatches != 0 || st.Quarantined != 0 {
			t.Fatalf("seed %d: Stats %+v", seed, st)
		}
		s.Stop()
	}
}

// TestObjectDestinationRandomRestarts restarts a spool in front of the
// directory destination at random points (as a crash would: open objects
// discarded) and checks that the objects end up exactly those of a run
// without restarts, byte for byte: nothing lost, nothing twice.
func TestObjectDestinationRandomRestarts(t *testing.T) {
	layout := sink.Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-1234abcd"}
	newDir := func(root string) *sink.Dir {
		d, err := sink.NewDir(sink.DirConfig{Root: root, Layout: layout, Format: flow.DefaultFormat()})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	const windows = 40
	run := func(root string, restart func(i int) bool) {
		cfg := testConfig(t.TempDir())
		cfg.Durable = ObjectDurable
		cfg.SegmentBytes = 8 << 10
		s := startSpool(t, cfg, newDir(root))
		for i := range windows {
			w := int64(t0) + int64(i)*60
			if err := s.Write(window(uint64(w), w, 60, 25, 3)); err != nil {
				t.Fatal(err)
			}
			if err := s.Advance(w + 60); err != nil {
				t.Fatal(err)
			}
			if restart(i) {
				time.Sleep(time.Millisecond) // let delivery get somewhere
				s.Stop()
				s = startSpool(t, cfg, newDir(root))
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.Stop()
	}
	refRoot := t.TempDir()
	run(refRoot, func(int) bool { return false })
	want := files(t, refRoot)
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 7))
		root := t.TempDir()
		run(root, func(int) bool { return rng.IntN(4) == 0 })
		if got := files(t, root); !slices.Equal(got, want) {
			t.Fatalf("seed %d: objects\n%s\nwant\n%s", seed, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, k := range want {
			a, _ := os.ReadFile(filepath.Join(root, k))
			b, _ := os.ReadFile(filepath.Join(refRoot, k))
			if string(a) != string(b) {
				t.Errorf("seed %d: %s differs", seed, k)
			}
		}
	}
}

// blockingSink's Advance waits until Abort, like a remote destination that
// does not answer.
type blockingSink struct {
	streamSink
	entered chan struct{}
	abort   chan struct{}
}

func (b *blockingSink) Advance(int64) error {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.abort
	return errors.New("aborted")
}

func (b *blockingSink) Abort() { close(b.abort) }

// TestStopAbortsDelivery: Stop does not wait for a destination that hangs
// when it can be aborted; the records stay spooled for the next start.
func TestStopAbortsDelivery(t *testing.T) {
	dir := t.TempDir()
	dest := &blockingSink{entered: make(chan struct{}, 1), abort: make(chan struct{})}
	s := startSpool(t, testConfig(dir), dest)
	want := produce(t, s, t0, 2, 10)
	<-dest.entered
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waits for a hanging destination")
	}
	dest2 := newStreamSink()
	s2 := startSpool(t, testConfig(dir), dest2)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dest2.got(); !slices.Equal(got, want) {
		t.Errorf("next start delivered %d lines, want %d", len(got), len(want))
	}
}
