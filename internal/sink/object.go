package sink

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/parquet"
)

// DefaultMaxObjectBytes is the uncompressed size at which an object is cut
// before its period is complete (spec §5: 75 MB).
const DefaultMaxObjectBytes = 75_000_000

// DefaultGzipLevel is the gzip level of objects unless configured: level 1
// of klauspost/compress writes text objects about 5% larger than level 6
// (zlib's default) for about 1.4 times the records per CPU second
// (bench/sinks/RESULTS.md): 1.2 M records per CPU second against level
// 6's 0.83 M, where a read path at the design's 10 M packets/s makes about
// 0.8 M, so level 6 leaves no headroom. Parquet objects gain less (7%) for
// 5% more bytes, but one level for both keeps the knob simple.
const DefaultGzipLevel = gzip.BestSpeed

// outBytes is how much compressed output an open object gathers before it
// writes to its Pending: the compressor emits a few hundred bytes at a time,
// which would be one system call each for a file.
const outBytes = 64 << 10

// flushBytes is how much rendered text an open object gathers before it is
// hashed and compressed: large enough that per-call overhead of the
// compressor vanishes, small enough to stay in cache.
const flushBytes = 64 << 10

// lateOrdinalBase numbers the objects opened for late records (records of a
// period Advance already published) apart from the cut objects of a period,
// so a late object never takes the name of an earlier one, even with equal
// text.
const lateOrdinalBase = 1 << 32

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("sink closed")

// Renderer renders records as text lines; *flow.Format implements it.
type Renderer interface {
	// Append appends the record's line, without a line end, to b.
	Append(b []byte, r *flow.Record) []byte
	// Header returns the header line of a text object, without a line end.
	Header() string
}

// Store is where an ObjectWriter puts objects: a local directory (Dir) or a
// bucket (sink/s3).
type Store interface {
	// Create starts an object whose key will lie in folder (Layout.Folder).
	Create(folder string) (Pending, error)
}

// Pending is one object being written: the compressed bytes are written to
// it, then it is either published under its final key or discarded.
type Pending interface {
	io.Writer
	// Publish makes the object visible under key all at once: readers see
	// the whole object or nothing. key lies in the folder given to Create.
	// After Publish returns an error, Discard is called.
	Publish(key string) error
	// Discard drops the object and what was written to it.
	Discard() error
}

// ObjectConfig configures an ObjectWriter.
type ObjectConfig struct {
	// Layout names the objects; Layout.Parquet makes them Parquet files
	// (.log.parquet) instead of gzip'd text (.log.gz).
	Layout Layout
	// Format renders the records. Parquet objects need a *flow.Format: its
	// fields are the columns.
	Format Renderer
	// MaxObjectBytes cuts an object when its uncompressed text (header line
	// included) would exceed it; 0 means DefaultMaxObjectBytes. Parquet
	// objects are measured by the text form of their records too, so text
	// and Parquet objects of the same records are cut at the same records.
	MaxObjectBytes int64
	// GzipLevel trades speed for size: 1 (fastest) to 9 (smallest); 0
	// means DefaultGzipLevel. It applies to the column chunks of gzip'd
	// Parquet objects too.
	GzipLevel int
	// ParquetCompression compresses the column chunks of Parquet objects:
	// parquet.Gzip (the default, as AWS) or parquet.Zstd.
	ParquetCompression parquet.Codec
	// PublishOnAdvance publishes every open object at each Advance instead
	// of when its 5-minute period is complete: a live agent's records then
	// reach the destination within seconds of their window closing (spec
	// §4), in several smaller objects per period.
	PublishOnAdvance bool
}

// ObjectStats counts what an ObjectWriter published and lost.
type ObjectStats struct {
	Objects           int64 // objects published
	Records           int64 // records in published objects
	Bytes             int64 // compressed bytes of published objects
	UncompressedBytes int64 // text bytes of published objects, header lines included
	LostObjects       int64 // objects discarded after a write or publish error
	LostRecords       int64 // records in them
}

