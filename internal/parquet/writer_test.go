package parquet

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/flowlog/flowlog/flow"
)

// TestRoundTripCorpus writes every record of the corpora's flow logs (AWS
// samples and public logs, custom formats and unknown fields included) and
// reads it back: the same format and the same text, line for line.
func TestRoundTripCorpus(t *testing.T) {
	for _, set := range corpusLogs(t) {
		for _, codec := range []Codec{Gzip, Zstd} {
			data := writeFile(t, set.format, set.recs, WriterConfig{Codec: codec})
			f, got := readAll(t, data)
			if f.Header() != set.format.Header() {
				t.Fatalf("%s: format %q read back as %q", set.name, set.format.Header(), f.Header())
			}
			if want, have := lines(set.format, set.recs), lines(f, got); !slices.Equal(want, have) {
				for i := range want {
					if i >= len(have) || want[i] != have[i] {
						t.Fatalf("%s (%s): record %d\nwrote %q\nread  %q", set.name, codec, i, want[i], have[min(i, len(have)-1)])
					}
				}
				t.Fatalf("%s: read %d records, wrote %d", set.name, len(have), len(want))
			}
		}
	}
}

// TestRoundTripRandom does the same with every field, random values and
// nulls, across several row groups and read batches of odd sizes.
func TestRoundTripRandom(t *testing.T) {
	f := allFieldsFormat(t)
	recs := randomRecords(t, 1, f, 5000)
	data := writeFile(t, f, recs, WriterConfig{RowGroupRows: 1234})
	file, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(file.RowGroups()); n != 5 {
		t.Errorf("%d row groups, want 5 of at most 1234 rows", n)
	}
	rd, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := lines(f, recs)
	var got []string
	buf := make([]flow.Record, 7)
	for {
		n, err := rd.Read(buf)
		got = append(got, lines(rd.Format(), buf[:n])...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read back %d lines that differ from the %d written", len(got), len(want))
	}
}

// TestNulls checks that what the text form writes as "-" is a null, field
// by field: absent fields, empty strings, invalid addresses, unknown enums
// and "-" strings, and that values with whitespace are stored as the text
// form writes them.
func TestNulls(t *testing.T) {
	f := allFieldsFormat(t)
	var all flow.FieldSet
	for i := range flow.NumFields {
		all = all.With(flow.FieldID(i))
	}
	recs := []flow.Record{
		{},             // nothing present
		{Present: all}, // everything present, nothing set
		{Present: all, AccountID: "-", InterfaceID: "eni-1 2", VPCID: "vpc\t3"},
	}
	data := writeFile(t, f, recs, WriterConfig{})
	file, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]pq.Row, 3)
	n, err := file.RowGroups()[0].Rows().ReadRows(rows)
	if n != 3 {
		t.Fatalf("read %d rows: %v", n, err)
	}
	text := lines(f, recs)
	for i, row := range rows {
		tokens := strings.Fields(text[i])
		for _, v := range row {
			tok := tokens[v.Column()]
			if got := string(appendValue(nil, v)); got != tok {
				t.Errorf("record %d column %s: parquet %q, text %q", i, columnsOf(f)[v.Column()].name, got, tok)
			}
			if (tok == "-") != v.IsNull() {
				t.Errorf("record %d column %d: text %q, parquet null %v", i, v.Column(), tok, v.IsNull())
			}
		}
	}
	if got := lines(f, recs)[2]; !strings.Contains(got, " eni-1_2 ") || !strings.Contains(got, " vpc_3 ") {
		t.Fatalf("text form %q", got)
	}
}

// TestClampCounts checks that a count beyond INT64 is kept at the largest
// INT64 rather than turning negative.
func TestClampCounts(t *testing.T) {
	f := flow.DefaultFormat()
	r := flow.Record{Present: flow.FieldSet(0).With(flow.FieldPackets).With(flow.FieldBytes), Packets: math.MaxUint64, Bytes: 1 << 63}
	_, got := readAll(t, writeFile(t, f, []flow.Record{r}, WriterConfig{}))
	if got[0].Packets != math.MaxInt64 || got[0].Bytes != math.MaxInt64 {
		t.Fatalf("packets %d bytes %d, want both %d", got[0].Packets, got[0].Bytes, int64(math.MaxInt64))
	}
}

// TestDeterministic: the same records give the same bytes, from a new
// writer or from one Reset after another file (the object names of the
// directory and S3 destinations hash the text, but a re-run must overwrite
// objects with identical bytes).
func TestDeterministic(t *testing.T) {
	f := allFieldsFormat(t)
	recs := randomRecords(t, 2, f, 3000)
	for _, cfg := range []WriterConfig{{}, {Codec: Zstd}, {GzipLevel: 1, RowGroupRows: 1000}} {
		a := writeFile(t, f, recs, cfg)
		b := writeFile(t, f, recs, cfg)
		if !bytes.Equal(a, b) {
			t.Fatalf("%+v: two writers gave different bytes", cfg)
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, f, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(randomRecords(t, 3, f, 2500)); err != nil {
			t.Fatal(err)
		}
		w.Reset(io.Discard) // mid-file: what was written is dropped
		if err := w.Write(randomRecords(t, 4, f, 10)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		w.Reset(&buf)
		if err := w.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), a) {
			t.Fatalf("%+v: a reset writer gave different bytes (%d, want %d)", cfg, buf.Len(), len(a))
		}
	}
}

// TestEmptyFile: a file without records is valid and reads as no records.
func TestEmptyFile(t *testing.T) {
	f, got := readAll(t, writeFile(t, flow.DefaultFormat(), nil, WriterConfig{}))
	if len(got) != 0 || !f.IsDefault() {
		t.Fatalf("read %d records in format %q", len(got), f)
	}
}

func TestWriterConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  WriterConfig
		want string
	}{
		{WriterConfig{Codec: "snappy"}, `parquet compression "snappy": want gzip or zstd`},
		{WriterConfig{GzipLevel: 10}, "gzip level 10: want 1 to 9"},
		{WriterConfig{RowGroupRows: -1}, "row group rows -1: negative"},
	} {
		if _, err := NewWriter(io.Discard, flow.DefaultFormat(), tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := NewWriter(io.Discard, nil, WriterConfig{}); err == nil {
		t.Error("nil format accepted")
	}
	for _, s := range []string{"", "gzip", "GZIP", "zstd", "Zstd"} {
		if _, err := ParseCodec(s); err != nil {
			t.Errorf("ParseCodec(%q): %v", s, err)
		}
	}
}

// TestWriterError: an error of the io.Writer is returned, and sticks.
func TestWriterError(t *testing.T) {
	f := allFieldsFormat(t)
	w, err := NewWriter(failWriter{}, f, WriterConfig{RowGroupRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Row groups of 1000 records are past the writer's output buffer.
	err = w.Write(randomRecords(t, 5, f, 3000))
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("Write: %v, want the writer's error", err)
	}
	if err2 := w.Close(); !errors.Is(err2, errDiskFull) {
		t.Fatalf("Close after an error: %v", err2)
	}
}

var errDiskFull = errors.New("no space left on device")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }
