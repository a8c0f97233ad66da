package sink

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// TestDirResetThenRetry is what a delivery spool does after a failed
// Advance: Reset, then write the same records again. The result is the
// objects of a run without the failure, byte for byte: the objects
// published before the failure are rewritten under the same names, none is
// duplicated, none holds a record twice.
func TestDirResetThenRetry(t *testing.T) {
	var recs []flow.Record
	for w := t0; w < t0+900; w += 60 {
		recs = append(recs, window(uint64(w), w, 60, 7)...)
	}
	run := func(d *Dir) error {
		if err := d.Write(recs); err != nil {
			return err
		}
		return d.Advance(t0 + 600)
	}

	refRoot := t.TempDir()
	ref := newTestDir(t, refRoot, 0)
	if err := run(ref); err != nil {
		t.Fatal(err)
	}
	if err := ref.Close(); err != nil {
		t.Fatal(err)
	}
	keys := ref.Published()
	if len(keys) != 3 {
		t.Fatalf("reference run published %v, want 3 objects", keys)
	}

	root := t.TempDir()
	blocker := filepath.Join(root, keys[1], "occupied")
	if err := os.MkdirAll(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	d := newTestDir(t, root, 0)
	if err := run(d); err == nil {
		t.Fatal("Advance with the second period's key occupied: no error")
	}
	if err := d.Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temporary files left after Reset: %v", tmp)
	}
	if err := os.RemoveAll(filepath.Join(root, keys[1])); err != nil {
		t.Fatal(err)
	}
	if err := run(d); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got, want := visible(t, root), visible(t, refRoot)
	if !slices.Equal(got, want) {
		t.Fatalf("objects after the retry:\n%v\nwant\n%v", got, want)
	}
	for _, k := range want {
		if !sameBytes(t, filepath.Join(root, k), filepath.Join(refRoot, k)) {
			t.Errorf("%s differs from the run without failure", k)
		}
	}
	if err := d.Reset(); err == nil {
		t.Error("Reset after Close: no error")
	}
}
