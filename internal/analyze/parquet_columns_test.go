package analyze

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/flowlog/flowlog/flow"
	"github.com/parquet-go/parquet-go"
)

// mixedRow has the columns of a flow log as AWS types them, every one
// optional, with values the tests choose to be good, bad (out of range,
// not an address) or missing, and a column flowlog does not know.
type mixedRow struct {
	Version   *int32  `parquet:"version,optional"`
	AccountID *string `parquet:"account_id,optional"`
	SrcAddr   *string `parquet:"srcaddr,optional"`
	DstAddr   *string `parquet:"dstaddr,optional"`
	SrcPort   *int32  `parquet:"srcport,optional"`
	Protocol  *int32  `parquet:"protocol,optional"`
	Packets   *int64  `parquet:"packets,optional"`
	Bytes     *int64  `parquet:"bytes,optional"`
	Start     *int64  `parquet:"start,optional"`
	End       *int64  `parquet:"end,optional"`
	Action    *string `parquet:"action,optional"`
	LogStatus *string `parquet:"log_status,optional"`
	TGWID     *string `parquet:"tgw_id,optional"`
}

// mixedDictRow is mixedRow with every column dictionary-encoded, as
// flowlog and AWS write the repetitive ones.
type mixedDictRow struct {
	Version   *int32  `parquet:"version,optional,dict"`
	AccountID *string `parquet:"account_id,optional,dict"`
	SrcAddr   *string `parquet:"srcaddr,optional,dict"`
	DstAddr   *string `parquet:"dstaddr,optional,dict"`
	SrcPort   *int32  `parquet:"srcport,optional,dict"`
	Protocol  *int32  `parquet:"protocol,optional,dict"`
	Packets   *int64  `parquet:"packets,optional,dict"`
	Bytes     *int64  `parquet:"bytes,optional,dict"`
	Start     *int64  `parquet:"start,optional,dict"`
	End       *int64  `parquet:"end,optional,dict"`
	Action    *string `parquet:"action,optional,dict"`
	LogStatus *string `parquet:"log_status,optional,dict"`
	TGWID     *string `parquet:"tgw_id,optional,dict"`
}

// mixedRows returns n rows: mostly good values from small pools (so that
// dictionaries form), with nulls, bad values and many distinct addresses
// sprinkled in (so that a small dictionary overflows to plain pages).
func mixedRows(n int, seed uint64) []mixedRow {
	rng := rand.New(rand.NewPCG(seed, 7))
	pick := func(p float64) bool { return rng.Float64() < p }
	i32 := func(v int32) *int32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	str := func(v string) *string { return &v }
	addrs := []string{"10.0.0.1", "10.0.0.2", "172.31.5.9", "2001:db8::1", "fe80::1%eth0", "not-an-address", "010.0.0.1", "::ffff:10.0.0.3"}
	addr := func() *string {
		switch {
		case pick(0.05):
			return nil
		case pick(0.3):
			return str(fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256)))
		}
		return str(addrs[rng.IntN(len(addrs))])
	}
	rows := make([]mixedRow, n)
	for i := range rows {
		r := &rows[i]
		if i%97 == 0 { // NODATA: most columns null
			r.Version, r.AccountID, r.Start, r.End, r.LogStatus = i32(2), str("123456789012"), i64(1718900000), i64(1718900059), str("NODATA")
			continue
		}
		r.Version = i32(2)
		if pick(0.01) {
			r.Version = i32(300) // out of range
		}
		r.AccountID = str([]string{"123456789012", "210987654321", "-"}[rng.IntN(3)])
		r.SrcAddr, r.DstAddr = addr(), addr()
		if !pick(0.05) {
			r.SrcPort = i32([]int32{443, 80, 53, 70000, -1, 0}[rng.IntN(6)])
		}
		if !pick(0.05) {
			r.Protocol = i32([]int32{6, 17, 1, 256}[rng.IntN(4)])
		}
		if !pick(0.05) {
			r.Packets = i64(rng.Int64N(1000) - 5)
		}
		if !pick(0.05) {
			r.Bytes = i64(rng.Int64N(1 << 40))
		}
		r.Start = i64(1718900000 + rng.Int64N(600))
		r.End = i64(*r.Start + rng.Int64N(60))
		if !pick(0.05) {
			r.Action = str([]string{"ACCEPT", "REJECT", "accept", "DROP"}[rng.IntN(4)])
		}
		r.LogStatus = str([]string{"OK", "OK", "SKIPDATA", "BAD"}[rng.IntN(4)])
		if pick(0.5) {
			r.TGWID = str(fmt.Sprintf("tgw-%d", rng.IntN(5)))
		}
	}
	return rows
}

