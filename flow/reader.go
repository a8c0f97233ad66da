package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/klauspost/compress/gzip"
)

// MaxLineBytes is the longest record or header line a Reader accepts. A
// default-format record is about 120 bytes and the longest version 8
// record a few KiB, so anything longer is not a flow log.
const MaxLineBytes = 1 << 20

// MaxJSONBytes is the largest CloudWatch Logs subscription document a
// Reader accepts. It is larger than MaxLineBytes because one document
// carries a PutLogEvents batch (up to 1 MiB of messages) plus JSON around
// it; the documents are often on one line.
const MaxJSONBytes = 16 << 20

var (
	// ErrLineTooLong is wrapped by the LineError for a line longer than
	// MaxLineBytes (or a JSON document longer than MaxJSONBytes).
	ErrLineTooLong = errors.New("line too long")

	// ErrNoFormat is wrapped by the LineError for a record line that has
	// no header before it, no ReaderOptions.Format, and not the number of
	// values of the default format.
	ErrNoFormat = errors.New("no header line or format for this record: give the log format (--format)")
)

// LineError reports a line of a flow log that could not be read. The
// Reader continues with the next line on the next call to Next.
type LineError struct {
	Line  int64  // 1-based line number in the (decompressed) input
	Field string // the field whose value is bad, or ""
	Err   error
}

func (e *LineError) Error() string {
	return "line " + strconv.FormatInt(e.Line, 10) + ": " + e.Err.Error()
}

func (e *LineError) Unwrap() error { return e.Err }

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// Format is the format of records that come before any header line,
	// and of CloudWatch Logs messages (which never have one). When nil,
	// the default format is used for lines with exactly its number of
	// values; other lines are errors wrapping ErrNoFormat.
	Format *Format
}

// Reader reads flow log records from a whole file or stream as AWS and
// the tools around it write them:
//
//   - text objects: an optional header line (bare field names, or a
//     `${field}` format line), then one record per line; gzip-compressed
//     input is detected by its magic number and decompressed (also
//     concatenated gzip members);
//   - headers repeated anywhere (concatenated S3 objects): each switches
//     the format for the lines after it; empty lines, CRLF line ends, a
//     missing final line end and a UTF-8 byte order mark are accepted;
//   - CloudWatch Logs subscription documents (JSON objects with
//     logEvents[].message, as a subscription delivers them to Lambda or
//     Firehose, also several back to back): each message is a record line.
//     Control messages are skipped.
//
// A line that cannot be read is reported as a *LineError and skipped; a
// read or decompression error of the input ends the stream.
type Reader struct {
	src     io.Reader
	started bool

	buf     []byte
	r, w    int   // unread bytes are buf[r:w]
	eof     bool  // src has no more data (possibly because of readErr)
	readErr error // error from src, returned once the buffered lines are consumed
	done    error // sticky: io.EOF or a fatal error

	lineNo int64 // lines consumed so far
	last   int64 // line of what Next returned last

	format *Format // from the last header, else opts.Format (nil: default by count)

	events     []string // pending CloudWatch Logs messages
	eventLine  int64    // line where their document starts
	eventIndex int      // index in the document of events[0]
}

// NewReader returns a Reader of the flow log in r.
func NewReader(r io.Reader, opts ReaderOptions) *Reader {
	return &Reader{src: r, format: opts.Format}
}

// Format returns the format records are read with now: the last header
// line's, else ReaderOptions.Format, else the default format (which applies
// only to lines with its number of values).
func (rd *Reader) Format() *Format {
	if rd.format != nil {
		return rd.format
	}
	return DefaultFormat()
}

// Line returns the line number of the record or error Next returned last
// (for a CloudWatch Logs message: the line where its document starts).
func (rd *Reader) Line() int64 { return rd.last }

const readChunk = 64 << 10

