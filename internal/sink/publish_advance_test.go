package sink

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/flowlog/flowlog/flow"
)

// TestPublishOnAdvance: each Advance publishes what was written, also in
// the middle of a 5-minute period, and later records of the period go to a
// new object of the same period.
func TestPublishOnAdvance(t *testing.T) {
	store := &memStore{objects: map[string][]byte{}}
	w, err := NewObjectWriter(ObjectConfig{Layout: testLayout(), Format: lineText{}, PublishOnAdvance: true}, store)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(end int64, line string) []flow.Record { return []flow.Record{{End: end, Extra: []string{line}}} }
	if err := w.Write(rec(t0+10, "first minute")); err != nil {
		t.Fatal(err)
	}
	if err := w.Advance(t0 + 60); err != nil {
		t.Fatal(err)
	}
	if len(store.order) != 1 {
		t.Fatalf("after the first Advance: %d objects", len(store.order))
	}
	if err := w.Write(rec(t0+70, "second minute")); err != nil {
		t.Fatal(err)
	}
	if err := w.Advance(t0 + 120); err != nil {
		t.Fatal(err)
	}
	if err := w.Advance(t0 + 180); err != nil { // nothing new: no object
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(store.order) != 2 || store.order[0] == store.order[1] {
		t.Fatalf("objects %v", store.order)
	}
	for i, want := range []string{"first minute", "second minute"} {
		key := store.order[i]
		if !strings.Contains(key, "_"+testLayout().FlowLogID+"_") {
			t.Errorf("key %s", key)
		}
		zr, err := gzip.NewReader(bytes.NewReader(store.objects[key]))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(zr)
		if string(body) != lineHeader+"\n"+want+"\n" {
			t.Errorf("object %d: %q", i, body)
		}
	}
	if st := w.Stats(); st.Objects != 2 || st.Records != 2 {
		t.Errorf("stats %+v", st)
	}
}
