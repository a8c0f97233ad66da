package analyze

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// ReadConfig says how the inputs of a report are read.
type ReadConfig struct {
	// Format is the format of records that no header line precedes
	// (--format); nil: a header line, else the default format.
	Format *flow.Format
	// Range keeps the records whose window overlaps it.
	Range TimeRange
	// Where keeps the records it matches; nil keeps all.
	Where *Expr
	// Workers is how many inputs are read at once; 0 means one per CPU.
	Workers int
	// Progress receives a progress bar while large inputs are read (the
	// caller passes standard error when it is a terminal); nil: none.
	Progress io.Writer
	// ProgressMinBytes is the input size from which the bar shows; 0
	// means DefaultProgressMinBytes.
	ProgressMinBytes int64

	// chunkBytes overrides minChunkBytes (tests cut small files).
	chunkBytes int64
}

// DefaultProgressMinBytes is the total input size from which a progress
// bar is shown: below it a report takes well under a second.
const DefaultProgressMinBytes = 256 << 20

// maxParquetStream is the largest Parquet object read from a stream (S3,
// standard input): Parquet needs random access, so such objects are
// buffered in memory. AWS cuts objects well below this.
const maxParquetStream = 1 << 30

// maxLineErrors is how many unreadable lines are kept for the report.
const maxLineErrors = 5

// Stats says what a report read.
type Stats struct {
	Inputs       int      // inputs read to their end
	Bytes        int64    // bytes read from the inputs (compressed, for .gz)
	Records      int64    // records read, before --since, --until and --where
	Matched      int64    // records the report saw
	SkippedLines int64    // lines or rows that could not be read
	LineErrors   []string // the first few of them: "input: line N: error"
	Failed       []string // inputs that could not be read: "input: error"
	NoData       int64    // NODATA records in the range
	SkipData     int64    // SKIPDATA records in the range: records were lost
	Interrupted  bool     // the context ended before every input was read
	Elapsed      time.Duration
	Notes        []string // what the reader of the report should know
}

func (s *Stats) add(o *Stats) {
	s.Inputs += o.Inputs
	s.Bytes += o.Bytes
	s.Records += o.Records
	s.Matched += o.Matched
	s.SkippedLines += o.SkippedLines
	for _, e := range o.LineErrors {
		if len(s.LineErrors) < maxLineErrors {
			s.LineErrors = append(s.LineErrors, e)
		}
	}
	s.Failed = append(s.Failed, o.Failed...)
	s.NoData += o.NoData
	s.SkipData += o.SkipData
}

// visitor is a report's view of the records: each worker has its own and
// the report merges them at the end.
type visitor interface {
	// begin is called before the records of input i (in the order the
	// inputs were listed) and end after them.
	begin(i int, in Input)
	end(i int, err error)
	// format is called before the first record of a format.
	format(f *flow.Format)
	// record receives one record that passed the range and --where; line
	// is its text (nil for Parquet rows). Both are only valid during the
	// call.
	record(r *flow.Record, line []byte)
}

// noHooks implements visitor's begin and end as no-ops.
type noHooks struct{}

func (noHooks) begin(int, Input) {}
func (noHooks) end(int, error)   {}

// engine reads inputs in parallel into visitors.
type engine struct {
	cfg  ReadConfig
	need flow.FieldSet // fields the report, the range and --where need
	full bool          // parse every field of text lines (filter's JSON and CSV output)
	// rowsFull reads every column of Parquet rows, unknown ones too: the
	// filter renders them.
	rowsFull bool
	// noChunks reads every input whole, by one worker (filter: its
	// output follows the input's order).
	noChunks   bool
	chunkBytes int64        // least bytes in a piece of a file; 0: minChunkBytes (tests make it small)
	read       atomic.Int64 // bytes read so far, for the progress bar
	since      int64
	until      int64
}

func newEngine(cfg ReadConfig, need flow.FieldSet, full bool) *engine {
	e := &engine{cfg: cfg, full: full, chunkBytes: cfg.chunkBytes}
	e.need = need | cfg.Range.fields() | flow.FieldSet(0).With(flow.FieldLogStatus)
	if cfg.Where != nil {
		e.need |= cfg.Where.Fields()
	}
	e.since, e.until = cfg.Range.bounds()
	return e
}