// ObjectWriter groups records into objects the way AWS does for S3: one
// object per 5-minute period of the records' end times, cut early at
// MaxObjectBytes, named by Layout with a hash of its content, and publishes
// them to a Store. An object is gzip-compressed text starting with the
// header line, or with Layout.Parquet a Parquet file of the same records
// (package parquet: AWS's schema, gzip or zstd column chunks).
//
// The hash is the first 4 bytes of SHA-256 over the object's ordinal within
// its period (8 bytes, big endian; 0 unless the period was cut) followed by
// its uncompressed text, header line included, so the same records always
// give the same names (a re-run overwrites instead of duplicating) and two
// cut objects of one period never share a name even when their text is
// equal. A Parquet object is named by the hash of its records' text form:
// it has the name of the text object of the same records, but for its
// extension.
//
// An ObjectWriter is safe for concurrent use, though records must arrive in
// the order they are to be written.
type ObjectWriter struct {
	mu          sync.Mutex
	layout      Layout
	render      Renderer
	columns     *flow.Format // the format of Parquet objects; nil for text
	pqConfig    parquet.WriterConfig
	header      []byte // header line and its line end
	max         int64
	level       int
	eager       bool // PublishOnAdvance
	store       Store
	open        map[int64]*openObject // by period start
	last        *openObject           // the object the previous record went to
	spare       []*openObject         // finished objects kept for their compressor and buffer
	watermark   int64                 // highest watermark passed to Advance
	goodMark    int64                 // watermark after the last Advance that published everything it had to (Reset returns to it)
	lateObjects int                   // objects opened for periods already published
	closed      bool
	carry       []byte // a rendered line moved from a cut object to its successor
	published   []string
	stats       ObjectStats
}

// openObject is an object that still takes records.
type openObject struct {
	period     int64
	ordinal    int // objects of the period cut before this one
	pending    Pending
	zw         *gzip.Writer    // text objects
	pw         *parquet.Writer // Parquet objects
	out        *bufio.Writer   // between zw or pw and pending
	sum        hash.Hash
	buf        []byte // rendered text not yet hashed and compressed
	size       int64  // uncompressed bytes, buf included
	records    int64
	compressed int64 // bytes written to pending
}

// Write counts the compressed bytes on their way to the pending object.
func (o *openObject) Write(p []byte) (int, error) {
	n, err := o.pending.Write(p)
	o.compressed += int64(n)
	return n, err
}

// NewObjectWriter validates cfg and returns an ObjectWriter that publishes to
// store.
func NewObjectWriter(cfg ObjectConfig, store Store) (*ObjectWriter, error) {
	if err := cfg.Layout.Validate(); err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	if cfg.Format == nil {
		return nil, errors.New("format: missing")
	}
	var columns *flow.Format
	if cfg.Layout.Parquet {
		f, ok := cfg.Format.(*flow.Format)
		if !ok || f == nil {
			return nil, fmt.Errorf("format: parquet objects need a *flow.Format, not %T", cfg.Format)
		}
		columns = f
	}
	switch {
	case cfg.MaxObjectBytes == 0:
		cfg.MaxObjectBytes = DefaultMaxObjectBytes
	case cfg.MaxObjectBytes < 0:
		return nil, fmt.Errorf("max object bytes %d: negative", cfg.MaxObjectBytes)
	}
	switch {
	case cfg.GzipLevel == 0:
		cfg.GzipLevel = DefaultGzipLevel
	case cfg.GzipLevel < gzip.BestSpeed || cfg.GzipLevel > gzip.BestCompression:
		return nil, fmt.Errorf("gzip level %d: want 1 to 9", cfg.GzipLevel)
	}
	pqConfig := parquet.WriterConfig{Codec: cfg.ParquetCompression, GzipLevel: cfg.GzipLevel}
	if err := pqConfig.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("store: missing")
	}
	header := strings.TrimSuffix(cfg.Format.Header(), "\n") + "\n"
	return &ObjectWriter{
		layout:    cfg.Layout,
		render:    cfg.Format,
		columns:   columns,
		pqConfig:  pqConfig,
		header:    []byte(header),
		max:       cfg.MaxObjectBytes,
		level:     cfg.GzipLevel,
		eager:     cfg.PublishOnAdvance,
		store:     store,
		open:      make(map[int64]*openObject),
		watermark: minInt64,
		goodMark:  minInt64,
	}, nil
}

