package parquet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	pq "github.com/parquet-go/parquet-go"

	"github.com/flowlog/flowlog/flow"
)

// Reader reads the records of a Parquet flow log file, written by AWS or by
// flowlog: each top-level column is a field named as ColumnName names it
// (fields flowlog does not know are kept, as Format.Unknown and
// Record.Extra), and each value is read exactly as the text form's value
// would be (Record.SetField), a null being "-". Integer columns are read
// whatever their width, so files that store a field in a wider type than
// AWS documents still read.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	file   *pq.File
	format *flow.Format
	cols   []readColumn // by leaf column index
	others []flow.FieldID
	nextRG int
	rows   pq.Rows
	buf    []pq.Row
	row    int // next row of buf
	nbuf   int // rows in buf
	text   []byte
}

// readColumn says where a column's values go.
type readColumn struct {
	name  string
	id    flow.FieldID
	extra int // index into Record.Extra, or -1 for a known field
}

// NewReader opens the Parquet file in r, of size bytes, and checks that its
// columns are flow log fields.
func NewReader(r io.ReaderAt, size int64) (rd *Reader, err error) {
	// parquet-go trusts the footer it decodes: a corrupt file must be an
	// error, not a crash of the program reading it.
	defer recoverCorrupt(&err)
	if err := checkTrailer(r, size); err != nil {
		return nil, err
	}
	f, err := pq.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("open parquet file: %w", err)
	}
	root := f.Root()
	leaves := root.Columns()
	names := make([]string, len(leaves))
	for i, c := range leaves {
		if !c.Leaf() || c.Repeated() {
			return nil, fmt.Errorf("parquet column %s: nested or repeated, not a flow log field", c.Name())
		}
		names[i] = FieldName(c.Name())
	}
	if len(names) == 0 {
		return nil, errors.New("parquet file has no columns")
	}
	format, err := flow.ParseHeader(strings.Join(names, " "))
	if err != nil {
		return nil, fmt.Errorf("parquet columns are not flow log fields: %w", err)
	}
	rd = &Reader{file: f, format: format, cols: make([]readColumn, len(leaves))}
	extra := 0
	for i, name := range names {
		rd.cols[i] = readColumn{name: leaves[i].Name(), extra: -1}
		if id, ok := flow.FieldByName(name); ok {
			rd.cols[i].id = id
		} else {
			rd.cols[i].extra = extra
			extra++
		}
	}
	for id := range flow.FieldID(flow.NumFields) {
		if !format.Has(id) {
			rd.others = append(rd.others, id)
		}
	}
	return rd, nil
}

// checkTrailer checks the magic numbers at both ends of the file and that
// the footer length the trailer gives fits in the file: parquet-go
// allocates that length before it compares it with the file's size, so a
// corrupt length would cost gigabytes of memory.
func checkTrailer(r io.ReaderAt, size int64) error {
	const magic = "PAR1"
	if size < 12 {
		return fmt.Errorf("open parquet file: %d bytes, too short for a Parquet file", size)
	}
	var head [4]byte
	var tail [8]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return fmt.Errorf("open parquet file: %w", err)
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("open parquet file: %w", err)
	}
	if string(head[:]) != magic || string(tail[4:]) != magic {
		return errors.New("open parquet file: not a Parquet file (no PAR1 magic number at both ends)")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("open parquet file: footer of %d bytes in a file of %d", n, size)
	}
	return nil
}

func recoverCorrupt(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("read parquet file: corrupt (%v)", p)
	}
}

// Format returns the log format the file's columns form: its Header is the
// header line of the same records as a text object.
func (rd *Reader) Format() *flow.Format { return rd.format }

// NumRows returns the number of records in the file.
func (rd *Reader) NumRows() int64 { return rd.file.NumRows() }

// Read reads up to len(recs) records into recs and returns how many it
// read; at the end of the file it returns 0 and io.EOF. Every field of the
// format is set from the file; every other field is cleared.
func (rd *Reader) Read(recs []flow.Record) (n int, err error) {
	defer recoverCorrupt(&err)
	for n < len(recs) {
		if rd.row == rd.nbuf {
			if err := rd.fill(len(recs) - n); err != nil {
				return n, err
			}
		}
		if err := rd.record(rd.buf[rd.row], &recs[n]); err != nil {
			return n, err
		}
		rd.row++
		n++
	}
	return n, nil
}

// fill reads the next rows, up to want, into buf.
func (rd *Reader) fill(want int) error {
	want = min(max(want, 1), 1024)
	if cap(rd.buf) < want {
		rd.buf = make([]pq.Row, want)
	}
	rd.buf = rd.buf[:want]
	for {
		if rd.rows == nil {
			groups := rd.file.RowGroups()
			if rd.nextRG == len(groups) {
				return io.EOF
			}
			rd.rows = groups[rd.nextRG].Rows()
			rd.nextRG++
		}
		n, err := rd.rows.ReadRows(rd.buf)
		if n > 0 {
			rd.row, rd.nbuf = 0, n
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read parquet row group %d: %w", rd.nextRG-1, err)
		}
		rd.rows.Close()
		rd.rows = nil
	}
}

// record sets rec from one row.
func (rd *Reader) record(row pq.Row, rec *flow.Record) error {
	if len(rd.format.Unknown()) > 0 {
		rec.Extra = make([]string, len(rd.format.Unknown()))
	} else {
		rec.Extra = nil
	}
	for _, id := range rd.others {
		rec.SetField(id, dash)
	}
	if len(row) != len(rd.cols) {
		return fmt.Errorf("parquet row has %d values, the schema %d columns", len(row), len(rd.cols))
	}
	for _, v := range row {
		ci := v.Column()
		if ci < 0 || ci >= len(rd.cols) {
			return fmt.Errorf("parquet value of column %d: no such column", ci)
		}
		c := &rd.cols[ci]
		rd.text = appendValue(rd.text[:0], v)
		if c.extra >= 0 {
			if !v.IsNull() {
				rec.Extra[c.extra] = string(rd.text)
			}
			continue
		}
		if err := rec.SetField(c.id, rd.text); err != nil {
			return fmt.Errorf("parquet column %s: %w", c.name, err)
		}
	}
	return nil
}

var dash = []byte{'-'}

// String returns the schema of the file in Parquet's message notation.
func (rd *Reader) String() string { return rd.file.Schema().String() }
