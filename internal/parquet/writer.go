package parquet

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unsafe"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/flowlog/flowlog/flow"
)

// DefaultRowGroupRows is how many records a row group holds at most: about
// 100 MB of default-format text, so an object cut at 75 MB is one row group,
// as query engines prefer, while the memory a writer holds stays bounded.
const DefaultRowGroupRows = 1 << 20

// dictionaryMaxBytes is the dictionary size past which a column chunk falls
// back to plain encoding (1 MiB, parquet-mr's default page size for
// dictionaries).
const dictionaryMaxBytes = 1 << 20

// batchRows is how many records the writer gathers before it hands their
// values to the column writers.
const batchRows = 1024

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Codec compresses the column chunks; "" means Gzip.
	Codec Codec
	// GzipLevel is the gzip level, 1 (fastest) to 9 (smallest); 0 means
	// the gzip default. Zstd uses its default level.
	GzipLevel int
	// RowGroupRows cuts a row group after this many records; 0 means
	// DefaultRowGroupRows.
	RowGroupRows int64
}

// Validate reports the first setting of c a Writer cannot use.
func (c WriterConfig) Validate() error {
	if _, err := ParseCodec(string(c.Codec)); err != nil {
		return err
	}
	if c.GzipLevel != 0 && (c.GzipLevel < gzip.BestSpeed || c.GzipLevel > gzip.BestCompression) {
		return fmt.Errorf("gzip level %d: want 1 to 9", c.GzipLevel)
	}
	if c.RowGroupRows < 0 {
		return fmt.Errorf("row group rows %d: negative", c.RowGroupRows)
	}
	return nil
}

// codec returns the parquet-go codec of c.
func (c WriterConfig) codec() compress.Codec {
	if c.Codec == Zstd {
		return &zstd.Codec{Level: zstd.DefaultLevel}
	}
	level := c.GzipLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}
	return &gzip.Codec{Level: level}
}

// Writer writes records of one log format as a Parquet file (Schema) to an
// io.Writer. Records are gathered into row groups of RowGroupRows; pages are
// compressed as they fill and each row group is written when it is complete,
// so memory is bounded by one row group's compressed pages. The same records
// always give the same bytes.
//
// A Writer is not safe for concurrent use. After an error the file is
// unusable: Reset it before writing another.
type Writer struct {
	cols    []column
	pw      *pq.Writer
	cw      []*pq.ColumnWriter
	wcfg    *pq.WriterConfig
	vals    [][]pq.Value // per column, values of the batch
	arena   []byte       // text of the batch's addresses and edited strings
	batch   int          // records in the batch
	group   int64        // records in the current row group, batch included
	rows    int64        // records written, batch included
	maxRows int64
	err     error
}

// NewWriter returns a Writer of records in format f to out.
func NewWriter(out io.Writer, f *flow.Format, cfg WriterConfig) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("format: missing")
	}
	if cfg.RowGroupRows == 0 {
		cfg.RowGroupRows = DefaultRowGroupRows
	}
	wcfg, err := pq.NewWriterConfig(
		Schema(f),
		pq.Compression(cfg.codec()),
		// Version 1 data pages are what every reader understands (some
		// query engines still reject version 2).
		pq.DataPageVersion(1),
		pq.DictionaryMaxBytes(dictionaryMaxBytes),
	)
	if err != nil {
		return nil, fmt.Errorf("configure parquet writer: %w", err)
	}
	cols := columnsOf(f)
	w := &Writer{
		cols:    cols,
		pw:      pq.NewWriter(out, wcfg),
		wcfg:    wcfg,
		vals:    make([][]pq.Value, len(cols)),
		maxRows: cfg.RowGroupRows,
	}
	w.cw = w.pw.ColumnWriters()
	if len(w.cw) != len(cols) {
		return nil, fmt.Errorf("parquet schema has %d columns, format %d", len(w.cw), len(cols))
	}
	for i := range w.vals {
		w.vals[i] = make([]pq.Value, 0, batchRows)
	}
	return w, nil
}

// Rows returns the number of records written since NewWriter or Reset.
func (w *Writer) Rows() int64 { return w.rows }

