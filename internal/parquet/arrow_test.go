package parquet

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	arrowpq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/flowlog/flowlog/flow"
)

// The tests in this file read our files with Apache Arrow's Go Parquet
// implementation, which shares no code with parquet-go: its own Thrift
// footer decoder, page decoders and decompressors. What it finds must be
// exactly the text form of the same records, value for value.

// awsSchema is the Parquet schema AWS documents for VPC flow logs (the
// "Parquet data type" of each field in the VPC user guide's table of
// available fields, spec §5): INT_32, INT_64 or STRING per field, column
// names with '_' for '-'. In Parquet terms INT_32 and INT_64 are 32- and
// 64-bit signed integers (physical INT32/INT64, logical Int(32/64, signed),
// converted type INT_32/INT_64), STRING a UTF-8 BYTE_ARRAY (logical String,
// converted type UTF8). Every column is optional: "-" is a null.
var awsSchema = []struct{ column, physical, logical, converted string }{
	{"version", "INT32", "Int(bitWidth=32, isSigned=true)", "INT_32"},
	{"account_id", "BYTE_ARRAY", "String", "UTF8"},
	{"interface_id", "BYTE_ARRAY", "String", "UTF8"},
	{"srcaddr", "BYTE_ARRAY", "String", "UTF8"},
	{"dstaddr", "BYTE_ARRAY", "String", "UTF8"},
	{"srcport", "INT32", "Int(bitWidth=32, isSigned=true)", "INT_32"},
	{"dstport", "INT32", "Int(bitWidth=32, isSigned=true)", "INT_32"},
	{"protocol", "INT32", "Int(bitWidth=32, isSigned=true)", "INT_32"},
	{"packets", "INT64", "Int(bitWidth=64, isSigned=true)", "INT_64"},
	{"bytes", "INT64", "Int(bitWidth=64, isSigned=true)", "INT_64"},
	{"start", "INT64", "Int(bitWidth=64, isSigned=true)", "INT_64"},
	{"end", "INT64", "Int(bitWidth=64, isSigned=true)", "INT_64"},
	{"action", "BYTE_ARRAY", "String", "UTF8"},
	{"log_status", "BYTE_ARRAY", "String", "UTF8"},
	{"vpc_id", "BYTE_ARRAY", "String", "UTF8"},
	{"subnet_id", "BYTE_ARRAY", "String", "UTF8"},
	{"instance_id", "BYTE_ARRAY", "String", "UTF8"},
	{"tcp_flags", "INT32", "Int(bitWidth=32, isSigned=true)", "INT_32"},
	{"type", "BYTE_ARRAY", "String", "UTF8"},
	{"pkt_srcaddr", "BYTE_ARRAY", "String", "UTF8"},
	{"pkt_dstaddr", "BYTE_ARRAY", "String", "UTF8"},
	{"region", "BYTE_ARRAY", "String", "UTF8"},
	{"az_id", "BYTE_ARRAY", "String", "UTF8"},
	{"sublocation_type", "BYTE_ARRAY", "String", "UTF8"},
	{"sublocation_id", "BYTE_ARRAY", "String", "UTF8"},
	{"pkt_src_aws_service", "BYTE_ARRAY", "String", "UTF8"},
	{"pkt_dst_aws_service", "BYTE_ARRAY", "String", "UTF8"},
	{"flow_direction", "BYTE_ARRAY", "String", "UTF8"},
	{"traffic_path", "INT32", "Int(bitWidth=32, isSigned=true)", "INT_32"},
	{"ecs_cluster_arn", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_cluster_name", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_container_instance_arn", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_container_instance_id", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_container_id", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_second_container_id", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_service_name", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_task_definition_arn", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_task_arn", "BYTE_ARRAY", "String", "UTF8"},
	{"ecs_task_id", "BYTE_ARRAY", "String", "UTF8"},
	{"reject_reason", "BYTE_ARRAY", "String", "UTF8"},
}

// TestSchemaMatchesAWS checks the schema of a file of every field, as
// Arrow decodes it from the footer, against AWS's table, and Columns
// against the same table.
func TestSchemaMatchesAWS(t *testing.T) {
	f := allFieldsFormat(t)
	if len(awsSchema) != flow.NumFields {
		t.Fatalf("the table lists %d fields, flowlog knows %d", len(awsSchema), flow.NumFields)
	}
	cols := Columns(f)
	for i, want := range awsSchema {
		c := cols[i]
		wantLogical := map[string]string{"INT32": "INT(32,true)", "INT64": "INT(64,true)", "BYTE_ARRAY": "STRING"}[want.physical]
		if c.Name != want.column || c.Physical != want.physical || c.Logical != wantLogical || c.Field != flow.Fields[i].Name {
			t.Errorf("Columns[%d] = %+v, want %s %s %s", i, c, want.column, want.physical, wantLogical)
		}
	}

	rd := arrowOpen(t, writeFile(t, f, randomRecords(t, 9, f, 10), WriterConfig{}))
	sc := rd.MetaData().Schema
	if sc.Root().Name() != "schema" {
		t.Errorf("root %q, want schema", sc.Root().Name())
	}
	if sc.NumColumns() != len(awsSchema) {
		t.Fatalf("%d columns, want %d", sc.NumColumns(), len(awsSchema))
	}
	for i, want := range awsSchema {
		c := sc.Column(i)
		got := fmt.Sprintf("%s %s %s %s %s def=%d", c.Name(), c.PhysicalType(), c.LogicalType(), c.ConvertedType(),
			c.SchemaNode().RepetitionType(), c.MaxDefinitionLevel())
		exp := fmt.Sprintf("%s %s %s %s %s def=1", want.column, want.physical, want.logical, want.converted, arrowpq.Repetitions.Optional)
		if got != exp {
			t.Errorf("column %d: %s\n                 want %s", i, got, exp)
		}
		if c.ColumnPath().String() != want.column {
			t.Errorf("column %d is nested: %s", i, c.ColumnPath())
		}
	}
}