// recordingVisitor keeps every record it is given as a line of its format.
type recordingVisitor struct {
	noHooks
	f     *flow.Format
	lines []string
}

func (v *recordingVisitor) format(f *flow.Format) { v.f = f }
func (v *recordingVisitor) record(r *flow.Record, _ []byte) {
	v.lines = append(v.lines, string(v.f.Append(nil, r)))
}

// mixedText returns the text form of the rows (a null as "-") and its
// header.
func mixedText(rows []mixedRow) (header string, lines []string) {
	header = "version account-id srcaddr dstaddr srcport protocol packets bytes start end action log-status tgw-id"
	for _, r := range rows {
		var b []byte
		for i, v := range []any{r.Version, r.AccountID, r.SrcAddr, r.DstAddr, r.SrcPort, r.Protocol, r.Packets, r.Bytes, r.Start, r.End, r.Action, r.LogStatus, r.TGWID} {
			if i > 0 {
				b = append(b, ' ')
			}
			switch v := v.(type) {
			case *int32:
				if v != nil {
					b = fmt.Append(b, *v)
					continue
				}
			case *int64:
				if v != nil {
					b = fmt.Append(b, *v)
					continue
				}
			case *string:
				if v != nil {
					b = append(b, *v...)
					continue
				}
			}
			b = append(b, '-')
		}
		lines = append(lines, string(b))
	}
	return header, lines
}

// mixedWant reads the text form of the rows as the text reader does: the
// records of the fields in need (all of them: every value checked), as
// lines, and how many rows have a bad value among those fields.
func mixedWant(t *testing.T, rows []mixedRow, need flow.FieldSet) (want []string, bad int64) {
	t.Helper()
	header, lines := mixedText(rows)
	f, err := flow.ParseHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	sc := NewScanner(f, need)
	for _, line := range lines {
		var r flow.Record
		if need == everyField {
			err = f.ParseRecord([]byte(line), &r)
		} else {
			err = sc.Scan([]byte(line), &r)
		}
		if err != nil {
			bad++
			continue
		}
		want = append(want, string(f.Append(nil, &r)))
	}
	return want, bad
}

const everyField = flow.FieldSet(1)<<flow.NumFields - 1

// readParquetBoth reads data with the column reader and with parquet-go's
// value reader, and returns what each saw.
func readParquetBoth(t *testing.T, data []byte, need flow.FieldSet, extra bool) (got, want []string, gotSt, wantSt Stats) {
	t.Helper()
	read := func(values bool) ([]string, Stats) {
		e := newEngine(ReadConfig{}, need, extra)
		v := &recordingVisitor{}
		var st Stats
		rs := &recordStream{e: e, v: v, st: &st, input: "x", scanners: map[string]*Scanner{}}
		if err := readParquetColumns(context.Background(), bytes.NewReader(data), int64(len(data)), e.need, extra, rs, values); err != nil {
			t.Fatalf("values %v: %v", values, err)
		}
		return v.lines, st
	}
	got, gotSt = read(false)
	want, wantSt = read(true)
	return got, want, gotSt, wantSt
}

