package spool

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// mountTmpfs mounts a tmpfs of size (e.g. "1m") for the test: a real
// file system that runs out of space. It needs root; without it the test
// skips, except in CI, where it must run.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("mounting a tmpfs needs root, and CI must run this test")
		}
		t.Skip("mounting a tmpfs needs root (CI runs this test as root)")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull fills a 1 MiB file system while the destination is down.
// The spool reports a clear error (ENOSPC, naming the directory), drops
// whole batches as SKIPDATA without growing in memory, keeps every batch
// it had spooled, and recovers once delivery frees space: later batches
// are spooled again and the SKIPDATA records are delivered too.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	var errs errorLog
	cfg := testConfig(dir)
	cfg.MaxBytes = 1 << 30 // the disk, not the bound, runs out
	cfg.SegmentBytes = 64 << 10
	cfg.OnError = errs.add
	dest := newStreamSink()
	dest.setDown(true)
	s := startSpool(t, cfg, dest)

	var kept []string
	dropped := map[string]bool{}
	w := int64(t0)
	write := func() (spooled bool) {
		recs := window(uint64(w), w, 60, 50, 3)
		before := s.Stats().DroppedBatches
		if err := s.Write(recs); err != nil {
			t.Fatalf("Write on a full disk: %v", err)
		}
		spooled = s.Stats().DroppedBatches == before
		if spooled {
			kept = append(kept, lines(recs)...)
		} else {
			for _, r := range recs {
				dropped[r.InterfaceID+" "+itoa(w)] = true
			}
		}
		if err := s.Advance(w + 60); err != nil {
			t.Fatalf("Advance on a full disk: %v", err)
		}
		w += 60
		return spooled
	}
	for drops := 0; drops < 5; {
		if !write() {
			drops++
		}
		if w > t0+60*10000 {
			t.Fatal("1 MiB never filled up")
		}
	}
	st := s.Stats()
	if !st.DiskFull || !errors.Is(st.LastError, syscall.ENOSPC) || !strings.Contains(st.LastError.Error(), "disk full") || !strings.Contains(st.LastError.Error(), dir) {
		t.Fatalf("on a full disk: DiskFull %v, LastError %v", st.DiskFull, st.LastError)
	}
	if st.SpooledBytes > 1<<20 {
		t.Errorf("%d bytes spooled on a 1 MiB disk", st.SpooledBytes)
	}

	dest.setDown(false)
	waitFor(t, "delivery to free the disk", func() bool {
		st := s.Stats()
		return st.BacklogBytes < 64<<10
	})
	for range 3 {
		if !write() {
			t.Fatalf("a batch was dropped after space came back: %v", s.Stats().LastError)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.DiskFull || st.SkipDataRecords != uint64(len(dropped)) {
		t.Errorf("after recovery: Stats %+v, want %d SKIPDATA records", st, len(dropped))
	}
	var gotKept []string
	gotSkip := map[string]bool{}
	for _, l := range dest.got() {
		var r flow.Record
		if err := testFormat.ParseRecord([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.LogStatus == flow.LogStatusSkipData {
			gotSkip[r.InterfaceID+" "+itoa(r.Start)] = true
			continue
		}
		gotKept = append(gotKept, l)
	}
	if !slices.Equal(gotKept, kept) {
		t.Errorf("delivered %d records, want the %d spooled, in order, once", len(gotKept), len(kept))
	}
	for k := range dropped {
		if !gotSkip[k] {
			t.Errorf("no SKIPDATA delivered for %s", k)
		}
	}
	if len(gotSkip) != len(dropped) {
		t.Errorf("SKIPDATA for %d interface windows, want %d", len(gotSkip), len(dropped))
	}
}