// run reads the inputs with up to cfg.Workers workers, each with a
// visitor from newVisitor, and returns the visitors and what was read.
// When ctx ends, workers stop within a few thousand records and run
// returns what they saw, with Stats.Interrupted set.
func (e *engine) run(ctx context.Context, inputs []Input, newVisitor func() visitor) ([]visitor, Stats) {
	began := time.Now()
	workers := e.cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	var total int64
	for _, in := range inputs {
		total += max(in.Size, 0)
	}
	stopBar := func() {}
	if min_ := cmpOr(e.cfg.ProgressMinBytes, DefaultProgressMinBytes); e.cfg.Progress != nil && total >= min_ {
		stopBar = startProgress(e.cfg.Progress, total, &e.read)
	}

	// Jobs: whole inputs, and the pieces of large plain-text files.
	type job struct {
		input int
		chunk *chunkJob
	}
	var list []job
	chunked := map[int][]*chunkJob{}
	// With at least as many inputs as workers, reading them one per
	// worker keeps every CPU busy without the cost of pieces.
	canChunk := len(inputs) < workers
	for i, in := range inputs {
		if cs := e.fileChunks(in, workers); canChunk && cs != nil {
			chunked[i] = cs
			for _, c := range cs {
				list = append(list, job{i, c})
			}
			continue
		}
		list = append(list, job{input: i})
	}
	workers = max(1, min(workers, len(list)))
	jobs := make(chan job)
	go func() {
		defer close(jobs)
		for _, j := range list {
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	visitors := make([]visitor, workers)
	stats := make([]Stats, workers)
	var wg sync.WaitGroup
	for w := range workers {
		visitors[w] = newVisitor()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := &recordStream{e: e, v: visitors[w], st: &stats[w], scanners: map[string]*Scanner{}}
			for j := range jobs {
				in := inputs[j.input]
				rs.input = in.Name
				if j.chunk != nil && !j.chunk.first {
					rs.input = in.Name + " (bytes " + strconv.FormatInt(j.chunk.off, 10) + "–" + strconv.FormatInt(j.chunk.end, 10) + ")"
				}
				rs.v.begin(j.input, in)
				var err error
				if j.chunk != nil {
					err = e.readChunk(ctx, in, j.chunk, rs, newVisitor)
					j.chunk.err = err
				} else {
					err = e.readInput(ctx, in, rs)
				}
				rs.v.end(j.input, err)
				switch {
				case err == nil:
					if j.chunk == nil || j.chunk.first {
						rs.st.Inputs++
					}
				case ctx.Err() != nil:
				default:
					rs.st.Failed = append(rs.st.Failed, rs.input+": "+err.Error())
				}
			}
		}()
	}
	wg.Wait()
	var st Stats
	for i := range stats {
		st.add(&stats[i])
	}
	for i, cs := range chunked {
		visitors = append(visitors, e.settleChunks(ctx, inputs[i], cs, newVisitor, &st)...)
	}
	stopBar()
	st.Bytes = e.read.Load()
	st.Interrupted = ctx.Err() != nil
	st.Elapsed = time.Since(began)
	return visitors, st
}

func cmpOr(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// countingReader counts the bytes read from an input.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readInput reads one input into rs: Parquet when it starts with PAR1,
// else text (plain or gzip, headers, CloudWatch Logs JSON) through
// flow.Reader and the Scanner.
func (e *engine) readInput(ctx context.Context, in Input, rs *recordStream) error {
	rc, err := in.src.open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	// Sniff the first bytes for Parquet's magic; text goes to flow.Reader
	// without another buffer in between (it has its own).
	cr := countingReader{rc, &e.read}
	head := make([]byte, len(parquetMagic))
	n, err := io.ReadFull(cr, head)
	head = head[:n]
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return err
	}
	rs.format = nil
	if string(head) == parquetMagic {
		return e.readParquetInput(ctx, rc, io.MultiReader(bytes.NewReader(head), cr), rs)
	}
	return e.readText(ctx, io.MultiReader(bytes.NewReader(head), cr), rs)
}

func (e *engine) readParquetInput(ctx context.Context, rc io.ReadCloser, r io.Reader, rs *recordStream) error {
	if f, ok := rc.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			e.read.Add(fi.Size() - int64(len(parquetMagic)))
			return readParquet(ctx, f, fi.Size(), e.rowFields(), e.full || e.rowsFull, rs)
		}
	}
	data, err := io.ReadAll(io.LimitReader(r, maxParquetStream+1))
	if err != nil {
		return fmt.Errorf("read parquet: %w", err)
	}
	if len(data) > maxParquetStream {
		return fmt.Errorf("parquet object larger than %d bytes: download it and read the file", maxParquetStream)
	}
	return readParquet(ctx, bytes.NewReader(data), int64(len(data)), e.rowFields(), e.full || e.rowsFull, rs)
}