// TestParquetColumnsAsValues holds the column reader to parquet-go's value
// reader over files shaped every way a writer may shape them: plain and
// dictionary pages, a dictionary overflowing to plain pages within a
// column chunk, many small pages per batch, data pages v1 and v2, delta
// encodings, small row groups, and gzip, zstd, snappy or no compression. Both
// must see the same records, the same bad rows and the same errors, for
// every field and for the few a report needs.
func TestParquetColumnsAsValues(t *testing.T) {
	rows := mixedRows(5000, 1)
	dictRows := make([]mixedDictRow, len(rows))
	for i, r := range rows {
		dictRows[i] = mixedDictRow(r)
	}
	cases := []struct {
		name string
		dict bool
		opts []parquet.WriterOption
	}{
		{"plain", false, nil},
		{"plain small pages v2 gzip", false, []parquet.WriterOption{parquet.PageBufferSize(512), parquet.DataPageVersion(2), parquet.Compression(&parquet.Gzip)}},
		{"delta snappy", false, []parquet.WriterOption{parquet.Compression(&parquet.Snappy), parquet.DefaultEncodingFor(parquet.Int64, &parquet.DeltaBinaryPacked), parquet.DefaultEncodingFor(parquet.Int32, &parquet.DeltaBinaryPacked), parquet.DefaultEncodingFor(parquet.ByteArray, &parquet.DeltaByteArray), parquet.PageBufferSize(2048)}},
		{"dictionary", true, []parquet.WriterOption{parquet.Compression(&parquet.Zstd)}},
		{"dictionary small pages v1", true, []parquet.WriterOption{parquet.PageBufferSize(300), parquet.DataPageVersion(1)}},
		{"dictionary overflows", true, []parquet.WriterOption{parquet.DictionaryMaxBytes(600), parquet.PageBufferSize(1000), parquet.DataPageVersion(1)}},
		{"dictionary small row groups", true, []parquet.WriterOption{parquet.MaxRowsPerRowGroup(777), parquet.PageBufferSize(4096)}},
	}
	all := everyField
	top := flow.FieldSet(0).With(flow.FieldSrcAddr).With(flow.FieldBytes).With(flow.FieldPackets).With(flow.FieldStart).With(flow.FieldEnd)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var data []byte
			if c.dict {
				data = parquetBytes(t, dictRows, c.opts...)
			} else {
				data = parquetBytes(t, rows, c.opts...)
			}
			for _, q := range []struct {
				name  string
				need  flow.FieldSet
				extra bool
			}{{"every column", all, true}, {"top's columns", top, false}} {
				got, want, gotSt, wantSt := readParquetBoth(t, data, q.need, q.extra)
				truth, bad := mixedWant(t, rows, q.need|flow.FieldSet(0).With(flow.FieldLogStatus))
				if len(truth) < 500 || bad < 500 {
					t.Fatalf("%s: the text form has %d records and %d bad lines: the rows do not test much", q.name, len(truth), bad)
				}
				if !slices.Equal(got, truth) || gotSt.SkippedLines != bad {
					t.Errorf("%s: %d records and %d bad rows; the text form has %d and %d", q.name, len(got), gotSt.SkippedLines, len(truth), bad)
				}
				if !slices.Equal(got, want) {
					for i := range min(len(got), len(want)) {
						if got[i] != want[i] {
							t.Fatalf("%s: record %d:\n%s\nwant\n%s", q.name, i, got[i], want[i])
						}
					}
					t.Fatalf("%s: %d records, want %d", q.name, len(got), len(want))
				}
				if gotSt.Records != wantSt.Records || gotSt.SkippedLines != wantSt.SkippedLines || !slices.Equal(gotSt.LineErrors, wantSt.LineErrors) ||
					gotSt.NoData != wantSt.NoData || gotSt.SkipData != wantSt.SkipData {
					t.Errorf("%s: stats %+v\nwant %+v", q.name, gotSt, wantSt)
				}
			}
		})
	}
}