// TestArrowReadsEveryValue writes the corpora's logs and random records of
// every field with both codecs and several row groups, reads every value of
// every column with Arrow, and compares it with the text form's value.
func TestArrowReadsEveryValue(t *testing.T) {
	sets := corpusLogs(t)
	all := allFieldsFormat(t)
	sets = append(sets, logSet{name: "random", format: all, recs: randomRecords(t, 11, all, 4000)})
	for _, set := range sets {
		for _, cfg := range []WriterConfig{{Codec: Gzip, RowGroupRows: 1500}, {Codec: Zstd}} {
			data := writeFile(t, set.format, set.recs, cfg)
			text := lines(set.format, set.recs)
			compareWithArrow(t, set.name+"/"+string(cfg.Codec), data, set.format, text, cfg.Codec)
		}
	}
}

func arrowOpen(t testing.TB, data []byte) *file.Reader {
	t.Helper()
	rd, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("arrow: open: %v", err)
	}
	return rd
}

// compareWithArrow reads data with Arrow and checks that row i, column j
// holds the j-th value of text[i] ("-" as a null), that every column chunk
// is compressed with codec, and that the columns are those of f.
func compareWithArrow(t *testing.T, name string, data []byte, f *flow.Format, text []string, codec Codec) {
	t.Helper()
	rd := arrowOpen(t, data)
	if rd.NumRows() != int64(len(text)) {
		t.Fatalf("%s: arrow reads %d rows, wrote %d", name, rd.NumRows(), len(text))
	}
	names := strings.Fields(f.Header())
	sc := rd.MetaData().Schema
	if sc.NumColumns() != len(names) {
		t.Fatalf("%s: %d columns, format has %d", name, sc.NumColumns(), len(names))
	}
	for j, n := range names {
		if sc.Column(j).Name() != ColumnName(n) {
			t.Fatalf("%s: column %d is %s, want %s", name, j, sc.Column(j).Name(), ColumnName(n))
		}
	}
	wantCodec := map[Codec]compress.Compression{Gzip: compress.Codecs.Gzip, Zstd: compress.Codecs.Zstd}[codec]
	tokens := make([][]string, len(text))
	for i := range text {
		tokens[i] = strings.Split(text[i], " ")
		if len(tokens[i]) != len(names) {
			t.Fatalf("%s: text line %d has %d values: %q", name, i, len(tokens[i]), text[i])
		}
	}
	row := 0
	for g := 0; g < rd.NumRowGroups(); g++ {
		rg := rd.RowGroup(g)
		n := int(rg.NumRows())
		for j := range names {
			md, err := rg.MetaData().ColumnChunk(j)
			if err != nil {
				t.Fatal(err)
			}
			if md.Compression() != wantCodec {
				t.Errorf("%s: row group %d column %d compressed with %s, want %s", name, g, j, md.Compression(), wantCodec)
			}
			cr, err := rg.Column(j)
			if err != nil {
				t.Fatalf("%s: arrow: column %d: %v", name, j, err)
			}
			got := arrowColumnText(t, cr, n)
			for k, v := range got {
				if want := tokens[row+k][j]; v != want {
					t.Fatalf("%s: row %d column %s: arrow reads %q, text has %q", name, row+k, names[j], v, want)
				}
			}
		}
		row += n
	}
	if row != len(text) {
		t.Fatalf("%s: row groups hold %d rows, want %d", name, row, len(text))
	}
}

// arrowColumnText reads n values of a column chunk with Arrow and returns
// them as text: decimal integers, string bytes, "-" for nulls.
func arrowColumnText(t *testing.T, cr file.ColumnChunkReader, n int) []string {
	t.Helper()
	def := make([]int16, n)
	out := make([]string, 0, n)
	var total int64
	var read int
	var err error
	switch cr := cr.(type) {
	case *file.Int32ColumnChunkReader:
		vals := make([]int32, n)
		total, read, err = cr.ReadBatch(int64(n), vals, def, nil)
		k := 0
		for i := range int(total) {
			if def[i] == 0 {
				out = append(out, "-")
				continue
			}
			out = append(out, strconv.FormatInt(int64(vals[k]), 10))
			k++
		}
	case *file.Int64ColumnChunkReader:
		vals := make([]int64, n)
		total, read, err = cr.ReadBatch(int64(n), vals, def, nil)
		k := 0
		for i := range int(total) {
			if def[i] == 0 {
				out = append(out, "-")
				continue
			}
			out = append(out, strconv.FormatInt(vals[k], 10))
			k++
		}
	case *file.ByteArrayColumnChunkReader:
		vals := make([]arrowpq.ByteArray, n)
		total, read, err = cr.ReadBatch(int64(n), vals, def, nil)
		k := 0
		for i := range int(total) {
			if def[i] == 0 {
				out = append(out, "-")
				continue
			}
			out = append(out, string(vals[k]))
			k++
		}
	default:
		t.Fatalf("arrow: unexpected column reader %T", cr)
	}
	if err != nil {
		t.Fatalf("arrow: read column: %v", err)
	}
	if int(total) != n || read > n {
		t.Fatalf("arrow: read %d levels and %d values of %d rows", total, read, n)
	}
	return out
}
