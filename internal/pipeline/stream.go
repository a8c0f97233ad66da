package pipeline

import (
	"bufio"
	"encoding/binary"
	"io"
	"strconv"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// StreamSink writes records to a stream (stdout) as text lines with a
// header line, like a text object, or as JSON lines.
type StreamSink struct {
	w         *bufio.Writer
	out       io.Writer // under w: NODATA runs bypass w's buffer
	format    *flow.Format
	json      bool
	header    bool
	started   bool
	buf       []byte
	lastFlush time.Time
	// longestLine is the longest record line written so far, line end
	// included: writeRecord keeps that much room in w.
	longestLine int

	// NODATA runs (writeNoDataRun)
	cols   []*flow.Format // one single-column format per column; nil before the first run
	fields []flow.FieldID // the column's fields
	plain  bool           // every column is a known field: runs use templates
	block  []byte         // one window's lines
	holes  []hole         // where block's start and end values are
	runBuf []byte
}

// NewStreamSink writes records in format to w. With asJSON each record is
// one JSON object per line; otherwise text lines, preceded by the header
// line when header is set.
func NewStreamSink(w io.Writer, format *flow.Format, asJSON, header bool) *StreamSink {
	return &StreamSink{w: bufio.NewWriterSize(w, 64<<10), out: w, format: format, json: asJSON, header: header}
}

func (s *StreamSink) start() error {
	if s.started {
		return nil
	}
	s.started = true
	if s.header && !s.json {
		s.buf = append(s.buf[:0], s.format.Header()...)
		s.buf = append(s.buf, '\n')
		_, err := s.w.Write(s.buf)
		return err
	}
	return nil
}

// Write renders one window's records.
func (s *StreamSink) Write(recs []flow.Record) error {
	if err := s.start(); err != nil {
		return err
	}
	for i := range recs {
		if err := s.writeRecord(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeRecord renders r straight into w's buffer, which keeps room for
// the longest line so far: a line costs no copy.
func (s *StreamSink) writeRecord(r *flow.Record) error {
	if s.w.Available() < s.longestLine {
		if err := s.w.Flush(); err != nil {
			return err
		}
	}
	b := s.w.AvailableBuffer()
	if s.json {
		b = s.format.AppendJSON(b, r)
	} else {
		b = s.format.Append(b, r)
	}
	b = append(b, '\n')
	s.longestLine = max(s.longestLine, len(b))
	_, err := s.w.Write(b)
	return err
}

// hole is where a start (or end) value goes in a block of lines.
type hole struct {
	pos int
	end bool
}

// runBytes is the size of the buffer a NODATA run's lines are laid out in.
const runBytes = 256 << 10

// writeNoDataRun writes a run of NODATA records: the same lines Write
// would render, for a fraction of the cost. In text every line of a run
// is one of a few lines (one per interface) whose start and end alone
// change, by the run's interval per window. So the lines of as many
// windows as fit are laid out once in a buffer, and window by window only
// their start and end digits are rewritten, counted up in decimal rather
// than formatted: a few ns per line instead of about 150 ns rendering and
// handing over a record. A capture whose timestamps span 23 years has
// 1.2 M such lines per interface.
func (s *StreamSink) writeNoDataRun(run *noDataRun) error {
	if err := s.start(); err != nil {
		return err
	}
	if s.cols == nil {
		s.layoutColumns()
	}
	if s.json || !s.plain || run.from < 0 || len(run.recs) == 0 {
		var r flow.Record
		for k := range run.windows {
			w := run.from + k*run.interval
			for i := range run.recs {
				r = run.recs[i]
				r.Start, r.End = w, w+run.interval
				if err := s.writeRecord(&r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	if s.runBuf == nil {
		s.runBuf = make([]byte, 0, runBytes)
	}
	var start, end decimal
	inc := newIncrement(run.interval)
	start.set(run.from)
	end.set(run.from + run.interval)
	for done := int64(0); done < run.windows; {
		// Lay out the lines for the current number of digits.
		s.makeBlock(run.recs, start.digits(), end.digits())
		sn, en, bl := start.n, end.n, len(s.block)
		per := max(1, runBytes/bl)
		buf := s.runBuf[:0]
		for range per {
			buf = append(buf, s.block...)
		}
		s.runBuf = buf
		for done < run.windows && start.n == sn && end.n == en {
			k := 0
			for ; k < per && done < run.windows && start.n == sn && end.n == en; k++ {
				block := buf[k*bl : (k+1)*bl]
				for _, h := range s.holes {
					if h.end {
						end.put(block, h.pos)
					} else {
						start.put(block, h.pos)
					}
				}
				start = end
				// decimal.step, by hand: too large to be inlined.
				if i := inc.pos; i >= len(end.d)-end.n && end.d[i]+inc.k <= '9' {
					end.d[i] += inc.k
				} else {
					end.add(inc.v)
				}
				done++
			}
			if _, err := s.out.Write(buf[:k*bl]); err != nil {
				return err
			}
		}
	}
	return nil
}

// layoutColumns splits the format into single-column formats, to render
// a run's lines column by column around their start and end values.
func (s *StreamSink) layoutColumns() {
	s.fields = s.format.Fields()
	s.plain = len(s.fields) == s.format.Len()
	s.cols = make([]*flow.Format, 0, len(s.fields))
	for _, id := range s.fields {
		f, err := flow.ParseFormat("${" + flow.Fields[id].Name + "}")
		if err != nil {
			s.plain = false
			return
		}
		s.cols = append(s.cols, f)
	}
}

// makeBlock renders one window's lines of recs into s.block with the
// given start and end digits, noting in s.holes where those go.
func (s *StreamSink) makeBlock(recs []flow.Record, start, end []byte) {
	b, holes := s.block[:0], s.holes[:0]
	for i := range recs {
		r := &recs[i]
		for j, id := range s.fields {
			if j > 0 {
				b = append(b, ' ')
			}
			switch {
			case id == flow.FieldStart && r.Present.Has(id):
				holes = append(holes, hole{pos: len(b)})
				b = append(b, start...)
			case id == flow.FieldEnd && r.Present.Has(id):
				holes = append(holes, hole{pos: len(b), end: true})
				b = append(b, end...)
			default:
				b = s.cols[j].Append(b, r)
			}
		}
		b = append(b, '\n')
	}
	s.block, s.holes = b, holes
}

// flushEvery bounds how long closed records may wait in the buffer; a
// flush per window would cost a syscall per window on captures with
// millions of empty windows.
const flushEvery = 200 * time.Millisecond

// Advance flushes now and then, so a reader of the stream sees records
// soon after their windows close.
func (s *StreamSink) Advance(int64) error {
	if now := time.Now(); now.Sub(s.lastFlush) >= flushEvery {
		s.lastFlush = now
		return s.w.Flush()
	}
	return nil
}

// Close writes the header if nothing was written yet, and flushes.
func (s *StreamSink) Close() error {
	if err := s.start(); err != nil {
		return err
	}
	return s.w.Flush()
}

// decimal is a non-negative number as decimal digits, right-aligned, to
// count up without formatting the number each time.
type decimal struct {
	d [24]byte
	n int // digits used, at the end of d
}

func (x *decimal) set(v int64) {
	b := strconv.AppendInt(x.d[:0:len(x.d)], v, 10)
	x.n = len(b)
	copy(x.d[len(x.d)-x.n:], b)
}

func (x *decimal) digits() []byte { return x.d[len(x.d)-x.n:] }

// put writes the digits at b[pos:]: as two overlapping 8-byte stores for
// 8 to 16 digits (Unix seconds have 9 to 11), rather than a copy call.
func (x *decimal) put(b []byte, pos int) {
	if n := x.n; n >= 8 && n <= 16 {
		b = b[pos : pos+n]
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(x.d[len(x.d)-n:]))
		binary.LittleEndian.PutUint64(b[n-8:], binary.LittleEndian.Uint64(x.d[len(x.d)-8:]))
		return
	}
	copy(b[pos:], x.digits())
}

// add adds inc (>= 0) digit by digit from the right.
func (x *decimal) add(inc int64) {
	for i := len(x.d) - 1; inc > 0; i-- {
		if len(x.d)-i > x.n {
			x.d[i] = '0'
			x.n++
		}
		v := int64(x.d[i]-'0') + inc%10
		inc /= 10
		if v >= 10 {
			v -= 10
			inc++
		}
		x.d[i] = byte('0' + v)
	}
}

// increment is a step of decimal.step: v = k×10^(pos from the right).
// The intervals (60, 600) have one significant digit, so a step is
// usually one byte added, with a carry now and then.
type increment struct {
	v   int64
	pos int  // index in decimal.d of the significant digit; -1 for other values
	k   byte // that digit
}

func newIncrement(v int64) increment {
	inc := increment{v: v, pos: -1}
	for i := 23; v > 0 && i >= 0; i-- {
		if v%10 != 0 {
			if v < 10 {
				inc.pos, inc.k = i, byte(v)
			}
			break
		}
		v /= 10
	}
	return inc
}

// step adds inc.
func (x *decimal) step(inc *increment) {
	if i := inc.pos; i >= len(x.d)-x.n {
		if c := x.d[i] + inc.k; c <= '9' {
			x.d[i] = c
			return
		}
	}
	x.add(inc.v)
}