const minInt64 = -1 << 63

// Write appends recs, in order, to the open objects of their periods
// (PeriodOf(r.End)), cutting an object before a line that would take it past
// MaxObjectBytes (an object holds at least one record). A record of a period
// already completed by Advance (a packet that arrived long after its window
// closed) is not lost: it goes to a new object of its period, published by
// the next Advance or Close. An I/O error discards the object it happened to
// (counted in Stats) and stops the batch: the record being written when it
// happened, if not in that object, and the records after it are not written.
func (w *ObjectWriter) Write(recs []flow.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("write %d records: %w", len(recs), ErrClosed)
	}
	for i := range recs {
		r := &recs[i]
		p := PeriodOf(r.End)
		o := w.last
		if o == nil || o.period != p {
			o = w.open[p]
			if o == nil {
				ordinal := 0
				if p+PeriodSeconds <= w.watermark {
					ordinal = lateOrdinalBase + w.lateObjects
					w.lateObjects++
				}
				var err error
				if o, err = w.create(p, ordinal); err != nil {
					return err
				}
			}
			w.last = o
		}
		start := len(o.buf)
		o.buf = append(w.render.Append(o.buf, r), '\n')
		n := int64(len(o.buf) - start)
		if o.size+n > w.max && o.records > 0 {
			w.carry = append(w.carry[:0], o.buf[start:]...)
			o.buf = o.buf[:start]
			ordinal := o.ordinal + 1
			if err := w.publish(o); err != nil {
				return err
			}
			var err error
			if o, err = w.create(p, ordinal); err != nil {
				return err
			}
			w.last = o
			o.buf = append(o.buf, w.carry...)
		}
		o.size += n
		o.records++
		if o.pw != nil {
			if err := o.pw.WriteRecord(r); err != nil {
				w.discard(o)
				return fmt.Errorf("write object of period %s: %w", time.Unix(p, 0).UTC().Format(time.RFC3339), err)
			}
		}
		if len(o.buf) >= flushBytes {
			if err := o.flush(); err != nil {
				w.discard(o)
				return fmt.Errorf("write object of period %s: %w", time.Unix(p, 0).UTC().Format(time.RFC3339), err)
			}
		}
	}
	return nil
}

// Advance declares that every record with End < watermark has been written:
// the objects of periods that end at or before watermark are complete and are
// published, oldest period first. Errors of several objects are joined; each
// failed object is discarded.
func (w *ObjectWriter) Advance(watermark int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if watermark > w.watermark {
		w.watermark = watermark
	}
	err := w.publishWhere(func(period int64) bool { return w.eager || period+PeriodSeconds <= w.watermark })
	if err == nil {
		w.goodMark = w.watermark
	}
	return err
}

// Close publishes every object still open. Write fails after Close; a second
// Close does nothing.
func (w *ObjectWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return w.publishWhere(func(int64) bool { return true })
}

// Stats returns what was published and lost so far.
func (w *ObjectWriter) Stats() ObjectStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Published returns the keys of the objects published so far, in the order
// they were published. The list grows by one key per object (288 a day for
// a flow log with small traffic) for the writer's lifetime.
func (w *ObjectWriter) Published() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.published)
}

