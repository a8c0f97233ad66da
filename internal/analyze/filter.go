package analyze

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/flowlog/flowlog/flow"
)

// filterChunk is a piece of Filter's output from one input.
type filterChunk struct {
	format *flow.Format // a header to write first when it differs from the last; or nil
	data   []byte
}

// filterPipe carries one input's output to the writer, in order.
type filterPipe struct {
	ch   chan filterChunk
	once sync.Once
}

func (p *filterPipe) close() { p.once.Do(func() { close(p.ch) }) }

// filterChunkBytes is the size at which a worker hands output on; with
// a few chunks queued per input, memory stays bounded.
const filterChunkBytes = 256 << 10

// filterVisitor renders the matching records of the inputs a worker reads.
type filterVisitor struct {
	mode  string
	pipes []*filterPipe
	cur   *filterPipe
	buf   []byte
	fmt   *flow.Format
	csv   []byte
	// pending says fmt's header is still to be written.
	pending bool
}

func (v *filterVisitor) begin(i int, _ Input) {
	v.cur, v.buf, v.fmt, v.pending = v.pipes[i], v.buf[:0], nil, false
}

func (v *filterVisitor) end(int, error) {
	v.flush()
	v.cur.close()
}

func (v *filterVisitor) flush() {
	if len(v.buf) > 0 {
		v.cur.ch <- filterChunk{data: v.buf}
		v.buf = make([]byte, 0, filterChunkBytes+4096)
	}
}

func (v *filterVisitor) format(f *flow.Format) {
	v.fmt = f
	v.pending = true
}

func (v *filterVisitor) record(r *flow.Record, line []byte) {
	if v.pending {
		// The header goes out with the first record of its format, so
		// formats without a match leave no trace.
		v.flush()
		v.cur.ch <- filterChunk{format: v.fmt}
		v.pending = false
	}
	switch v.mode {
	case ModeJSON:
		v.buf = v.fmt.AppendJSON(v.buf, r)
	case ModeCSV:
		v.csv = v.fmt.Append(v.csv[:0], r)
		v.buf = appendCSVLine(v.buf, v.csv)
		v.buf = v.buf[:len(v.buf)-1] // appendCSVLine ends the line; the common path below does too
	default:
		if line != nil {
			v.buf = append(v.buf, line...)
		} else {
			v.buf = v.fmt.Append(v.buf, r)
		}
	}
	v.buf = append(v.buf, '\n')
	if len(v.buf) >= filterChunkBytes {
		v.flush()
	}
}

// appendCSVLine appends the space-separated values of a record line as a
// CSV line ("-" stays "-", as in the text).
func appendCSVLine(b, line []byte) []byte {
	for i, f := range bytes.Split(line, []byte{' '}) {
		if i > 0 {
			b = append(b, ',')
		}
		if bytes.ContainsAny(f, ",\"\r\n") {
			b = append(b, '"')
			b = append(b, bytes.ReplaceAll(f, []byte{'"'}, []byte{'"', '"'})...)
			b = append(b, '"')
			continue
		}
		b = append(b, f...)
	}
	return append(b, '\n')
}

// Filter prints the records that match --where (and the time range), in
// input order: as flow log text lines with a header line (the lines as
// they were read; Parquet rows rendered in their columns' format), as
// JSON lines (numbers as numbers, "-" as null), or as CSV with a header
// row. A header (row) is written again where the format changes.
func Filter(ctx context.Context, inputs []Input, rc ReadConfig, out Output) (Stats, error) {
	mode := out.Mode
	if mode == "" || mode == ModeTable {
		mode = ModeText
	}
	e := newEngine(rc, 0, mode != ModeText)
	e.rowsFull = true
	e.noChunks = true
	pipes := make([]*filterPipe, len(inputs))
	for i := range pipes {
		pipes[i] = &filterPipe{ch: make(chan filterChunk, 4)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	written := make(chan error, 1)
	go func() {
		written <- writeFiltered(out.W, mode, pipes, cancel)
	}()
	_, st := e.run(ctx, inputs, func() visitor { return &filterVisitor{mode: mode, pipes: pipes} })
	for _, p := range pipes {
		p.close() // inputs never started (interrupted) end here
	}
	err := <-written
	return st, err
}

// writeFiltered writes the pipes' chunks in input order; on a write error
// it cancels the readers and drains the pipes.
func writeFiltered(w io.Writer, mode string, pipes []*filterPipe, cancel func()) error {
	var werr error
	last := ""
	var hdr []byte
	for _, p := range pipes {
		for c := range p.ch {
			if werr != nil {
				continue
			}
			if c.format != nil {
				h := c.format.Header()
				if h == last || mode == ModeJSON {
					continue
				}
				last = h
				hdr = hdr[:0]
				if mode == ModeCSV {
					hdr = appendCSVLine(hdr, []byte(h))
				} else {
					hdr = append(append(hdr, h...), '\n')
				}
				_, werr = w.Write(hdr)
			} else {
				_, werr = w.Write(c.data)
			}
			if werr != nil {
				cancel()
			}
		}
	}
	return werr
}