// TestParquetOtherTypes reads a column of a type AWS does not use for its
// field (packets as DOUBLE), with nulls, over many pages: such columns go
// through parquet-go's value reader, a page at a time.
func TestParquetOtherTypes(t *testing.T) {
	type row struct {
		SrcAddr string   `parquet:"srcaddr"`
		Packets *float64 `parquet:"packets,optional"`
		Flag    *bool    `parquet:"is_flag,optional"` // a field flowlog does not know
	}
	rows := make([]row, 3000)
	var sum uint64
	for i := range rows {
		rows[i].SrcAddr = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		if i%7 != 0 {
			v := float64(i)
			rows[i].Packets = &v
			sum += uint64(i)
		}
		if i%3 == 0 {
			b := i%2 == 0
			rows[i].Flag = &b
		}
	}
	data := parquetBytes(t, rows, parquet.PageBufferSize(256))
	got, want, gotSt, _ := readParquetBoth(t, data, everyField, true)
	if !slices.Equal(got, want) || len(got) != len(rows) || gotSt.SkippedLines != 0 {
		t.Fatalf("%d records, %d bad: %v", len(got), gotSt.SkippedLines, gotSt.LineErrors)
	}
	var total uint64
	for i, line := range got {
		var r flow.Record
		f, _ := flow.ParseHeader("srcaddr packets is-flag")
		if err := f.ParseRecord([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		total += r.Packets
		if r.SrcAddr.String() != rows[i].SrcAddr || (rows[i].Flag != nil) != (r.Extra[0] != "") {
			t.Fatalf("row %d: %s", i, line)
		}
	}
	if total != sum {
		t.Errorf("packets %d, want %d", total, sum)
	}
}

// TestParquetCorruptFiles reads thousands of Parquet flow logs with
// bytes overwritten (random bytes, and the large varints and lengths that
// make parquet-go allocate or loop): reading must end, without a panic,
// in an error or in records; when both the column reader and parquet-go's
// value reader read a file to its end they read the same records. (A Go
// fuzz target makes no headway here: parquet-go's buffer pools make its
// coverage differ from run to run.)
func TestParquetCorruptFiles(t *testing.T) {
	rows := mixedRows(60, 2)
	dictRows := make([]mixedDictRow, len(rows))
	for i, r := range rows {
		dictRows[i] = mixedDictRow(r)
	}
	seeds := [][]byte{
		parquetBytes(t, rows),
		parquetBytes(t, rows, parquet.PageBufferSize(128), parquet.DataPageVersion(2), parquet.Compression(&parquet.Gzip)),
		parquetBytes(t, dictRows, parquet.PageBufferSize(128), parquet.Compression(&parquet.Zstd)),
		parquetBytes(t, dictRows, parquet.DictionaryMaxBytes(64), parquet.PageBufferSize(200)),
	}
	read := func(data []byte, values bool) ([]string, Stats, error) {
		e := newEngine(ReadConfig{}, everyField, true)
		v := &recordingVisitor{}
		var st Stats
		rs := &recordStream{e: e, v: v, st: &st, input: "x", scanners: map[string]*Scanner{}}
		err := readParquetColumns(context.Background(), bytes.NewReader(data), int64(len(data)), e.need, true, rs, values)
		return v.lines, st, err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	n := 4000
	if testing.Short() {
		n = 500
	}
	failed, agreed := 0, 0
	for i := range n {
		data := bytes.Clone(seeds[i%len(seeds)])
		for range 1 + rng.IntN(4) {
			k := rng.IntN(len(data) - 4)
			switch rng.IntN(3) {
			case 0:
				data[k] = byte(rng.IntN(256))
			case 1:
				copy(data[k:], []byte{0xff, 0xff, 0xff, 0x7f})
			case 2:
				copy(data[k:], []byte{0x80, 0x80, 0x80, 0x08})
			}
		}
		got, gotSt, gotErr := read(data, false)
		want, wantSt, wantErr := read(data, true)
		if gotErr != nil || wantErr != nil {
			failed++
			continue // a corrupt file may fail either way, at another row
		}
		agreed++
		if !slices.Equal(got, want) || gotSt.SkippedLines != wantSt.SkippedLines {
			t.Fatalf("file %d: column reader: %d records, %d bad; value reader: %d, %d", i, len(got), gotSt.SkippedLines, len(want), wantSt.SkippedLines)
		}
	}
	t.Logf("%d files: %d failed to read, %d read alike", n, failed, agreed)
}
