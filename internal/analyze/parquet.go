package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/flowlog/flowlog/flow"
	"github.com/parquet-go/parquet-go"
)

// parquetMagic starts (and ends) every Parquet file.
const parquetMagic = "PAR1"

// parquetBatch is how many rows are decoded per column at a time.
const parquetBatch = 1024

// parquetColumn is one top-level column of a Parquet flow log.
type parquetColumn struct {
	leaf int          // leaf column index in the file
	id   flow.FieldID // the field it holds, noField for unknown ones
	name string       // field name: the column name with '_' as '-'
}

// parquetFormat maps a Parquet file's columns to flow log fields. Columns
// are found by name, as AWS and flowlog name them (spec §5: the field name
// with '-' replaced by '_'), so any subset of fields in any order reads.
// Columns whose name is no field flowlog knows are kept as unknown fields
// when they look like field names, and ignored otherwise (nested columns
// among them).
func parquetFormat(schema *parquet.Schema) (*flow.Format, []parquetColumn, error) {
	var cols []parquetColumn
	var names []string
	known := 0
	for leaf, path := range schema.Columns() {
		if len(path) != 1 {
			continue
		}
		name := strings.ReplaceAll(strings.ToLower(path[0]), "_", "-")
		id, ok := flow.FieldByName(name)
		if !ok {
			if !fieldLikeName(name) {
				continue
			}
			id = noField
		} else {
			known++
		}
		dup := false
		for _, n := range names {
			dup = dup || n == name
		}
		if dup {
			continue
		}
		cols = append(cols, parquetColumn{leaf: leaf, id: id, name: name})
		names = append(names, name)
	}
	if known == 0 {
		return nil, nil, errors.New("no column is named after a flow log field (version, srcaddr, …; '-' written as '_')")
	}
	f, err := flow.ParseHeader(strings.Join(names, " "))
	if err != nil {
		return nil, nil, fmt.Errorf("columns %s: %w", strings.Join(names, " "), err)
	}
	return f, cols, nil
}

// fieldLikeName reports whether a column name could be a flow log field
// that flowlog does not know: lowercase letters, digits and dashes.
func fieldLikeName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// readParquet reads the records of a Parquet flow log, decoding only the
// columns of the fields in need (all columns when extra is set: the
// unknown ones then fill Record.Extra). Each record goes to fn with a nil
// line.
func readParquet(ctx context.Context, ra io.ReaderAt, size int64, need flow.FieldSet, extra bool, rs *recordStream) error {
	pf, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	format, cols, err := parquetFormat(pf.Schema())
	if err != nil {
		return fmt.Errorf("parquet schema: %w", err)
	}
	var used []parquetColumn
	for _, c := range cols {
		if (c.id != noField && need.Has(c.id)) || (c.id == noField && extra) {
			used = append(used, c)
		}
	}
	rs.setFormat(format)
	nExtra := len(format.Unknown())
	values := make([][]parquet.Value, len(used))
	for i := range values {
		values[i] = make([]parquet.Value, parquetBatch)
	}
	var scratch []byte
	rec := &rs.rec
	for gi, rg := range pf.RowGroups() {
		chunks := rg.ColumnChunks()
		readers := make([]parquet.ColumnChunkValueReader, len(used))
		for i, c := range used {
			readers[i] = parquet.NewColumnChunkValueReader(chunks[c.leaf])
		}
		closeAll := func() {
			for _, r := range readers {
				r.Close()
			}
		}
		for row := int64(0); row < rg.NumRows(); {
			if err := ctx.Err(); err != nil {
				closeAll()
				return err
			}
			n := int(min(rg.NumRows()-row, parquetBatch))
			for i, r := range readers {
				if err := readValues(r, values[i][:n]); err != nil {
					closeAll()
					return fmt.Errorf("row group %d, column %s: %w", gi, used[i].name, err)
				}
			}
			for k := 0; k < n; k++ {
				rec.Present = 0
				if extra {
					rec.Extra = make([]string, nExtra)
				}
				var bad error
				ei := 0
				for i, c := range used {
					v := values[i][k]
					if c.id == noField {
						if !v.IsNull() {
							rec.Extra[ei] = valueString(v)
						}
						ei++
						continue
					}
					if err := setParquetValue(rec, c.id, v, &scratch); err != nil && bad == nil {
						bad = err
					}
				}
				rs.row(row+int64(k)+1, bad)
			}
			row += int64(n)
		}
		closeAll()
	}
	return nil
}

// readValues fills vs from r, across pages.
func readValues(r parquet.ValueReader, vs []parquet.Value) error {
	for len(vs) > 0 {
		n, err := r.ReadValues(vs)
		vs = vs[n:]
		if err == io.EOF && len(vs) > 0 {
			return io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return err
		}
		if n == 0 && err == nil {
			return io.ErrNoProgress
		}
	}
	return nil
}

// setParquetValue sets field id of r from a Parquet value: integers
// directly (range-checked as the text would be), everything else as the
// text ParseRecord would read.
func setParquetValue(r *flow.Record, id flow.FieldID, v parquet.Value, scratch *[]byte) error {
	if v.IsNull() {
		return r.SetField(id, []byte("-"))
	}
	switch v.Kind() {
	case parquet.Int32, parquet.Int64:
		n := v.Int64()
		if v.Kind() == parquet.Int32 {
			n = int64(v.Int32())
		}
		if kindOf(id) == kindNumber && n >= 0 && setNumber(r, id, uint64(n)) {
			r.Present = r.Present.With(id)
			return nil
		}
		*scratch = strconv.AppendInt((*scratch)[:0], n, 10)
		return r.SetField(id, *scratch)
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return r.SetField(id, v.ByteArray())
	}
	*scratch = append((*scratch)[:0], v.String()...)
	return r.SetField(id, *scratch)
}

func valueString(v parquet.Value) string {
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray())
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10)
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	}
	return v.String()
}
