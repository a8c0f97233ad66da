package parquet

import (
	"bytes"
	"slices"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/flowlog/flowlog/flow"
)

// TestReaderOtherWriters reads files written another way than ours, as
// other tools write flow logs to Parquet (Athena CTAS, Glue, Spark with the
// bigint protocol of AWS's Athena DDL): every number INT64, required
// columns, columns in another order, an unknown field, a different root
// name. The records are the same as from the text form.
func TestReaderOtherWriters(t *testing.T) {
	type row struct {
		LogStatus   string  `parquet:"log_status"`
		Version     int64   `parquet:"version"`
		AccountID   string  `parquet:"account_id"`
		InterfaceID string  `parquet:"interface_id"`
		Srcaddr     *string `parquet:"srcaddr"`
		Dstaddr     *string `parquet:"dstaddr"`
		Srcport     *int64  `parquet:"srcport"`
		Dstport     *int64  `parquet:"dstport"`
		Protocol    *int64  `parquet:"protocol"`
		Packets     *int64  `parquet:"packets"`
		Bytes       *int64  `parquet:"bytes"`
		Start       int64   `parquet:"start"`
		End         int64   `parquet:"end"`
		Action      *string `parquet:"action"`
		TgwID       *string `parquet:"tgw_id"`
	}
	s := func(v string) *string { return &v }
	i := func(v int64) *int64 { return &v }
	rows := []row{
		{"OK", 2, "123456789012", "eni-1235b8ca123456789", s("172.31.16.139"), s("172.31.16.21"), i(20641), i(22), i(6), i(20), i(4249), 1418530010, 1418530070, s("ACCEPT"), s("tgw-0123")},
		{"NODATA", 2, "123456789012", "eni-1235b8ca123456789", nil, nil, nil, nil, nil, nil, nil, 1431280876, 1431280934, nil, nil},
	}
	var buf bytes.Buffer
	w := pq.NewGenericWriter[row](&buf, pq.NewSchema("spark_schema", pq.SchemaOf(row{})))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, got := readAll(t, buf.Bytes())
	const header = "log-status version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action tgw-id"
	if f.Header() != header {
		t.Fatalf("format %q, want %q", f.Header(), header)
	}
	want := []string{
		"OK 2 123456789012 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT tgw-0123",
		"NODATA 2 123456789012 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - -",
	}
	if have := lines(f, got); !slices.Equal(have, want) {
		t.Fatalf("read\n%q\nwant\n%q", have, want)
	}
	if got[0].Protocol != 6 || got[0].LogStatus != flow.LogStatusOK || got[1].Present.Has(flow.FieldSrcAddr) {
		t.Fatalf("records %+v", got)
	}
}

// TestReaderRefusesBadValues: a value the field cannot hold is an error
// naming the column, as the text reader's would be.
func TestReaderRefusesBadValues(t *testing.T) {
	type row struct {
		Version int64 `parquet:"version"`
		Srcport int64 `parquet:"srcport"`
	}
	var buf bytes.Buffer
	if err := pq.Write(&buf, []row{{2, 70000}}); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]flow.Record, 1)
	if _, err := rd.Read(recs); err == nil || !bytes.Contains([]byte(err.Error()), []byte("parquet column srcport")) {
		t.Fatalf("port 70000 read with error %v", err)
	}
}
