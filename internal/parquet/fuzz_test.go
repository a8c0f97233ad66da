package parquet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/flowlog/flowlog/flow"
)

// FuzzReader feeds Reader arbitrary bytes, seeded with real files of the
// corpora's logs: it must return records or an error, never crash or hang.
func FuzzReader(f *testing.F) {
	// Small seeds: the fuzzer minimizes every input that finds new
	// coverage byte by byte, and parquet-go's coverage counters make each
	// run slow enough that minimizing a large file takes minutes.
	for i, set := range corpusLogs(f) {
		if i%4 == 0 {
			f.Add(writeFile(f, set.format, set.recs[:min(len(set.recs), 2)], WriterConfig{Codec: []Codec{Gzip, Zstd}[i%2]}))
		}
	}
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		// A corrupt row count can stand for billions of null rows, which
		// read correctly but slowly: a few thousand tell enough.
		buf := make([]flow.Record, 64)
		for range 50 {
			n, err := rd.Read(buf)
			for i := range n {
				rd.Format().Append(nil, &buf[i])
			}
			if err != nil {
				return
			}
		}
	})
}

// FuzzRoundTrip writes arbitrary lines of a format of every field (seeded
// with the corpora's records) and reads them back: the same text.
func FuzzRoundTrip(f *testing.F) {
	all := allFieldsFormat(f)
	for _, set := range corpusLogs(f) {
		recs := make([]flow.Record, len(set.recs))
		copy(recs, set.recs)
		var b strings.Builder
		for _, l := range lines(all, recs) {
			b.WriteString(l + "\n")
		}
		f.Add(b.String())
	}
	f.Fuzz(func(t *testing.T, text string) {
		var recs []flow.Record
		for line := range strings.SplitSeq(text, "\n") {
			var r flow.Record
			if all.ParseRecord([]byte(line), &r) == nil {
				recs = append(recs, r)
			}
		}
		data := writeFile(t, all, recs, WriterConfig{RowGroupRows: 3})
		f2, got := readAll(t, data)
		want := lines(all, recs)
		// Counts above INT64 are clamped; the text form keeps them.
		for i := range recs {
			if recs[i].Packets > 1<<63-1 || recs[i].Bytes > 1<<63-1 {
				return
			}
		}
		if have := lines(f2, got); !slices.Equal(want, have) {
			t.Fatalf("wrote %q\nread %q", want, have)
		}
	})
}

// TestReaderErrors: files that are not flow logs in Parquet are refused
// with an error that says why.
func TestReaderErrors(t *testing.T) {
	good := writeFile(t, flow.DefaultFormat(), randomRecords(t, 1, flow.DefaultFormat(), 100), WriterConfig{})
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "open parquet file"},
		{"text", []byte("version account-id\n2 123456789012\n"), "open parquet file"},
		{"truncated", good[:len(good)-100], "open parquet file: not a Parquet file"},
		// parquet-go would allocate the 3 GB the trailer claims.
		{"huge footer", hugeFooter(good), "open parquet file: footer of 3000000000 bytes in a file of"},
		{"not fields", otherFile(t), "parquet columns are not flow log fields"},
		{"nested", nestedFile(t), "parquet column ports: nested or repeated"},
	} {
		_, err := NewReader(bytes.NewReader(tc.data), int64(len(tc.data)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	// Corrupt pages: opening may work, reading must then fail, not crash.
	bad := bytes.Clone(good)
	for i := 100; i < len(bad)-600; i += 7 {
		bad[i] ^= 0x5a
	}
	rd, err := NewReader(bytes.NewReader(bad), int64(len(bad)))
	if err == nil {
		buf := make([]flow.Record, 200)
		for err == nil {
			_, err = rd.Read(buf)
		}
		if errors.Is(err, io.EOF) {
			t.Log("corrupt pages read as records: the checksum-less pages decoded")
		}
	}
}

// hugeFooter is a copy of a file whose trailer gives a footer length of 3 GB.
func hugeFooter(file []byte) []byte {
	b := bytes.Clone(file)
	binary.LittleEndian.PutUint32(b[len(b)-8:], 3_000_000_000)
	return b
}

// otherFile is a Parquet file of customers, not flow logs.
func otherFile(t *testing.T) []byte {
	t.Helper()
	type customer struct {
		Name string
		Age  int32
	}
	var buf bytes.Buffer
	if err := pq.Write(&buf, []customer{{"Ada", 36}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nestedFile is a Parquet file with a flow log field inside a group.
func nestedFile(t *testing.T) []byte {
	t.Helper()
	type inner struct {
		Srcport int32 `parquet:"srcport"`
	}
	type row struct {
		Version int32 `parquet:"version"`
		Ports   inner `parquet:"ports"`
	}
	var buf bytes.Buffer
	if err := pq.Write(&buf, []row{{2, inner{22}}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
