package parquet

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	pq "github.com/parquet-go/parquet-go"

	"github.com/flowlog/flowlog/flow"
)

// Codec is the compression of a file's column chunks.
type Codec string

const (
	// Gzip is what AWS writes by default.
	Gzip Codec = "gzip"
	// Zstd compresses about as well at a fraction of gzip's CPU time.
	Zstd Codec = "zstd"
)

// ParseCodec accepts gzip or zstd in any case; "" means Gzip.
func ParseCodec(s string) (Codec, error) {
	switch c := Codec(strings.ToLower(s)); c {
	case "":
		return Gzip, nil
	case Gzip, Zstd:
		return c, nil
	}
	return "", fmt.Errorf("parquet compression %q: want gzip or zstd", s)
}

// Column describes one column of the Parquet schema of a log format.
type Column struct {
	// Name is the column name: the field's name with '-' replaced by '_'.
	Name string
	// Field is the field's name as formats write it (log-status).
	Field string
	// Physical is the Parquet physical type: INT32, INT64 or BYTE_ARRAY.
	Physical string
	// Logical is the annotation: INT(32,true), INT(64,true) or STRING.
	Logical string
}

// kind is how a column's values are stored.
type kind uint8

const (
	kindString kind = iota
	kindInt32
	kindInt64
)

// fieldKind returns how the values of the known field id are stored, per the
// Parquet types AWS documents for each field.
func fieldKind(id flow.FieldID) kind {
	switch id {
	case flow.FieldVersion, flow.FieldSrcPort, flow.FieldDstPort, flow.FieldProtocol,
		flow.FieldTCPFlags, flow.FieldTrafficPath:
		return kindInt32
	case flow.FieldPackets, flow.FieldBytes, flow.FieldStart, flow.FieldEnd:
		return kindInt64
	}
	return kindString
}

// ColumnName returns the Parquet column name of a field: its name with '-'
// replaced by '_' (log-status → log_status).
func ColumnName(field string) string { return strings.ReplaceAll(field, "-", "_") }

// FieldName returns the field name of a Parquet column: its name with '_'
// replaced by '-'. No field name of AWS has an '_', so this undoes
// ColumnName.
func FieldName(column string) string { return strings.ReplaceAll(column, "_", "-") }

// column is one column of a format as the writer fills it.
type column struct {
	name  string
	id    flow.FieldID // the known field, when extra < 0
	extra int          // index into Record.Extra of an unknown field, or -1
	kind  kind
}

// columnsOf lists the columns of f in format order, known and unknown
// fields alike.
func columnsOf(f *flow.Format) []column {
	names := strings.Fields(f.Header())
	cols := make([]column, 0, len(names))
	extra := 0
	for _, name := range names {
		c := column{name: ColumnName(name), extra: -1, kind: kindString}
		if id, ok := flow.FieldByName(name); ok {
			c.id, c.kind = id, fieldKind(id)
		} else {
			c.extra = extra
			extra++
		}
		cols = append(cols, c)
	}
	return cols
}

// Columns returns the Parquet schema of f: one column per field, in format
// order, typed as AWS documents (spec §5).
func Columns(f *flow.Format) []Column {
	cols := columnsOf(f)
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Name: c.name, Field: FieldName(c.name)}
		switch c.kind {
		case kindInt32:
			out[i].Physical, out[i].Logical = "INT32", "INT(32,true)"
		case kindInt64:
			out[i].Physical, out[i].Logical = "INT64", "INT(64,true)"
		default:
			out[i].Physical, out[i].Logical = "BYTE_ARRAY", "STRING"
		}
	}
	return out
}

// schemaName is the name of the schema's root, as Apache Arrow and
// parquet-mr name it.
const schemaName = "schema"

// Schema returns the parquet-go schema of f (Columns). Every column is
// optional: a value the text form writes as "-" is a null. String columns
// are dictionary-encoded, as they repeat (ids, actions, statuses); so are
// the small integer columns and start and end, which take few values in a
// 5-minute object. A dictionary that grows past dictionaryMaxBytes falls
// back to plain encoding.
func Schema(f *flow.Format) *pq.Schema {
	cols := columnsOf(f)
	fields := make([]reflect.StructField, len(cols))
	for i, c := range cols {
		var t reflect.Type
		switch c.kind {
		case kindInt32:
			t = reflect.TypeFor[*int32]()
		case kindInt64:
			t = reflect.TypeFor[*int64]()
		default:
			t = reflect.TypeFor[*string]()
		}
		tag := c.name + ",optional"
		if dictionaryEncoded(c) {
			tag += ",dict"
		}
		fields[i] = reflect.StructField{
			Name: "C" + strconv.Itoa(i),
			Type: t,
			Tag:  reflect.StructTag(`parquet:` + strconv.Quote(tag)),
		}
	}
	// The struct type only describes the columns, in order (a parquet.Group
	// would sort them by name); rows are never Go values of it.
	root := pq.SchemaOf(reflect.New(reflect.StructOf(fields)).Elem().Interface())
	return pq.NewSchema(schemaName, root)
}

// dictionaryEncoded reports whether the writer dictionary-encodes column c:
// all but the columns whose values rarely repeat (packets, bytes).
func dictionaryEncoded(c column) bool {
	return c.extra >= 0 || c.id != flow.FieldPackets && c.id != flow.FieldBytes
}
