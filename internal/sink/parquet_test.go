package sink

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/parquet"
)

// parquetText reads a Parquet object with package parquet's reader and
// returns it as the text object of the same records would hold it: the
// header line, then one line per record.
func parquetText(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := parquet.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	text := append([]byte(rd.Format().Header()), '\n')
	buf := make([]flow.Record, 256)
	for {
		n, err := rd.Read(buf)
		for i := range n {
			text = append(rd.Format().Append(text, &buf[i]), '\n')
		}
		if errors.Is(err, io.EOF) {
			return text
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

// TestDirParquet writes the same records, over several periods and with
// cuts, as text and as Parquet (gzip and zstd): the Parquet objects have
// the names of the text objects but for the extension, hold the same
// records, and are written again byte for byte by a second run.
func TestDirParquet(t *testing.T) {
	var recs []flow.Record
	for w := int64(0); w < 3; w++ {
		recs = append(recs, window(uint64(w), t0+w*600, 600, 3000)...)
	}
	allFields := allFieldsFormat(t)
	for _, tc := range []struct {
		name   string
		format *flow.Format
		codec  parquet.Codec
	}{
		{"default gzip", flow.DefaultFormat(), ""},
		{"default zstd", flow.DefaultFormat(), parquet.Zstd},
		{"all fields", allFields, parquet.Gzip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write := func(pq bool) (string, []string) {
				root := t.TempDir()
				layout := testLayout()
				layout.Parquet = pq
				d, err := NewDir(DirConfig{Root: root, Layout: layout, Format: tc.format, MaxObjectBytes: 100_000, ParquetCompression: tc.codec})
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(recs); i += 500 {
					if err := d.Write(recs[i:min(i+500, len(recs))]); err != nil {
						t.Fatal(err)
					}
					if err := d.Advance(recs[min(i+500, len(recs)-1)].Start); err != nil {
						t.Fatal(err)
					}
				}
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				if tmp := tempFiles(t, root); len(tmp) > 0 {
					t.Fatalf("temporary files left: %v", tmp)
				}
				got := visible(t, root)
				pub := slices.Clone(d.Published())
				slices.Sort(pub)
				if !slices.Equal(got, pub) {
					t.Fatalf("visible %v, published %v", got, pub)
				}
				return root, got
			}
			textRoot, textKeys := write(false)
			pqRoot, pqKeys := write(true)
			if len(textKeys) < 8 {
				t.Fatalf("only %d objects: the test wants several periods and cuts", len(textKeys))
			}
			if len(pqKeys) != len(textKeys) {
				t.Fatalf("%d Parquet objects, %d text objects", len(pqKeys), len(textKeys))
			}
			for i, key := range pqKeys {
				if want := strings.TrimSuffix(textKeys[i], ".log.gz") + ".log.parquet"; key != want {
					t.Fatalf("Parquet object %s, text object %s", key, textKeys[i])
				}
				text := mustGunzip(t, filepath.Join(textRoot, textKeys[i]))
				if got := parquetText(t, filepath.Join(pqRoot, key)); !bytes.Equal(got, text) {
					t.Fatalf("%s holds other records than %s", key, textKeys[i])
				}
			}
			again, againKeys := write(true)
			if !slices.Equal(againKeys, pqKeys) {
				t.Fatal("a second run gave other names")
			}
			for _, key := range pqKeys {
				if !sameBytes(t, filepath.Join(pqRoot, key), filepath.Join(again, key)) {
					t.Fatalf("a second run wrote %s with other bytes", key)
				}
			}
		})
	}
}

// TestParquetResetThenRetry: a delivery spool's retry after Reset rewrites
// Parquet objects under the same names with the same bytes.
func TestParquetResetThenRetry(t *testing.T) {
	recs := window(5, t0, 600, 2000)
	layout := testLayout()
	layout.Parquet = true
	run := func(reset bool) (string, []string) {
		root := t.TempDir()
		d, err := NewDir(DirConfig{Root: root, Layout: layout, Format: flow.DefaultFormat(), PublishOnAdvance: true})
		if err != nil {
			t.Fatal(err)
		}
		if reset {
			if err := d.Write(recs[:1500]); err != nil {
				t.Fatal(err)
			}
			if err := d.Reset(); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := d.Advance(t0 + 600); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		return root, visible(t, root)
	}
	a, keys := run(false)
	b, keysAfterReset := run(true)
	if !slices.Equal(keys, keysAfterReset) || len(keys) == 0 {
		t.Fatalf("objects %v, after a reset %v", keys, keysAfterReset)
	}
	for _, key := range keys {
		if !sameBytes(t, filepath.Join(a, key), filepath.Join(b, key)) {
			t.Fatalf("%s differs after a reset", key)
		}
	}
}

// allFieldsFormat is every known field in spec order.
func allFieldsFormat(t testing.TB) *flow.Format {
	t.Helper()
	names := make([]string, len(flow.Fields))
	for i := range flow.Fields {
		names[i] = "${" + flow.Fields[i].Name + "}"
	}
	f, err := flow.ParseFormat(strings.Join(names, " "))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