// rowFields are the Parquet columns to decode.
func (e *engine) rowFields() flow.FieldSet {
	if e.full || e.rowsFull {
		return flow.FieldSet(1)<<flow.NumFields - 1
	}
	return e.need
}

func (e *engine) readText(ctx context.Context, r io.Reader, rs *recordStream) error {
	rd := flow.NewReader(r, flow.ReaderOptions{Format: e.cfg.Format})
	return e.readLines(ctx, rd, e.cfg.Format, rs, nil)
}

// readLines reads the records of rd, which starts in format start, into
// rs. When a header line changes the format, onHeader (if set) is called
// before the next record; reading stops there if it returns false.
func (e *engine) readLines(ctx context.Context, rd *flow.Reader, start *flow.Format, rs *recordStream, onHeader func() bool) error {
	var sc *Scanner
	var scFormat *flow.Format
	prev := start
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, f, err := rd.NextLine()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			var le *flow.LineError
			if errors.As(err, &le) {
				rs.skip(le.Line, le)
				continue
			}
			return err
		}
		if f != prev {
			prev = f
			if onHeader != nil && !onHeader() {
				return nil
			}
		}
		if f != scFormat || sc == nil {
			ff := f
			if ff == nil {
				ff = flow.DefaultFormat()
			}
			sc = rs.scanner(ff)
			scFormat = f
			rs.setFormat(ff)
		}
		if e.full {
			err = sc.format.ParseRecord(line, &rs.rec)
		} else {
			err = sc.Scan(line, &rs.rec)
		}
		if err != nil {
			var ce *flow.CountError
			if f == nil && errors.As(err, &ce) {
				err = fmt.Errorf("%w; the line has %d fields, the default format %d", flow.ErrNoFormat, ce.Found, ce.Expected)
			}
			var fe *flow.FieldError
			le := &flow.LineError{Line: rd.Line(), Err: err}
			if errors.As(err, &fe) {
				le.Field = fe.Field
			}
			rs.skip(rd.Line(), le)
			continue
		}
		rs.line(line)
	}
}

// recordStream is one worker's path from parsed records to its visitor.
type recordStream struct {
	e        *engine
	v        visitor
	st       *Stats
	rec      flow.Record
	input    string
	format   *flow.Format
	scanners map[string]*Scanner // by header: repeated headers reuse theirs
}

func (rs *recordStream) scanner(f *flow.Format) *Scanner {
	if sc, ok := rs.scanners[f.Header()]; ok && sc.format == f {
		return sc
	}
	sc := NewScanner(f, rs.e.need)
	if len(rs.scanners) > 64 {
		clear(rs.scanners) // input with ever new formats: do not hoard
	}
	rs.scanners[f.Header()] = sc
	return sc
}

// setFormat tells the visitor about a new format of the input.
func (rs *recordStream) setFormat(f *flow.Format) {
	if rs.format != nil && rs.format.Header() == f.Header() {
		rs.format = f
		return
	}
	rs.format = f
	rs.v.format(f)
}

// skip counts a line or row that could not be read.
func (rs *recordStream) skip(line int64, err error) {
	rs.st.SkippedLines++
	if len(rs.st.LineErrors) < maxLineErrors {
		msg := err.Error()
		if _, ok := err.(*flow.LineError); !ok {
			msg = "line " + strconv.FormatInt(line, 10) + ": " + msg
		}
		rs.st.LineErrors = append(rs.st.LineErrors, rs.input+": "+msg)
	}
}

// row handles a parsed Parquet row: err is its first bad value.
func (rs *recordStream) row(n int64, err error) {
	if err != nil {
		rs.st.SkippedLines++
		if len(rs.st.LineErrors) < maxLineErrors {
			rs.st.LineErrors = append(rs.st.LineErrors, rs.input+": row "+strconv.FormatInt(n, 10)+": "+err.Error())
		}
		return
	}
	rs.line(nil)
}

// line passes the parsed record in rs.rec on when it is in the range and
// matches --where.
func (rs *recordStream) line(line []byte) {
	r := &rs.rec
	rs.st.Records++
	if r.Present&(1<<flow.FieldEnd) != 0 && r.End < rs.e.since {
		return
	}
	if r.Present&(1<<flow.FieldStart) != 0 && r.Start > rs.e.until {
		return
	}
	if r.Present&(1<<flow.FieldLogStatus) != 0 {
		switch r.LogStatus {
		case flow.LogStatusNoData:
			rs.st.NoData++
		case flow.LogStatusSkipData:
			rs.st.SkipData++
		}
	}
	if w := rs.e.cfg.Where; w != nil && !w.Match(r) {
		return
	}
	rs.st.Matched++
	rs.v.record(r, line)
}
