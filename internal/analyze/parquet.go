package analyze

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowlog/flowlog/flow"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
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
		if lc, ok := schema.Lookup(path...); !ok || lc.MaxRepetitionLevel > 0 {
			continue // a list: no flow log field
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
// unknown ones then fill Record.Extra). Each record goes to rs as a row.
//
// Columns are read a page at a time as typed arrays, not as parquet.Value
// rows: integers straight into the record, and each distinct value of a
// dictionary-encoded string column (addresses, actions, statuses: what
// AWS and flowlog dictionary-encode) parsed once per row group rather than
// once per row. Values read exactly as the text form's would
// (setParquetValue). Columns of other physical types go through
// parquet-go's value reader, a page at a time too.
func readParquet(ctx context.Context, ra io.ReaderAt, size int64, need flow.FieldSet, extra bool, rs *recordStream) error {
	return readParquetColumns(ctx, ra, size, need, extra, rs, false)
}

// readParquetColumns is readParquet; with values set, every column goes
// through parquet-go's value reader (the tests' reference).
func readParquetColumns(ctx context.Context, ra io.ReaderAt, size int64, need flow.FieldSet, extra bool, rs *recordStream, values bool) (err error) {
	// parquet-go trusts the metadata it decodes: a corrupt file must be an
	// error of its input, not a crash of the report. A panic of the report
	// itself (visiting) is no such thing.
	visiting := false
	defer func() {
		if p := recover(); p != nil {
			if visiting {
				panic(p)
			}
			err = fmt.Errorf("read parquet: corrupt file (%v)", p)
		}
	}()
	if err := checkParquetTrailer(ra, size); err != nil {
		return err
	}
	pf, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	format, cols, err := parquetFormat(pf.Schema())
	if err != nil {
		return fmt.Errorf("parquet schema: %w", err)
	}
	// A batch is parquetBatch rows, or all the rows of the largest row
	// group when that is fewer: small files need small buffers.
	batch := 0
	for _, rg := range pf.RowGroups() {
		batch = int(max(int64(batch), min(rg.NumRows(), parquetBatch)))
	}
	var used []*pqColumn
	leaves := pf.Schema().Columns()
	for _, c := range cols {
		if (c.id != noField && need.Has(c.id)) || (c.id == noField && extra) {
			used = append(used, newPQColumn(c, pf.Schema(), leaves[c.leaf], values, batch))
		}
	}
	rs.setFormat(format)
	nExtra := len(format.Unknown())
	var scratch []byte
	rec := &rs.rec
	for _, c := range used {
		c.bind(rec)
	}
	for gi, rg := range pf.RowGroups() {
		chunks := rg.ColumnChunks()
		for _, c := range used {
			c.open(chunks[c.leaf])
		}
		closeAll := func() {
			for _, c := range used {
				c.close()
			}
		}
		for row := int64(0); row < rg.NumRows(); {
			if err := ctx.Err(); err != nil {
				closeAll()
				return err
			}
			n := int(min(rg.NumRows()-row, parquetBatch))
			for _, c := range used {
				if err := c.fill(n); err != nil {
					closeAll()
					return fmt.Errorf("row group %d, column %s: %w", gi, c.name, err)
				}
			}
			// Columns whose values in this batch are all present and
			// valid (the usual case) are set without a check per value.
			var simple flow.FieldSet
			for _, c := range used {
				if c.simple {
					simple = simple.With(c.id)
				}
			}
			for k := 0; k < n; k++ {
				rec.Present = simple
				if extra {
					rec.Extra = make([]string, nExtra)
				}
				var bad error
				ei := 0
				for _, c := range used {
					if c.simple {
						if c.anyNull && c.null[k] {
							rec.SetField(c.id, []byte("-")) // never an error
							continue
						}
						switch c.op {
						case opU64:
							*c.u64 = uint64(c.num[k])
						case opI64:
							*c.i64 = c.num[k]
						case opU16:
							*c.u16 = uint16(c.num[k])
						case opU8:
							*c.u8 = uint8(c.num[k])
						case opAddr:
							*c.ad = c.addr[k]
						case opEnum:
							*c.u8 = c.enum[k]
						}
						continue
					}
					if c.id == noField {
						if !c.null[k] {
							rec.Extra[ei] = c.text(k)
						}
						ei++
						continue
					}
					if err := c.set(rec, k, &scratch); err != nil && bad == nil {
						bad = err
					}
				}
				visiting = true
				rs.row(row+int64(k)+1, bad)
				visiting = false
			}
			row += int64(n)
		}
		closeAll()
	}
	return nil
}

// pqOp is how a simple batch's value goes into the record's field.
type pqOp uint8

const (
	opNone pqOp = iota
	opU64       // u64 = num
	opI64       // i64 = num
	opU16       // u16 = num
	opU8        // u8 = num
	opAddr      // ad = addr
	opEnum      // u8 = enum
)

// bind points the column at its field of r, which every row of the
// column's simple batches is set in.
func (c *pqColumn) bind(r *flow.Record) {
	c.op = opNone
	switch c.kind {
	case kindNumber:
		switch c.id {
		case flow.FieldPackets:
			c.op, c.u64 = opU64, &r.Packets
		case flow.FieldBytes:
			c.op, c.u64 = opU64, &r.Bytes
		case flow.FieldStart:
			c.op, c.i64 = opI64, &r.Start
		case flow.FieldEnd:
			c.op, c.i64 = opI64, &r.End
		case flow.FieldSrcPort:
			c.op, c.u16 = opU16, &r.SrcPort
		case flow.FieldDstPort:
			c.op, c.u16 = opU16, &r.DstPort
		case flow.FieldVersion:
			c.op, c.u8 = opU8, &r.Version
		case flow.FieldProtocol:
			c.op, c.u8 = opU8, &r.Protocol
		case flow.FieldTCPFlags:
			c.op, c.u8 = opU8, &r.TCPFlags
		case flow.FieldTrafficPath:
			c.op, c.u8 = opU8, &r.TrafficPath
		}
	case kindAddr:
		c.op = opAddr
		switch c.id {
		case flow.FieldSrcAddr:
			c.ad = &r.SrcAddr
		case flow.FieldDstAddr:
			c.ad = &r.DstAddr
		case flow.FieldPktSrcAddr:
			c.ad = &r.PktSrcAddr
		default:
			c.ad = &r.PktDstAddr
		}
	case kindAction:
		c.op, c.u8 = opEnum, (*uint8)(&r.Action)
	case kindStatus:
		c.op, c.u8 = opEnum, (*uint8)(&r.LogStatus)
	}
}

// pqMode is how a column's values are decoded.
type pqMode uint8

const (
	pqInts    pqMode = iota // INT32 or INT64 pages: num
	pqStrings               // BYTE_ARRAY pages: str, and ent for dictionary pages
	pqValues                // anything else: parquet-go's values
)

// pqColumn reads one column of the row groups a batch of rows at a time:
// after fill(n), row k of the batch is null[k] or, by mode, num[k], the
// dictionary entry ent[k] or (ent[k] = -1) the bytes str[k], or vals[k].
type pqColumn struct {
	parquetColumn
	kind   valueKind
	mode   pqMode
	int32s bool // the physical type is INT32
	maxDef byte

	// The batch.
	null []bool
	num  []int64
	str  [][]byte
	ent  []int32
	vals []parquet.Value
	// simple: every row of the batch is null or has a valid value, in num
	// for a number, addr for an address, enum for an action or a status.
	simple  bool
	anyNull bool
	addr    []netip.Addr
	enum    []uint8
	// op says which of u64, i64, u16, u8 or ad points at the field of the
	// record that simple batches set (bind).
	op  pqOp
	u64 *uint64
	i64 *int64
	u16 *uint16
	u8  *uint8
	ad  *netip.Addr

	// The column chunk being read.
	pages parquet.Pages
	pv    parquet.ValueReader // the page's values (pqValues)
	page  parquet.Page        // the current page; nil before the first
	done  []parquet.Page      // pages read to their end, released at the next fill (str may point into them)
	defs  []byte              // the page's definition levels; nil: no nulls
	nulls int                 // null rows in the page
	pos   int                 // next row of the page
	vpos  int                 // next non-null value of the page
	rows  int                 // rows of the page
	ints  []int64             // the page's values (pqInts, plain)
	idx   []int32             // the page's dictionary indexes
	data  []byte              // the page's byte arrays (pqStrings, plain)
	offs  []uint32
	dict  parquet.Dictionary // the chunk's dictionary, once a page uses it
	dInts []int64            // its values (pqInts)
	dData []byte             // its byte arrays (pqStrings)
	dOffs []uint32
	// Parsed dictionary entries of address, action and status columns:
	// state 0 not yet parsed, 1 parsed (addr or enum), 2 a bad value (errs).
	dState []uint8
	dAddr  []netip.Addr
	dEnum  []uint8
	dErr   map[int32]error
}

func newPQColumn(c parquetColumn, schema *parquet.Schema, path []string, values bool, batch int) *pqColumn {
	pc := &pqColumn{parquetColumn: c, kind: kindOf(c.id), mode: pqValues}
	if c.id == noField {
		pc.kind = kindOther
	}
	leaf, ok := schema.Lookup(path...)
	if ok && !values && leaf.MaxDefinitionLevel <= 1 {
		pc.maxDef = byte(leaf.MaxDefinitionLevel)
		switch leaf.Node.Type().Kind() {
		case parquet.Int32:
			pc.mode, pc.int32s = pqInts, true
		case parquet.Int64:
			pc.mode = pqInts
		case parquet.ByteArray:
			pc.mode = pqStrings
		}
	}
	pc.null = make([]bool, batch)
	switch pc.mode {
	case pqInts:
		pc.num = make([]int64, batch)
	case pqStrings:
		pc.str = make([][]byte, batch)
		pc.ent = make([]int32, batch)
		switch pc.kind {
		case kindAddr:
			pc.addr = make([]netip.Addr, batch)
		case kindAction, kindStatus:
			pc.enum = make([]uint8, batch)
		}
	default:
		pc.vals = make([]parquet.Value, batch)
	}
	return pc
}

// open starts reading column chunk cc.
func (c *pqColumn) open(cc parquet.ColumnChunk) {
	c.pages = cc.Pages()
	c.page, c.dict = nil, nil
	c.pos, c.rows = 0, 0
}

// close ends the column chunk and hands its pages back to parquet-go.
func (c *pqColumn) close() {
	c.pv = nil
	c.release()
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}

func (c *pqColumn) release() {
	for i, p := range c.done {
		parquet.Release(p)
		c.done[i] = nil
	}
	c.done = c.done[:0]
}

// fill decodes the next n rows.
func (c *pqColumn) fill(n int) error {
	c.simple = false
	if err := c.decode(n); err != nil {
		return err
	}
	if c.id == noField {
		return nil
	}
	switch {
	case c.op == opNone:
	case c.mode == pqInts && c.kind == kindNumber:
		c.simple = c.inRange(n, numberLimit(c.id))
	case c.mode == pqStrings && (c.kind == kindAddr || c.kind == kindAction || c.kind == kindStatus):
		c.simple = c.resolve(n)
	}
	return nil
}

// numberLimit is the largest value of the numeric field id.
func numberLimit(id flow.FieldID) int64 {
	switch id {
	case flow.FieldSrcPort, flow.FieldDstPort:
		return math.MaxUint16
	case flow.FieldVersion, flow.FieldProtocol, flow.FieldTCPFlags, flow.FieldTrafficPath:
		return math.MaxUint8
	}
	return math.MaxInt64
}

// inRange reports whether every value of the n rows of the batch that
// is not null is in [0, limit].
func (c *pqColumn) inRange(n int, limit int64) bool {
	ok := true
	if c.anyNull {
		for k, v := range c.num[:n] {
			ok = ok && (c.null[k] || v >= 0 && v <= limit)
		}
		return ok
	}
	for _, v := range c.num[:n] {
		ok = ok && v >= 0 && v <= limit
	}
	return ok
}

// resolve fills addr or enum for the n rows of the batch, and reports
// whether every row is null or has a valid value. A dictionary entry is
// parsed once per row group; other values (the column or the page is not
// dictionary-encoded) as the Scanner parses them.
func (c *pqColumn) resolve(n int) bool {
	var r flow.Record
	for k, e := range c.ent[:n] {
		if c.anyNull && c.null[k] {
			continue
		}
		if e < 0 {
			if c.kind == kindAddr {
				if a, ok := parseIPv4(c.str[k]); ok {
					c.addr[k] = a
					continue
				}
			}
			if r.SetField(c.id, c.str[k]) != nil {
				return false
			}
			switch c.kind {
			case kindAddr:
				c.addr[k] = addrOf(&r, c.id)
			case kindAction:
				c.enum[k] = uint8(r.Action)
			case kindStatus:
				c.enum[k] = uint8(r.LogStatus)
			}
			continue
		}
		if c.dState[e] == 0 {
			// The first row with this entry: parse it as the text would
			// be and keep what came of it for the others.
			if err := r.SetField(c.id, c.strAt(k)); err != nil {
				if c.dErr == nil {
					c.dErr = map[int32]error{}
				}
				c.dErr[e] = err
				c.dState[e] = 2
			} else {
				switch c.kind {
				case kindAddr:
					c.dAddr[e] = addrOf(&r, c.id)
				case kindAction:
					c.dEnum[e] = uint8(r.Action)
				case kindStatus:
					c.dEnum[e] = uint8(r.LogStatus)
				}
				c.dState[e] = 1
			}
		}
		if c.dState[e] != 1 {
			return false
		}
		if c.kind == kindAddr {
			c.addr[k] = c.dAddr[e]
		} else {
			c.enum[k] = c.dEnum[e]
		}
	}
	return true
}

// decode reads the next n rows into the batch.
func (c *pqColumn) decode(n int) error {
	c.anyNull = false
	if c.mode == pqValues {
		return c.decodeValues(n)
	}
	c.release()
	for k := 0; k < n; {
		if c.pos == c.rows {
			if err := c.nextPage(); err != nil {
				return err
			}
			continue
		}
		m := min(n-k, c.rows-c.pos)
		if c.nulls == 0 {
			c.fillDense(k, m)
			k += m
			c.pos += m
			continue
		}
		for j := 0; j < m; j, k = j+1, k+1 {
			if c.defs[c.pos+j] < c.maxDef {
				c.null[k] = true
				c.anyNull = true
				continue
			}
			c.null[k] = false
			c.fillDense(k, 1)
		}
		c.pos += m
	}
	return nil
}

// fillDense sets rows k to k+m of the batch from the next m values of
// the page, which are not null.
func (c *pqColumn) fillDense(k, m int) {
	clear(c.null[k : k+m])
	v := c.vpos
	c.vpos += m
	switch {
	case c.mode == pqInts && c.idx != nil:
		num := c.num[k : k+m]
		for j, e := range c.idx[v : v+m] {
			num[j] = c.dInts[e]
		}
	case c.mode == pqInts:
		copy(c.num[k:k+m], c.ints[v:v+m])
	case c.idx != nil:
		// The entry's bytes are only looked at when it is not parsed yet
		// (strAt).
		copy(c.ent[k:k+m], c.idx[v:v+m])
	default:
		for j := range m {
			c.ent[k+j] = -1
			c.str[k+j] = c.data[c.offs[v+j]:c.offs[v+j+1]]
		}
	}
}

// strAt returns the bytes of row k of a BYTE_ARRAY column.
func (c *pqColumn) strAt(k int) []byte {
	if e := c.ent[k]; e >= 0 {
		return c.dData[c.dOffs[e]:c.dOffs[e+1]]
	}
	return c.str[k]
}

// decodeValues reads the next n rows of a pqValues column, a page at a
// time: parquet-go's column chunk value reader misplaces values across
// the pages of optional columns (TestParquetColumnsAsValues caught it).
func (c *pqColumn) decodeValues(n int) error {
	c.anyNull = true // not looked at: pqValues columns are never simple
	for k := 0; k < n; {
		if c.pos == c.rows {
			if c.page != nil {
				parquet.Release(c.page)
				c.page = nil
			}
			p, err := c.pages.ReadPage()
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			if err != nil {
				return err
			}
			c.page, c.pv = p, p.Values()
			c.rows, c.pos = int(p.NumRows()), 0
			continue
		}
		m := min(n-k, c.rows-c.pos)
		vs := c.vals[k : k+m]
		if err := readValues(c.pv, vs); err != nil {
			return err
		}
		for j := range vs {
			c.null[k+j] = vs[j].IsNull()
			// The page's buffers go back to parquet-go with the page.
			vs[j] = vs[j].Clone()
		}
		k += m
		c.pos += m
	}
	return nil
}

// nextPage moves to the next page of the chunk.
func (c *pqColumn) nextPage() error {
	if c.page != nil {
		c.done = append(c.done, c.page)
		c.page = nil
	}
	p, err := c.pages.ReadPage()
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	c.page = p
	c.rows, c.pos, c.vpos = int(p.NumRows()), 0, 0
	c.defs = nil
	if c.maxDef > 0 {
		c.defs = p.DefinitionLevels()
	}
	c.ints, c.idx, c.data, c.offs = nil, nil, nil, nil
	data := p.Data()
	nonNull := c.rows
	if c.defs != nil {
		if len(c.defs) != c.rows {
			return fmt.Errorf("page of %d rows has %d definition levels", c.rows, len(c.defs))
		}
		nonNull = 0
		for _, d := range c.defs {
			if d == c.maxDef {
				nonNull++
			}
		}
	}
	c.nulls = c.rows - nonNull
	if d := p.Dictionary(); d != nil {
		if data.Kind() != encoding.Int32 {
			return fmt.Errorf("dictionary page of %s values", data.Kind())
		}
		c.idx = data.Int32()
		if d != c.dict {
			if err := c.setDictionary(d); err != nil {
				return err
			}
		}
		n := int32(len(c.dInts))
		if c.mode == pqStrings {
			n = int32(len(c.dOffs) - 1)
		}
		for _, i := range c.idx[:min(nonNull, len(c.idx))] {
			if i < 0 || i >= n {
				return fmt.Errorf("dictionary index %d of %d entries", i, n)
			}
		}
	} else {
		switch {
		case c.mode == pqInts && c.int32s && data.Kind() == encoding.Int32:
			c.ints = widen(data.Int32(), c.ints)
		case c.mode == pqInts && !c.int32s && data.Kind() == encoding.Int64:
			c.ints = data.Int64()
		case c.mode == pqStrings && data.Kind() == encoding.ByteArray:
			c.data, c.offs = data.ByteArray()
		default:
			return fmt.Errorf("page of %s values in a %s column", data.Kind(), c.kindName())
		}
	}
	have := len(c.ints) + len(c.idx) + max(len(c.offs)-1, 0)
	if have < nonNull {
		return fmt.Errorf("page of %d values holds %d", nonNull, have)
	}
	return nil
}

func (c *pqColumn) kindName() string {
	switch {
	case c.mode == pqStrings:
		return "BYTE_ARRAY"
	case c.int32s:
		return "INT32"
	}
	return "INT64"
}

// widen returns the int32s as int64s, in buf's array when it is large
// enough.
func widen(vs []int32, buf []int64) []int64 {
	if cap(buf) < len(vs) {
		buf = make([]int64, len(vs))
	}
	buf = buf[:len(vs)]
	for i, v := range vs {
		buf[i] = int64(v)
	}
	return buf
}

// setDictionary takes the chunk's dictionary d.
func (c *pqColumn) setDictionary(d parquet.Dictionary) error {
	c.dict = d
	data := d.Page().Data()
	switch {
	case c.mode == pqInts && c.int32s && data.Kind() == encoding.Int32:
		c.dInts = widen(data.Int32(), nil)
	case c.mode == pqInts && !c.int32s && data.Kind() == encoding.Int64:
		c.dInts = data.Int64()
	case c.mode == pqStrings && data.Kind() == encoding.ByteArray:
		c.dData, c.dOffs = data.ByteArray()
		if len(c.dOffs) == 0 {
			c.dOffs = []uint32{0}
		}
		n := len(c.dOffs) - 1
		switch c.kind {
		case kindAddr, kindAction, kindStatus:
			c.dState = resize(c.dState, n)
			clear(c.dState)
			if c.kind == kindAddr {
				c.dAddr = resize(c.dAddr, n)
			} else {
				c.dEnum = resize(c.dEnum, n)
			}
			clear(c.dErr)
		}
	default:
		return fmt.Errorf("dictionary of %s values in a %s column", data.Kind(), c.kindName())
	}
	return nil
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// set sets the field of row k of the batch in r, as the text value would.
func (c *pqColumn) set(r *flow.Record, k int, scratch *[]byte) error {
	if c.null[k] {
		return r.SetField(c.id, []byte("-"))
	}
	switch c.mode {
	case pqInts:
		n := c.num[k]
		if c.kind == kindNumber && n >= 0 && setNumber(r, c.id, uint64(n)) {
			r.Present |= 1 << c.id
			return nil
		}
		*scratch = strconv.AppendInt((*scratch)[:0], n, 10)
		return r.SetField(c.id, *scratch)
	case pqStrings:
		e := c.ent[k]
		if e < 0 || c.dState == nil {
			b := c.strAt(k)
			if c.kind == kindAddr {
				if a, ok := parseIPv4(b); ok {
					setAddr(r, c.id, a)
					r.Present |= 1 << c.id
					return nil
				}
			}
			return r.SetField(c.id, b)
		}
		switch c.dState[e] {
		case 0:
			// The first row with this entry: parse it as the text would be
			// and keep what came of it for the others.
			err := r.SetField(c.id, c.strAt(k))
			if err != nil {
				if c.dErr == nil {
					c.dErr = map[int32]error{}
				}
				c.dErr[e] = err
				c.dState[e] = 2
				return err
			}
			switch c.kind {
			case kindAddr:
				c.dAddr[e] = addrOf(r, c.id)
			case kindAction:
				c.dEnum[e] = uint8(r.Action)
			case kindStatus:
				c.dEnum[e] = uint8(r.LogStatus)
			}
			c.dState[e] = 1
			return nil
		case 2:
			return c.dErr[e]
		}
		switch c.kind {
		case kindAddr:
			setAddr(r, c.id, c.dAddr[e])
		case kindAction:
			r.Action = flow.Action(c.dEnum[e])
		case kindStatus:
			r.LogStatus = flow.LogStatus(c.dEnum[e])
		}
		r.Present |= 1 << c.id
		return nil
	}
	return setParquetValue(r, c.id, c.vals[k], scratch)
}

// text is row k's value as a string, for an unknown field.
func (c *pqColumn) text(k int) string {
	switch c.mode {
	case pqInts:
		return strconv.FormatInt(c.num[k], 10)
	case pqStrings:
		return string(c.strAt(k))
	}
	return valueString(c.vals[k])
}

// checkParquetTrailer checks the magic numbers at both ends of the file
// and that the footer length the trailer gives fits in the file:
// parquet-go allocates that length before it compares it with the file's
// size, so a corrupt length would cost gigabytes of memory.
func checkParquetTrailer(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("open parquet: %d bytes, too short for a Parquet file", size)
	}
	var head [4]byte
	var tail [8]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	if string(head[:]) != parquetMagic || string(tail[4:]) != parquetMagic {
		return errors.New("open parquet: no PAR1 magic number at the end")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("open parquet: footer of %d bytes in a file of %d", n, size)
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
