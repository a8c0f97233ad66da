package pipeline

import (
	"bufio"
	"io"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// StreamSink writes records to a stream (stdout) as text lines with a
// header line, like a text object, or as JSON lines.
type StreamSink struct {
	w         *bufio.Writer
	format    *flow.Format
	json      bool
	header    bool
	started   bool
	buf       []byte
	lastFlush time.Time
}

// NewStreamSink writes records in format to w. With asJSON each record is
// one JSON object per line; otherwise text lines, preceded by the header
// line when header is set.
func NewStreamSink(w io.Writer, format *flow.Format, asJSON, header bool) *StreamSink {
	return &StreamSink{w: bufio.NewWriterSize(w, 256<<10), format: format, json: asJSON, header: header}
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
		if s.json {
			s.buf = s.format.AppendJSON(s.buf[:0], &recs[i])
		} else {
			s.buf = s.format.Append(s.buf[:0], &recs[i])
		}
		s.buf = append(s.buf, '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return err
		}
	}
	return nil
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
