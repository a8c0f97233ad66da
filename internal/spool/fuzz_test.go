package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// segmentSample is a segment as the spool writes it: header, records,
// watermarks.
func segmentSample() []byte {
	b := appendHeaderEntry(nil, spoolFormat())
	b = appendRecordEntries(b, spoolFormat(), window(1, t0, 60, 3, 2))
	b = appendAdvanceEntry(b, t0+60)
	b = appendRecordEntries(b, spoolFormat(), window(2, t0+60, 60, 1, 1))
	return appendAdvanceEntry(b, t0+120)
}

// FuzzScanSegment feeds arbitrary bytes to the segment decoder, as a
// corrupt disk would. It must not panic or allocate by a length field,
// and what it reports must account for every byte: the entries it
// decodes re-encode to exactly the bytes they came from, and entries,
// corrupt spans and a torn tail tile the input in order.
func FuzzScanSegment(f *testing.F) {
	seg := segmentSample()
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	flipped := bytes.Clone(seg)
	flipped[len(flipped)/2] ^= 0x40
	f.Add(flipped)
	f.Add(append(bytes.Clone(seg[:40]), seg...))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 'R'})
	f.Fuzz(func(t *testing.T, b []byte) {
		sc := scanSegment(b)
		type piece struct{ from, to int64 }
		var pieces []piece
		for _, e := range sc.entries {
			if e.off < 0 || e.off+e.size > int64(len(b)) {
				t.Fatalf("entry at %d of %d bytes outside the input of %d", e.off, e.size, len(b))
			}
			var again []byte
			switch e.kind {
			case kindHeader, kindRecords, kindAdvance:
				again, _ = beginEntry(nil, e.kind)
				again = append(again, e.payload...)
				again = endEntry(again, 0)
			default:
				t.Fatalf("entry of kind %q", e.kind)
			}
			if !bytes.Equal(again, b[e.off:e.off+e.size]) {
				t.Fatalf("entry at %d does not re-encode to its bytes", e.off)
			}
			pieces = append(pieces, piece{e.off, e.off + e.size})
			if e.kind == kindRecords {
				// Whatever the lines hold, parsing them reports errors,
				// never panics.
				_, _ = parseRecords(sc.format(), e.payload, nil, nil)
			}
			if e.kind == kindHeader {
				_, _ = headerFormat(e.payload)
			}
		}
		for _, c := range sc.corrupt {
			pieces = append(pieces, piece{c.from, c.to})
		}
		if sc.torn >= 0 {
			pieces = append(pieces, piece{sc.torn, int64(len(b))})
		}
		slices.SortFunc(pieces, func(x, y piece) int { return int(x.from - y.from) })
		at := int64(0)
		for _, p := range pieces {
			if p.from != at || p.to <= p.from {
				t.Fatalf("pieces %v do not tile %d bytes", pieces, len(b))
			}
			at = p.to
		}
		if at != int64(len(b)) {
			t.Fatalf("pieces %v end at %d, input has %d bytes", pieces, at, len(b))
		}
		if (len(sc.corrupt) > 0) != (sc.first != nil) {
			t.Fatalf("corrupt spans %v but first error %v", sc.corrupt, sc.first)
		}
	})
}