// fill reads more input into the buffer, keeping buf[r:w] and growing the
// buffer up to limit bytes. It reports false when no more data will come.
func (rd *Reader) fill(limit int) bool {
	if rd.eof {
		return false
	}
	if rd.r > 0 {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
	if rd.w == len(rd.buf) {
		n := min(max(2*len(rd.buf), readChunk), limit)
		if n <= len(rd.buf) {
			return true // full; the caller checks its limit
		}
		nb := make([]byte, n)
		copy(nb, rd.buf[:rd.w])
		rd.buf = nb
	}
	for tries := 0; tries < 100; tries++ {
		n, err := rd.src.Read(rd.buf[rd.w:])
		rd.w += n
		if err != nil {
			rd.eof = true
			if err != io.EOF {
				rd.readErr = err
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	rd.eof, rd.readErr = true, io.ErrNoProgress
	return false
}

// start detects gzip and a byte order mark.
func (rd *Reader) start() {
	rd.started = true
	for rd.w-rd.r < 3 && rd.fill(readChunk) {
	}
	if rd.w-rd.r >= 2 && rd.buf[rd.r] == 0x1f && rd.buf[rd.r+1] == 0x8b {
		head := bytes.Clone(rd.buf[rd.r:rd.w])
		src := io.Reader(bytes.NewReader(head))
		switch {
		case rd.readErr != nil:
			src = io.MultiReader(src, errReader{rd.readErr})
		case !rd.eof:
			src = io.MultiReader(src, rd.src)
		}
		zr, err := gzip.NewReader(src)
		if err != nil {
			rd.done = fmt.Errorf("read gzip header: %w", err)
			return
		}
		rd.src, rd.r, rd.w, rd.eof, rd.readErr = zr, 0, 0, false, nil
		for rd.w-rd.r < 3 && rd.fill(readChunk) {
		}
	}
	if bytes.HasPrefix(rd.buf[rd.r:rd.w], []byte("\xef\xbb\xbf")) {
		rd.r += 3
	}
}

// errReader replays a read error that happened while sniffing for gzip.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// endOfInput is what Next returns once the buffered input is used up.
func (rd *Reader) endOfInput() error {
	if rd.readErr != nil {
		rd.done = fmt.Errorf("read flow log after line %d: %w", rd.lineNo, rd.readErr)
	} else {
		rd.done = io.EOF
	}
	return rd.done
}

// readLine returns the next line without its line end. The line is valid
// until the next read.
func (rd *Reader) readLine() ([]byte, error) {
	scanned := 0 // bytes of buf[r:] known to hold no '\n'
	for {
		if i := bytes.IndexByte(rd.buf[rd.r+scanned:rd.w], '\n'); i >= 0 {
			end := rd.r + scanned + i
			line := rd.buf[rd.r:end]
			rd.r = end + 1
			rd.lineNo++
			return line, nil
		}
		scanned = rd.w - rd.r
		if scanned > MaxLineBytes {
			rd.lineNo++
			rd.skipRestOfLine()
			return nil, ErrLineTooLong
		}
		if !rd.fill(MaxLineBytes + 1) {
			if rd.r == rd.w || rd.readErr != nil {
				// A last line cut off by a read error is not a record.
				rd.r = rd.w
				return nil, io.EOF
			}
			line := rd.buf[rd.r:rd.w]
			rd.r = rd.w
			rd.lineNo++
			return line, nil
		}
	}
}

// skipRestOfLine drops input up to and including the next '\n'.
func (rd *Reader) skipRestOfLine() {
	for {
		if i := bytes.IndexByte(rd.buf[rd.r:rd.w], '\n'); i >= 0 {
			rd.r += i + 1
			return
		}
		rd.r = rd.w
		if !rd.fill(readChunk) {
			return
		}
	}
}

// jsonScan finds the end of one JSON object without decoding it. A
// document that starts with its opening brace alone on a line may span
// lines (pretty-printed); one with more on its first line must end on that
// line, so a stray '{' at the start of a line costs only that line.
type jsonScan struct {
	depth      int
	inStr, esc bool
	content    bool // a non-blank byte followed the opening brace on its line
	multiLine  bool // the opening brace was alone on its line
}

// feed scans b. It returns the index just past the '}' that closes the
// top-level object, or, when a one-line document reaches its line end
// unclosed, the index just past that '\n' and broken. It returns -1 when b
// ends first. It counts the line ends it passes in *lines.
func (s *jsonScan) feed(b []byte, lines *int64) (end int, broken bool) {
	for i, c := range b {
		if c == '\n' {
			*lines++
			if !s.multiLine {
				if s.content {
					return i + 1, true
				}
				s.multiLine = true
			}
			continue
		}
		if s.depth > 0 && c != ' ' && c != '\t' && c != '\r' {
			s.content = true
		}
		switch {
		case s.esc:
			s.esc = false
		case s.inStr:
			switch c {
			case '\\':
				s.esc = true
			case '"':
				s.inStr = false
			}
		case c == '"':
			s.inStr = true
		case c == '{' || c == '[':
			s.depth++
		case c == '}' || c == ']':
			s.depth--
			if s.depth == 0 {
				return i + 1, false
			}
		}
	}
	return -1, false
}

var errJSONUnclosed = errors.New("JSON document does not end on its line")

// readJSON reads the JSON object at buf[r] (which is '{').
func (rd *Reader) readJSON() ([]byte, error) {
	var st jsonScan
	scanned := 0
	dropped := false
	for {
		if end, broken := st.feed(rd.buf[rd.r+scanned:rd.w], &rd.lineNo); end >= 0 {
			doc := rd.buf[rd.r : rd.r+scanned+end]
			rd.r += scanned + end
			switch {
			case dropped:
				return nil, ErrLineTooLong
			case broken:
				return nil, errJSONUnclosed
			}
			return doc, nil
		}
		scanned = rd.w - rd.r
		if scanned > MaxJSONBytes {
			// Drop what we have and keep scanning for the end of the
			// document, so the next document or line reads normally.
			rd.r, scanned, dropped = rd.w, 0, true
		}
		if !rd.fill(MaxJSONBytes + 1) {
			rd.r = rd.w
			if dropped {
				return nil, ErrLineTooLong
			}
			return nil, errors.New("JSON document ends before its closing brace")
		}
	}
}

// cloudWatchDocument is a CloudWatch Logs subscription payload.
type cloudWatchDocument struct {
	MessageType string `json:"messageType"`
	LogEvents   *[]struct {
		Message string `json:"message"`
	} `json:"logEvents"`
}

// Next reads the next record into rec. It returns io.EOF at the end, a
// *LineError for a line it skipped (call Next again to continue after it),
// or another error when the input itself cannot be read (then the stream
// is over). rec follows the rules of Format.ParseRecord.
func (rd *Reader) Next(rec *Record) error {
	line, context, err := rd.nextLine()
	if err != nil {
		return err
	}
	return rd.parse(line, rec, rd.last, context)
}

// NextLine returns the next record line without parsing it, for readers
// that parse only some of its fields: header lines are consumed (they set
// the Format), CloudWatch Logs messages come back as lines, trailing
// blanks are trimmed and empty lines skipped. f is the format the line is
// in: the last header's, else ReaderOptions.Format, else nil — then the
// default format applies if the line has its number of values, and the
// line is otherwise an error wrapping ErrNoFormat, as Next reports it.
// The line is valid until the next call. Errors are those of Next.
func (rd *Reader) NextLine() (line []byte, f *Format, err error) {
	line, _, err = rd.nextLine()
	return line, rd.format, err
}

// nextLine returns the next record line and, for a CloudWatch Logs
// message, the context error messages about it start with.
func (rd *Reader) nextLine() ([]byte, string, error) {
	if !rd.started {
		rd.start()
	}
	for {
		if rd.done != nil {
			return nil, "", rd.done
		}
		if len(rd.events) > 0 {
			return rd.nextEvent()
		}
		// Skip leading blanks to see whether a JSON document starts here.
		for {
			if rd.r == rd.w && !rd.fill(readChunk) {
				return nil, "", rd.endOfInput()
			}
			if c := rd.buf[rd.r]; c != ' ' && c != '\t' {
				break
			}
			rd.r++
		}
		if rd.buf[rd.r] == '{' {
			if err := rd.readDocument(); err != nil {
				return nil, "", err
			}
			continue
		}
		line, err := rd.readLine()
		if err == io.EOF {
			return nil, "", rd.endOfInput()
		}
		rd.last = rd.lineNo
		if err != nil {
			return nil, "", &LineError{Line: rd.lineNo, Err: fmt.Errorf("longer than %d bytes: %w", MaxLineBytes, err)}
		}
		line = trimLineEnd(line)
		if len(line) == 0 {
			continue
		}
		if isFormatLine(line) {
			f, err := ParseHeader(string(line))
			if err != nil {
				return nil, "", &LineError{Line: rd.lineNo, Err: fmt.Errorf("parse header: %w", err)}
			}
			rd.format = f
			continue
		}
		return line, "", nil
	}
}

// readDocument reads a CloudWatch Logs subscription document and queues
// its messages.
func (rd *Reader) readDocument() error {
	line := rd.lineNo + 1
	doc, err := rd.readJSON()
	rd.last = line
	if err != nil {
		return &LineError{Line: line, Err: fmt.Errorf("read CloudWatch Logs document: %w", err)}
	}
	var d cloudWatchDocument
	if err := json.Unmarshal(doc, &d); err != nil {
		return &LineError{Line: line, Err: fmt.Errorf("decode CloudWatch Logs document: %w", err)}
	}
	if d.LogEvents == nil {
		return &LineError{Line: line, Err: errors.New("JSON document is not a CloudWatch Logs subscription event: no logEvents")}
	}
	if d.MessageType == "CONTROL_MESSAGE" {
		return nil
	}
	rd.events = rd.events[:0]
	for _, e := range *d.LogEvents {
		rd.events = append(rd.events, e.Message)
	}
	rd.eventLine, rd.eventIndex = line, 0
	return nil
}

func (rd *Reader) nextEvent() ([]byte, string, error) {
	msg := rd.events[0]
	rd.events = rd.events[1:]
	idx := rd.eventIndex
	rd.eventIndex++
	rd.last = rd.eventLine
	return bytes.TrimSpace([]byte(msg)), "log event " + strconv.Itoa(idx) + ": ", nil
}

// parse parses one record line; context prefixes error messages.
func (rd *Reader) parse(line []byte, rec *Record, lineNo int64, context string) error {
	f := rd.format
	if f == nil {
		f = DefaultFormat()
	}
	err := f.ParseRecord(line, rec)
	if err == nil {
		return nil
	}
	le := &LineError{Line: lineNo}
	var fe *FieldError
	var ce *CountError
	switch {
	case errors.As(err, &fe):
		le.Field = fe.Field
	case rd.format == nil && errors.As(err, &ce):
		err = fmt.Errorf("%w; the line has %d fields, the default format %d", ErrNoFormat, ce.Found, ce.Expected)
	}
	if context != "" {
		err = fmt.Errorf("%s%w", context, err)
	}
	le.Err = err
	return le
}

// trimLineEnd drops trailing spaces, tabs and CRs; bytes.TrimRight with a
// cutset builds a set on every call, which shows in per-line profiles.
func trimLineEnd(line []byte) []byte {
	n := len(line)
	for n > 0 {
		if c := line[n-1]; c != ' ' && c != '\t' && c != '\r' {
			break
		}
		n--
	}
	return line[:n]
}

// IsHeaderLine reports whether a line (its ends trimmed) is a header
// line that a Reader takes to switch the format: readers of lines that
// cannot go through a Reader (the console's pages of a Kafka topic, which
// note where each record comes from) decide as it does.
func IsHeaderLine(line []byte) bool { return isFormatLine(line) }

// isFormatLine reports whether line is a header: a `${field}` format line,
// or bare names only (lowercase letters, digits, dashes) with at least one
// known field among them. Record lines never look like that: they hold
// numbers, addresses, upper-case enums or "-" among their values.
func isFormatLine(line []byte) bool {
	if bytes.HasPrefix(line, []byte("${")) {
		return true
	}
	if len(line) == 0 || line[0] < 'a' || line[0] > 'z' {
		return false
	}
	known := false
	for i := 0; i < len(line); {
		for i < len(line) && isFormatSpace(line[i]) {
			i++
		}
		j := i
		for j < len(line) && !isFormatSpace(line[j]) {
			j++
		}
		if j == i {
			break
		}
		tok := line[i:j]
		if tok[0] < 'a' || tok[0] > 'z' || len(tok) > 64 {
			return false
		}
		for _, c := range tok[1:] {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
		if !known {
			for k := range Fields {
				if Fields[k].Name == string(tok) {
					known = true
					break
				}
			}
		}
		i = j
	}
	return known
}
