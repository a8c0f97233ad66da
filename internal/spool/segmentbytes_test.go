package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSegmentBytes counts only files named as segments.
func TestSegmentBytes(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{
		segmentName(0):    10,
		segmentName(4096): 7,
		"x.seg":           5, // not a segment name
		"ack":             32,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, segmentName(8192)), 0o700); err != nil { // a directory, not a file
		t.Fatal(err)
	}
	if b, n := SegmentBytes(dir); b != 17 || n != 2 {
		t.Errorf("SegmentBytes = %d bytes in %d segments, want 17 in 2", b, n)
	}
	if b, n := SegmentBytes(filepath.Join(dir, "missing")); b != 0 || n != 0 {
		t.Errorf("missing directory: %d, %d", b, n)
	}
}
