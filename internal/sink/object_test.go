package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowlog/flowlog/flow"
)

// memStore is a Store in memory, as a bucket would be: objects appear under
// their key only when published.
type memStore struct {
	objects map[string][]byte
	order   []string
}

func (s *memStore) Create(folder string) (Pending, error) {
	return &memPending{store: s, folder: folder}, nil
}

type memPending struct {
	store  *memStore
	folder string
	buf    bytes.Buffer
}

func (p *memPending) Write(b []byte) (int, error) { return p.buf.Write(b) }

func (p *memPending) Publish(key string) error {
	if path.Dir(key) != p.folder {
		return fmt.Errorf("key %s is not in folder %s", key, p.folder)
	}
	p.store.objects[key] = bytes.Clone(p.buf.Bytes())
	p.store.order = append(p.store.order, key)
	return nil
}

func (p *memPending) Discard() error { return nil }

// lineText renders a record as its first Extra value: the fuzz target
// chooses the lines.
type lineText struct{}

const lineHeader = "line"

func (lineText) Header() string                         { return lineHeader }
func (lineText) Append(b []byte, r *flow.Record) []byte { return append(b, r.Extra[0]...) }

// corpusDir finds ../shared/corpora beside the module root.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "corpora")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

// FuzzObjectWriter writes arbitrary lines (the seeds are real flow logs
// from the corpora) with arbitrary ends, size limit and batching, and
// checks everything the object writer promises: objects per period in
// order, cut only when needed, the header first, names hashed from the
// content, and the same names and bytes whatever the batching.
func FuzzObjectWriter(f *testing.F) {
	for _, pattern := range []string{"aws-samples/*.log", "aws-logs/*.log"} {
		files, _ := filepath.Glob(filepath.Join(corpusDir(f), pattern))
		if len(files) == 0 {
			f.Fatalf("no corpus files %s", pattern)
		}
		for i, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, uint16(100+i*97), uint8(1+i*7))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, max uint16, batch uint8) {
		lines := strings.Split(string(data), "\n")
		if len(lines) > 2000 {
			lines = lines[:2000]
		}
		recs := make([]flow.Record, len(lines))
		for i, line := range lines {
			// Ends over three periods, not in order: a record's period
			// comes from a byte of its line.
			var h byte
			if line != "" {
				h = line[0] ^ line[len(line)-1]
			}
			recs[i] = flow.Record{End: t0 + int64(h)%900, Extra: []string{line}}
		}
		write := func(batch int) *memStore {
			store := &memStore{objects: map[string][]byte{}}
			w, err := NewObjectWriter(ObjectConfig{Layout: testLayout(), Format: lineText{}, MaxObjectBytes: int64(max) + 1}, store)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(recs); i += batch {
				if err := w.Write(recs[i:min(i+batch, len(recs))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.Published(), store.order) {
				t.Fatalf("Published %v, store got %v", w.Published(), store.order)
			}
			return store
		}
		store := write(int(batch) + 1)

		want := map[int64][]string{}
		for i := range recs {
			p := PeriodOf(recs[i].End)
			want[p] = append(want[p], recs[i].Extra[0])
		}
		got := map[int64][]string{}
		var prev []byte // text of the previous object of the same period
		prevPeriod, ordinal := int64(-1), 0
		for _, key := range store.order {
			zr, err := gzip.NewReader(bytes.NewReader(store.objects[key]))
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if _, err := text.ReadFrom(zr); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			header, objLines := objectLines(t, text.Bytes())
			if header != lineHeader || len(objLines) == 0 {
				t.Fatalf("%s: header %q, %d records", key, header, len(objLines))
			}
			if int64(text.Len()) > int64(max)+1 && len(objLines) > 1 {
				t.Fatalf("%s: %d bytes, %d records, limit %d", key, text.Len(), len(objLines), int64(max)+1)
			}
			stamp := strings.Split(path.Base(key), "_")[4]
			pt, err := time.Parse("20060102T1504Z", stamp)
			if err != nil {
				t.Fatal(err)
			}
			p := pt.Unix()
			if p == prevPeriod {
				ordinal++
				if int64(len(prev)+len(objLines[0])+1) <= int64(max)+1 {
					t.Fatalf("%s: cut before a line that fit", key)
				}
			} else {
				ordinal = 0
			}
			prev, prevPeriod = text.Bytes(), p
			var ord [8]byte
			binary.BigEndian.PutUint64(ord[:], uint64(ordinal))
			sum := sha256.Sum256(append(ord[:], text.Bytes()...))
			if !strings.HasSuffix(key, "_"+hex.EncodeToString(sum[:4])+".log.gz") {
				t.Fatalf("%s: name does not carry the hash of object %d of its period, %x", key, ordinal, sum[:4])
			}
			got[p] = append(got[p], objLines...)
		}
		if len(got) != len(want) {
			t.Fatalf("%d periods published, want %d", len(got), len(want))
		}
		for p := range want {
			if !slices.Equal(got[p], want[p]) {
				t.Fatalf("period %d: objects hold %d lines, want the %d records in order", p, len(got[p]), len(want[p]))
			}
		}
		other := write(len(recs) + 1)
		if !slices.Equal(other.order, store.order) {
			t.Fatalf("batching changed the names")
		}
		for key, b := range store.objects {
			if !bytes.Equal(other.objects[key], b) {
				t.Fatalf("batching changed the bytes of %s", key)
			}
		}
	})
}