// Write appends recs to the file.
func (w *Writer) Write(recs []flow.Record) error {
	for i := range recs {
		if err := w.WriteRecord(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// WriteRecord appends r to the file. Its values are taken at once; r may be
// reused when WriteRecord returns.
func (w *Writer) WriteRecord(r *flow.Record) error {
	if w.err != nil {
		return w.err
	}
	for i := range w.cols {
		w.vals[i] = append(w.vals[i], w.value(&w.cols[i], i, r))
	}
	w.batch++
	w.rows++
	w.group++
	if w.batch == batchRows {
		if err := w.flushBatch(); err != nil {
			return err
		}
	}
	if w.group >= w.maxRows {
		if err := w.pw.Flush(); err != nil {
			w.err = fmt.Errorf("write parquet row group: %w", err)
			return w.err
		}
		w.group = 0
	}
	return nil
}

// flushBatch hands the gathered values to the column writers, which copy
// them, so the arena can be reused.
func (w *Writer) flushBatch() error {
	if w.batch == 0 {
		return nil
	}
	for i, vals := range w.vals {
		if _, err := w.cw[i].WriteRowValues(vals); err != nil {
			w.err = fmt.Errorf("write parquet column %s: %w", w.cols[i].name, err)
			return w.err
		}
		clear(vals) // drop the references to strings
		w.vals[i] = vals[:0]
	}
	w.batch = 0
	w.arena = w.arena[:0]
	return nil
}

// Close writes what is gathered and the file footer. It does not close the
// io.Writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flushBatch(); err != nil {
		return err
	}
	if err := w.pw.Close(); err != nil {
		w.err = fmt.Errorf("write parquet footer: %w", err)
		return w.err
	}
	return nil
}

// Reset discards what was written and starts a new file to out, keeping the
// writer's batch buffers.
func (w *Writer) Reset(out io.Writer) {
	for i := range w.vals {
		clear(w.vals[i])
		w.vals[i] = w.vals[i][:0]
	}
	w.arena = w.arena[:0]
	w.batch, w.group, w.rows, w.err = 0, 0, 0, nil
	// parquet-go's own Reset after Close reuses footer state and yields a
	// different (smaller) page index than a new writer: a new one keeps
	// the bytes a function of the records alone.
	w.pw = pq.NewWriter(out, w.wcfg)
	w.cw = w.pw.ColumnWriters()
}

// value returns the value of column c (number i) for r: exactly the value
// Format.Append writes, with "-" as a null.
func (w *Writer) value(c *column, i int, r *flow.Record) pq.Value {
	if c.extra >= 0 {
		if c.extra < len(r.Extra) {
			return w.stringValue(r.Extra[c.extra], i)
		}
		return null(i)
	}
	id := c.id
	if !r.Present.Has(id) {
		return null(i)
	}
	switch id {
	case flow.FieldVersion:
		return int32Value(int32(r.Version), i)
	case flow.FieldSrcPort:
		return int32Value(int32(r.SrcPort), i)
	case flow.FieldDstPort:
		return int32Value(int32(r.DstPort), i)
	case flow.FieldProtocol:
		return int32Value(int32(r.Protocol), i)
	case flow.FieldTCPFlags:
		return int32Value(int32(r.TCPFlags), i)
	case flow.FieldTrafficPath:
		return int32Value(int32(r.TrafficPath), i)
	case flow.FieldPackets:
		return int64Value(clampInt64(r.Packets), i)
	case flow.FieldBytes:
		return int64Value(clampInt64(r.Bytes), i)
	case flow.FieldStart:
		return int64Value(r.Start, i)
	case flow.FieldEnd:
		return int64Value(r.End, i)
	case flow.FieldAction:
		return w.stringValue(r.Action.String(), i)
	case flow.FieldLogStatus:
		return w.stringValue(r.LogStatus.String(), i)
	case flow.FieldFlowDirection:
		return w.stringValue(r.FlowDirection.String(), i)
	case flow.FieldSrcAddr, flow.FieldDstAddr, flow.FieldPktSrcAddr, flow.FieldPktDstAddr:
		a := r.SrcAddr
		switch id {
		case flow.FieldDstAddr:
			a = r.DstAddr
		case flow.FieldPktSrcAddr:
			a = r.PktSrcAddr
		case flow.FieldPktDstAddr:
			a = r.PktDstAddr
		}
		if !a.IsValid() {
			return null(i)
		}
		start := len(w.arena)
		w.arena = a.AppendTo(w.arena)
		return w.bytesValue(start, i)
	}
	return w.stringValue(r.StringValue(id), i)
}

// stringValue is a string column's value: null where the text form writes
// "-" (empty or "-"), and whitespace replaced by '_' as the text form does,
// so both forms hold the same values.
func (w *Writer) stringValue(s string, i int) pq.Value {
	if s == "" || s == "-" {
		return null(i)
	}
	for j := 0; j < len(s); j++ {
		if isSpace(s[j]) {
			start := len(w.arena)
			w.arena = append(w.arena, s...)
			for k := start; k < len(w.arena); k++ {
				if isSpace(w.arena[k]) {
					w.arena[k] = '_'
				}
			}
			return w.bytesValue(start, i)
		}
	}
	// The column writer copies the bytes before the string can go away;
	// strings are immutable, so pointing at them is safe.
	return pq.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s))).Level(0, 1, i)
}

// bytesValue is a value of the arena's bytes from start. The arena may move
// as it grows; a value keeps the old array alive until the batch is handed
// over.
func (w *Writer) bytesValue(start, i int) pq.Value {
	return pq.ByteArrayValue(w.arena[start:len(w.arena):len(w.arena)]).Level(0, 1, i)
}

func null(i int) pq.Value                { return pq.NullValue().Level(0, 0, i) }
func int32Value(v int32, i int) pq.Value { return pq.Int32Value(v).Level(0, 1, i) }
func int64Value(v int64, i int) pq.Value { return pq.Int64Value(v).Level(0, 1, i) }
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}
func clampInt64(v uint64) int64 {
	// Counts never come near 2^63; a corrupt one is kept at the largest
	// value INT64 holds rather than turning negative.
	return int64(min(v, math.MaxInt64))
}

// appendValue appends v as the text form writes it: "-" for a null.
// Types AWS does not use for flow logs are written the way a text form of
// them would be, for the field's parser to accept or refuse.
func appendValue(b []byte, v pq.Value) []byte {
	if v.IsNull() {
		return append(b, '-')
	}
	switch v.Kind() {
	case pq.Int32:
		return strconv.AppendInt(b, int64(v.Int32()), 10)
	case pq.Int64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case pq.Boolean:
		return strconv.AppendBool(b, v.Boolean())
	case pq.Float:
		return strconv.AppendFloat(b, float64(v.Float()), 'g', -1, 32)
	case pq.Double:
		return strconv.AppendFloat(b, v.Double(), 'g', -1, 64)
	case pq.ByteArray, pq.FixedLenByteArray:
		return append(b, v.ByteArray()...)
	}
	return append(b, v.String()...)
}
