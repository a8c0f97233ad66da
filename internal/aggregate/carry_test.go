package aggregate

import (
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// An entry keeps 32-bit counters; what overflows them is carried in
// Table.carries. Records must hold the exact counts, for Add and
// AddCounts, and nothing may stay behind once the window is emitted.
func TestCounterOverflowIsCarried(t *testing.T) {
	var rec recorder
	tab, err := New(Config{Interval: 60}, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	const w = 1_700_000_040 // a window start
	k1, k2, k3 := tcp(v4a, v4b, 1, 2), tcp(v4a, v4b, 3, 4), tcp(v6a, v6b, 5, 6)

	// k1: the packet counter wraps under Add (the entry is set just below
	// the wrap; 4 Gi calls would take minutes).
	tab.Add(k1, w+1, 1000, 0, 0)
	id, _, found := tab.find(lookup(tab, k1, w+1))
	if !found {
		t.Fatal("k1 not in the table")
	}
	e := tab.at(id)
	e.packets = 1<<32 - 10
	for range 25 {
		tab.Add(k1, w+2, 1000, 0, 0)
	}
	wantK1 := flow.Counts{Packets: 1<<32 - 10 + 25, Bytes: 26 * 1000}

	// k2: the byte counter wraps under Add, several times.
	for range 7 {
		tab.Add(k2, w+3, 1<<32-1, 0, 0)
	}
	wantK2 := flow.Counts{Packets: 7, Bytes: 7 * (1<<32 - 1)}

	// k3: AddCounts far beyond 32 bits, on a new entry and on a held one,
	// then Add on top.
	tab.AddCounts(k3, w+4, w+5, 5<<32+7, 3<<40+1, 0, 0)
	tab.AddCounts(k3, w+4, w+6, 1<<32-1, 1<<32-1, 0, 0)
	tab.Add(k3, w+6, 100, 0, 0)
	wantK3 := flow.Counts{Packets: 5<<32 + 7 + 1<<32 - 1 + 1, Bytes: 3<<40 + 1 + 1<<32 - 1 + 100}

	if len(tab.carries) != 3 {
		t.Errorf("%d entries carried, want 3", len(tab.carries))
	}
	tab.Flush()
	got := map[uint16]flow.Counts{}
	for _, b := range rec.batches {
		for _, r := range b {
			if r.Status == flow.LogStatusOK {
				got[r.Key.SrcPort] = r.Counts
			}
		}
	}
	for port, want := range map[uint16]flow.Counts{1: wantK1, 3: wantK2, 5: wantK3} {
		if g := got[port]; g.Packets != want.Packets || g.Bytes != want.Bytes {
			t.Errorf("flow from port %d: %d packets %d bytes, want %d and %d", port, g.Packets, g.Bytes, want.Packets, want.Bytes)
		}
	}
	if len(tab.carries) != 0 {
		t.Errorf("%d carries left after the window was emitted", len(tab.carries))
	}

	// The entries are reused for the next window: no carry comes along.
	rec.batches = nil
	tab.Add(k1, w+601, 10, 0, 0)
	tab.Add(k2, w+601, 10, 0, 0)
	tab.AddCounts(k3, w+601, w+601, 2, 20, 0, 0)
	tab.Flush()
	for _, b := range rec.batches {
		for _, r := range b {
			if r.Status == flow.LogStatusOK && (r.Counts.Packets > 2 || r.Counts.Bytes > 20) {
				t.Errorf("reused entry: %+v", r)
			}
		}
	}
}

// lookup is the compact key and hash Add builds for k at second ts.
func lookup(t *Table, k flow.Key, ts int64) (*ckey, uint64) {
	var key ckey
	t.keyOf(&k, &key)
	key.meta |= uint32(t.windowOf(ts).id) << 16
	return &key, t.hash(&key)
}
