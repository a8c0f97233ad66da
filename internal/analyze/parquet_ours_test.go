package analyze

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
	flparquet "github.com/flowlog/flowlog/internal/parquet"
)

// TestParquetFromOurWriter writes every AWS sample as Parquet with
// flowlog's own writer (internal/parquet) and reads it back: the
// conversations, and the records as filter prints them, are those of the
// text files.
func TestParquetFromOurWriter(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpora(t), "aws-samples", "*.log"))
	dir := t.TempDir()
	var texts, pqs []string
	for i, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rd := flow.NewReader(f, flow.ReaderOptions{})
		var recs []flow.Record
		for {
			var r flow.Record
			err := rd.Next(&r)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			recs = append(recs, r)
		}
		f.Close()
		var b bytes.Buffer
		codec := flparquet.Gzip
		if i%2 == 1 {
			codec = flparquet.Zstd
		}
		w, err := flparquet.NewWriter(&b, rd.Format(), flparquet.WriterConfig{Codec: codec, RowGroupRows: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, strings.TrimSuffix(filepath.Base(path), ".log")+".log.parquet")
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		texts, pqs = append(texts, path), append(pqs, p)
	}
	run := func(paths []string, report func([]Input, *bytes.Buffer) error) string {
		var b bytes.Buffer
		if err := report(listInputs(t, paths...), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	conns := func(ins []Input, b *bytes.Buffer) error {
		_, err := Connections(context.Background(), ins, ReadConfig{}, ConnOptions{Protocol: -1}, Output{W: b, Mode: ModeJSON})
		return err
	}
	if a, b := run(texts, conns), run(pqs, conns); a != b || strings.Count(a, "\n") < 10 {
		t.Errorf("connections from text:\n%s\nfrom our Parquet:\n%s", a, b)
	}
	filter := func(ins []Input, b *bytes.Buffer) error {
		_, err := Filter(context.Background(), ins, ReadConfig{}, Output{W: b, Mode: ModeText})
		return err
	}
	// The samples' headers are ${field} lines; filter writes bare names.
	text := run(texts, filter)
	if got := run(pqs, filter); got != text {
		t.Errorf("records from text:\n%s\nfrom our Parquet:\n%s", text, got)
	}
}