func (w *ObjectWriter) publishWhere(complete func(period int64) bool) error {
	var periods []int64
	for p := range w.open {
		if complete(p) {
			periods = append(periods, p)
		}
	}
	slices.Sort(periods)
	var errs []error
	for _, p := range periods {
		if err := w.publish(w.open[p]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// create opens the object number ordinal of period and writes its header.
func (w *ObjectWriter) create(period int64, ordinal int) (*openObject, error) {
	t := time.Unix(period, 0).UTC()
	folder := w.layout.Folder(t)
	pending, err := w.store.Create(folder)
	if err != nil {
		return nil, fmt.Errorf("create object in %s: %w", folder, err)
	}
	var o *openObject
	if n := len(w.spare); n > 0 {
		o, w.spare = w.spare[n-1], w.spare[:n-1]
		o.sum.Reset()
		o.buf = o.buf[:0]
	} else {
		o = &openObject{sum: sha256.New(), buf: make([]byte, 0, flushBytes+1024)}
	}
	*o = openObject{period: period, ordinal: ordinal, pending: pending, zw: o.zw, pw: o.pw, out: o.out, sum: o.sum, buf: o.buf}
	if o.out == nil {
		o.out = bufio.NewWriterSize(o, outBytes)
	} else {
		o.out.Reset(o)
	}
	switch {
	case w.columns != nil && o.pw == nil:
		if o.pw, err = parquet.NewWriter(o.out, w.columns, w.pqConfig); err != nil {
			_ = pending.Discard()
			return nil, fmt.Errorf("create parquet object in %s: %w", folder, err)
		}
	case w.columns != nil:
		o.pw.Reset(o.out)
	case o.zw == nil:
		o.zw, _ = gzip.NewWriterLevel(o.out, w.level) // the level was checked in NewObjectWriter
	default:
		o.zw.Reset(o.out)
	}
	var ord [8]byte
	binary.BigEndian.PutUint64(ord[:], uint64(ordinal))
	o.sum.Write(ord[:])
	o.buf = append(o.buf, w.header...)
	o.size = int64(len(w.header))
	w.open[period] = o
	return o, nil
}

// flush hashes the text o has gathered and, for a text object, compresses
// it (a Parquet object has its records already).
func (o *openObject) flush() error {
	o.sum.Write(o.buf)
	var err error
	if o.pw == nil {
		_, err = o.zw.Write(o.buf)
	}
	o.buf = o.buf[:0]
	return err
}

// publish completes o, names it and hands it to its Pending to publish.
func (w *ObjectWriter) publish(o *openObject) error {
	delete(w.open, o.period)
	if w.last == o {
		w.last = nil
	}
	t := time.Unix(o.period, 0).UTC()
	err := o.flush()
	if err == nil && o.pw != nil {
		err = o.pw.Close()
	} else if err == nil {
		err = o.zw.Close()
	}
	if err == nil {
		err = o.out.Flush()
	}
	if err != nil {
		w.discard(o)
		return fmt.Errorf("write object of period %s: %w", t.Format(time.RFC3339), err)
	}
	var sum [sha256.Size]byte
	key := w.layout.Key(t, hex.EncodeToString(o.sum.Sum(sum[:0])[:4]))
	if err := o.pending.Publish(key); err != nil {
		w.discard(o)
		return fmt.Errorf("publish %s: %w", key, err)
	}
	w.published = append(w.published, key)
	w.stats.Objects++
	w.stats.Records += o.records
	w.stats.Bytes += o.compressed
	w.stats.UncompressedBytes += o.size
	w.recycle(o)
	return nil
}

// discard drops o after an error; Discard's own error adds nothing to the
// error being reported.
func (w *ObjectWriter) discard(o *openObject) {
	delete(w.open, o.period)
	if w.last == o {
		w.last = nil
	}
	_ = o.pending.Discard()
	w.stats.LostObjects++
	w.stats.LostRecords += o.records
	w.recycle(o)
}

func (w *ObjectWriter) recycle(o *openObject) {
	o.pending = nil
	w.spare = append(w.spare, o)
}