// TestEntryRoundTrip: every kind decodes to what was encoded.
func TestEntryRoundTrip(t *testing.T) {
	b := segmentSample()
	sc := scanSegment(b)
	if len(sc.corrupt) != 0 || sc.torn >= 0 {
		t.Fatalf("clean segment scanned as %+v", sc)
	}
	kinds := ""
	for _, e := range sc.entries {
		kinds += string(e.kind)
	}
	if kinds != "HRARA" {
		t.Fatalf("kinds %q", kinds)
	}
	if f, err := headerFormat(sc.entries[0].payload); err != nil || f.Header() != spoolFormat().Header() {
		t.Fatalf("header: %v", err)
	}
	recs, err := parseRecords(spoolFormat(), sc.entries[1].payload, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lines(recs), lines(window(1, t0, 60, 3, 2)); !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	if wm := advanceWatermark(sc.entries[4].payload); wm != t0+120 {
		t.Fatalf("watermark %d", wm)
	}
}

// TestLargeBatchChunked: a batch larger than chunkBytes spans several
// entries, each within the decoder's bound.
func TestLargeBatchChunked(t *testing.T) {
	recs := window(3, t0, 60, 20000, 50)
	b := appendRecordEntries(nil, spoolFormat(), recs)
	sc := scanSegment(b)
	if len(sc.entries) < 2 || len(sc.corrupt) != 0 {
		t.Fatalf("%d entries, corrupt %v", len(sc.entries), sc.corrupt)
	}
	var all []string
	for _, e := range sc.entries {
		if e.size > chunkBytes+8<<10 {
			t.Errorf("entry of %d bytes", e.size)
		}
		got, err := parseRecords(spoolFormat(), e.payload, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, lines(got)...)
	}
	if !slices.Equal(all, lines(recs)) {
		t.Fatal("records changed through the chunks")
	}
}

// TestResyncSkipsOneEntry: after a corrupt entry, scanning resumes at the
// next one.
func TestResyncSkipsOneEntry(t *testing.T) {
	b := segmentSample()
	clean := scanSegment(b)
	bad := clean.entries[1]
	b[bad.off+5] ^= 1 // in the CRC
	sc := scanSegment(b)
	if len(sc.corrupt) != 1 || sc.corrupt[0] != (span{bad.off, bad.off + bad.size}) || len(sc.entries) != len(clean.entries)-1 {
		t.Fatalf("corrupt %v, %d entries", sc.corrupt, len(sc.entries))
	}
}

func TestAckRoundTrip(t *testing.T) {
	a := ackState{Offset: 1234, Bound: -5, Upto: 99999}
	got, seq, err := decodeAck(a.encode(7))
	if err != nil || got != a || seq != 7 {
		t.Fatalf("decodeAck = %+v, %d, %v", got, seq, err)
	}
	b := a.encode(7)
	b[13] ^= 1
	if _, _, err := decodeAck(b); err == nil {
		t.Fatal("corrupt ack accepted")
	}
}

// TestAckSlots: the latest state wins; a torn write of it leaves the
// previous one; two bad slots are reported and read as the zero state.
func TestAckSlots(t *testing.T) {
	dir := t.TempDir()
	l, a, err := openAck(dir)
	if err != nil || a != (ackState{Bound: minInt64}) {
		t.Fatalf("new ack file: %+v, %v", a, err)
	}
	states := []ackState{{10, minInt64, 10}, {20, 5, 30}, {40, 6, 50}}
	for _, st := range states {
		if err := l.write(st, false); err != nil {
			t.Fatal(err)
		}
	}
	l.close()
	path := filepath.Join(dir, ackFile)
	if fi, err := os.Stat(path); err != nil || fi.Size() != 2*ackSlotLen {
		t.Fatalf("ack file: %v, %v", fi, err)
	}
	l, a, err = openAck(dir)
	if err != nil || a != states[2] {
		t.Fatalf("reopened: %+v, %v", a, err)
	}
	// Tear the slot of the latest state.
	slot := int64(l.seq%2) * ackSlotLen
	l.close()
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte{0xde, 0xad}, slot+20)
	f.Close()
	l, a, err = openAck(dir)
	if err != nil || a != states[1] {
		t.Fatalf("after a torn write: %+v, %v, want %+v", a, err, states[1])
	}
	l.close()
	os.WriteFile(path, make([]byte, 2*ackSlotLen), 0o600)
	l, a, err = openAck(dir)
	if !errors.Is(err, ErrCorrupt) || a != (ackState{Bound: minInt64}) || l == nil {
		t.Fatalf("both slots bad: %+v, %v", a, err)
	}
	l.close()
}
