package analyze

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/flowlog/flowlog/flow"
)

// Large plain-text files are read by several workers at once, each from
// its own piece (chunk) of the file, cut at line ends. A piece's lines are
// in the format of the last header line before them, which its worker
// cannot know without reading everything before it. So each worker
// assumes the file's first format (almost every file has one format,
// however often its header repeats) and keeps the records it reads before
// its piece's first header apart, with their statistics. Once all pieces
// are read, the format at each piece's start is known; where the
// assumption was wrong, those records are dropped and read again in the
// right format. The answer is exactly that of reading the file in order.

// minChunkBytes is the least a piece holds: below twice this, a file is
// read whole by one worker.
const minChunkBytes = 32 << 20

// chunkJob is one piece of a file.
type chunkJob struct {
	off, end int64
	first    bool         // the piece at the start of the file (its format is known)
	assumed  *flow.Format // the format assumed at the start; nil: none (default by count)

	// Set by the worker that reads the piece.
	prefix    visitor // the records before the piece's first header line
	prefixSt  Stats
	sawHeader bool         // a header line was read in the piece
	endFormat *flow.Format // the format at the piece's end, when sawHeader
	err       error
}

// fileChunks plans the pieces of the input at index i, or returns nil when
// it is read whole: not a local file, small, compressed, Parquet, JSON,
// or fewer than two workers.
func (e *engine) fileChunks(in Input, workers int) []*chunkJob {
	src, ok := in.src.(fileSource)
	chunkBytes := cmpOr(e.chunkBytes, minChunkBytes)
	if !ok || workers < 2 || e.noChunks || in.Size < 2*chunkBytes {
		return nil
	}
	f, err := os.Open(src.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || bytes.HasPrefix(head, []byte(parquetMagic)) ||
		bytes.HasPrefix(bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n"), []byte("{")) {
		return nil
	}
	// The format of the first record line is the assumption.
	assumed := e.cfg.Format
	rd := flow.NewReader(bytes.NewReader(head), flow.ReaderOptions{Format: e.cfg.Format})
	for {
		_, f, err := rd.NextLine()
		if err == nil {
			assumed = f
			break
		}
		var le *flow.LineError
		if !errors.As(err, &le) {
			break
		}
	}
	pieces := int(min(int64(workers)*2, in.Size/chunkBytes))
	chunks := []*chunkJob{{off: 0, first: true}}
	buf := make([]byte, 64<<10)
	for k := 1; k < pieces; k++ {
		at := in.Size * int64(k) / int64(pieces)
		cut, ok := lineStartAfter(f, at, buf)
		if !ok || cut <= chunks[len(chunks)-1].off || cut >= in.Size {
			continue
		}
		chunks[len(chunks)-1].end = cut
		chunks = append(chunks, &chunkJob{off: cut, assumed: assumed})
	}
	chunks[len(chunks)-1].end = in.Size
	if len(chunks) < 2 {
		return nil
	}
	return chunks
}

// lineStartAfter returns the start of the first line after offset at that
// begins like a record or header (not gzip, a byte order mark or a JSON
// document, which must not start a piece).
func lineStartAfter(f *os.File, at int64, buf []byte) (int64, bool) {
	for tries := 0; tries < 64; tries++ {
		n, err := f.ReadAt(buf, at)
		if n == 0 {
			return 0, false
		}
		i := bytes.IndexByte(buf[:n], '\n')
		if i < 0 {
			if err != nil {
				return 0, false
			}
			at += int64(n)
			continue
		}
		at += int64(i) + 1
		rest := bytes.TrimLeft(buf[i+1:n], " \t")
		if len(rest) > 0 && (rest[0] == '{' || rest[0] == 0x1f || rest[0] == 0xef) {
			continue
		}
		return at, true
	}
	return 0, false
}

// readChunk reads one piece of a file into rs; the records before its
// first header line go to a visitor of their own (c.prefix).
func (e *engine) readChunk(ctx context.Context, in Input, c *chunkJob, rs *recordStream, newVisitor func() visitor) error {
	f, err := os.Open(in.src.(fileSource).path)
	if err != nil {
		return err
	}
	defer f.Close()
	start := c.assumed
	if c.first {
		start = e.cfg.Format
	}
	main, mainSt := rs.v, rs.st
	defer func() { rs.v, rs.st = main, mainSt }()
	rs.format = nil
	if !c.first {
		c.prefix = newVisitor()
		rs.v, rs.st = c.prefix, &c.prefixSt
	}
	rd := flow.NewReader(countingReader{io.NewSectionReader(f, c.off, c.end-c.off), &e.read}, flow.ReaderOptions{Format: start})
	err = e.readLines(ctx, rd, start, rs, func() bool {
		if rs.v != main {
			rs.v, rs.st, rs.format = main, mainSt, nil
		}
		return true
	})
	// The format at the piece's end: a header read anywhere in it, even
	// after its last record, replaced the Reader's format.
	if end := rd.Format(); end != start && !(start == nil && end == flow.DefaultFormat()) {
		c.sawHeader, c.endFormat = true, end
	}
	return err
}

// redoPrefix reads the records of a piece before its first header line
// again, in the format that was really in effect, into a new visitor.
func (e *engine) redoPrefix(ctx context.Context, in Input, c *chunkJob, start *flow.Format, v visitor, st *Stats) error {
	f, err := os.Open(in.src.(fileSource).path)
	if err != nil {
		return err
	}
	defer f.Close()
	rs := &recordStream{e: e, v: v, st: st, scanners: map[string]*Scanner{},
		input: in.Name + " (bytes " + strconv.FormatInt(c.off, 10) + "–" + strconv.FormatInt(c.end, 10) + ")"}
	rd := flow.NewReader(io.NewSectionReader(f, c.off, c.end-c.off), flow.ReaderOptions{Format: start})
	return e.readLines(ctx, rd, start, rs, func() bool { return false })
}

// sameFormat reports whether two formats (nil: none) read lines alike.
func sameFormat(a, b *flow.Format) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Header() == b.Header()
}

// settleChunks checks, piece by piece, the format each was assumed to
// start in, and returns the visitors whose records count: the prefixes
// read in the right format, and new readings of the others.
func (e *engine) settleChunks(ctx context.Context, in Input, chunks []*chunkJob, newVisitor func() visitor, st *Stats) []visitor {
	var vs []visitor
	cur := e.cfg.Format
	if chunks[0].sawHeader {
		cur = chunks[0].endFormat
	}
	for _, c := range chunks[1:] {
		switch {
		case c.err != nil || c.prefix == nil:
		case sameFormat(cur, c.assumed):
			vs = append(vs, c.prefix)
			st.add(&c.prefixSt)
		default:
			v := newVisitor()
			var redo Stats
			if err := e.redoPrefix(ctx, in, c, cur, v, &redo); err != nil && ctx.Err() == nil {
				st.Failed = append(st.Failed, in.Name+": "+err.Error())
			}
			vs = append(vs, v)
			st.add(&redo)
		}
		if c.sawHeader {
			cur = c.endFormat
		}
	}
	return vs
}
