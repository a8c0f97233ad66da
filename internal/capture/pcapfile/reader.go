package pcapfile

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"

	"github.com/klauspost/compress/gzip"
)

const (
	// maxRecordLen bounds a pcap record's captured length and a pcapng
	// block's length. Real captures stay far below it (libpcap's largest
	// snapshot length is 256 KiB); a larger value means a damaged or hostile
	// file, and trusting it would let one length field demand gigabytes.
	maxRecordLen = 256 << 20

	defaultBufSize = 1 << 20

	// prefetchDistance is how far ahead of the record being read a mapped
	// file is prefetched.
	prefetchDistance = 1024
	minBufSize       = 4 << 10

	// maxEmptyReads is how many (0, nil) results from the source are
	// tolerated in a row before giving up with io.ErrNoProgress, so that a
	// misbehaving io.Reader cannot make Next spin forever.
	maxEmptyReads = 100
)

// Interface describes one capture interface: the single interface of a pcap
// file, or one pcapng Interface Description Block.
type Interface struct {
	LinkType    uint32 // link type, upper bits of the pcap field masked off (field & 0xFFFF)
	SnapLen     uint32 // maximum captured bytes per packet; 0 means no limit (pcapng)
	Name        string // pcapng if_name, "" if absent
	Description string // pcapng if_description, "" if absent
	MAC         []byte // pcapng if_MAC (6 bytes) if present, else nil
}

// Packet is one captured packet as Next fills it in.
type Packet struct {
	Interface int    // index into Interfaces(): pcap 0; pcapng IDB order, continued across sections
	Timestamp int64  // Unix nanoseconds
	CapLen    uint32 // bytes captured (== len(Data))
	OrigLen   uint32 // length on the wire
	Data      []byte // valid only until the next call to Next
	Direction uint8  // pcapng epb_flags bits 0-1: 0 unknown, 1 inbound, 2 outbound
}

type fileFormat uint8

const (
	formatPcap   fileFormat = iota + 1 // classic pcap, microsecond timestamps
	formatPcapNs                       // classic pcap, nanosecond timestamps
	formatPcapng
)

// Reader reads packets from a pcap or pcapng stream, optionally gzipped.
// It is not safe for concurrent use.
type Reader struct {
	src    io.Reader
	buf    []byte
	start  int   // buf[start:end] holds bytes read from src but not yet consumed
	end    int   //
	off    int64 // stream offset of buf[start]
	srcErr error // first error src returned; io.EOF once it is exhausted
	err    error // sticky result of Next once reading cannot continue

	format    fileFormat
	bigEndian bool        // byte order of the file (pcap) or of the current section (pcapng)
	fracScale int64       // pcap: nanoseconds per unit of the record's fraction field
	lengths   lengthOrder // pcap: order of the record's length fields

	ifaces        []Interface
	clocks        []clock // pcapng: timestamp resolution of each entry of ifaces
	sectionBase   int     // pcapng: index in ifaces of the current section's interface 0
	lastTimestamp int64   // pcapng: for Simple Packet Blocks, which carry none

	mapped []byte // the file mapping buf points into (NewFileReader), released by Close
	mapOff int    // offset of buf in mapped
	ahead  int    // once start reaches it, populate more of the mapping (readAhead)
	// released is where the part of the mapping still in the page table
	// starts: readAhead releases what the reader left behind.
	released int
	file     *os.File // the file Open opened, closed by Close
}

// errShort is returned by fill when the source ended before the requested
// bytes arrived; callers turn it into io.EOF or a *TruncatedError.
var errShort = errors.New("short input")

// NewReader detects the format of r by its magic number, reads the file
// header (pcap) or first section header (pcapng), and returns a Reader
// positioned at the first record. A gzip stream (one or several members) is
// decompressed transparently; offsets then count decompressed bytes.
//
// Input that is not a capture yields an error wrapping ErrNotCapture that
// shows the bytes found; a damaged header yields a *CorruptError or
// *TruncatedError.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{src: r, buf: make([]byte, initialBufSize(r)), ahead: math.MaxInt}
	if err := rd.fill(4); err != nil && err != errShort {
		return nil, err
	}
	if rd.end-rd.start >= 2 && rd.buf[0] == 0x1f && rd.buf[1] == 0x8b {
		if err := rd.startGzip(); err != nil {
			return nil, err
		}
		if err := rd.readFileHeader(); err != nil {
			if errors.Is(err, ErrNotCapture) {
				return nil, fmt.Errorf("decompress gzip stream: %w", err)
			}
			return nil, err
		}
		return rd, nil
	}
	if err := rd.readFileHeader(); err != nil {
		return nil, err
	}
	return rd, nil
}

// initialBufSize avoids a 1 MiB buffer for inputs known to be small (the
// in-memory readers used by tests and fuzzing report their length).
func initialBufSize(r io.Reader) int {
	if l, ok := r.(interface{ Len() int }); ok {
		return min(max(l.Len(), minBufSize), defaultBufSize)
	}
	return defaultBufSize
}

// startGzip replaces the source with a decompressor over the bytes already
// buffered followed by the rest of the source.
func (r *Reader) startGzip() error {
	prefix := bytes.Clone(r.buf[r.start:r.end])
	zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(prefix), r.src))
	if err != nil {
		return fmt.Errorf("open gzip stream: %w", err)
	}
	r.src = zr
	r.srcErr = nil
	r.start, r.end = 0, 0
	if len(r.buf) < defaultBufSize {
		r.buf = make([]byte, defaultBufSize)
	}
	if err := r.fill(4); err != nil && err != errShort {
		return err
	}
	return nil
}

// readFileHeader recognises the magic at the start of the stream and reads
// the pcap file header or the first pcapng section header block.
func (r *Reader) readFileHeader() error {
	magic := r.buf[r.start:r.end]
	if len(magic) < 4 {
		return notCapture(magic)
	}
	switch {
	case bytes.Equal(magic[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}):
		r.format, r.bigEndian = formatPcap, false
	case bytes.Equal(magic[:4], []byte{0xa1, 0xb2, 0xc3, 0xd4}):
		r.format, r.bigEndian = formatPcap, true
	case bytes.Equal(magic[:4], []byte{0x4d, 0x3c, 0xb2, 0xa1}):
		r.format, r.bigEndian = formatPcapNs, false
	case bytes.Equal(magic[:4], []byte{0xa1, 0xb2, 0x3c, 0x4d}):
		r.format, r.bigEndian = formatPcapNs, true
	case bytes.Equal(magic[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		r.format = formatPcapng
		if err := r.fill(12); err != nil {
			return r.truncated(err, 12, "pcapng section header block")
		}
		if !validBOM(r.buf[r.start+8 : r.start+12]) {
			return notCapture(r.buf[r.start:r.end])
		}
		return r.readSectionHeader()
	default:
		return notCapture(magic)
	}
	return r.readPcapHeader()
}

func validBOM(b []byte) bool {
	return bytes.Equal(b, []byte{0x4d, 0x3c, 0x2b, 0x1a}) || bytes.Equal(b, []byte{0x1a, 0x2b, 0x3c, 0x4d})
}

func notCapture(found []byte) error {
	const expected = "expected pcap magic a1b2c3d4 or a1b23c4d (either byte order), " +
		"a pcapng section header 0a0d0d0a with byte-order magic 1a2b3c4d (either byte order), or gzip 1f8b"
	if len(found) == 0 {
		return fmt.Errorf("%w: input is empty; %s", ErrNotCapture, expected)
	}
	return fmt.Errorf("%w: first bytes %s; %s", ErrNotCapture, hex.EncodeToString(found[:min(len(found), 16)]), expected)
}

// Next reads the next packet into p. It returns io.EOF at a clean end of the
// input, a *TruncatedError if the input ends inside a record, and a
// *CorruptError for a malformed record; every error is returned again by
// later calls. p.Data points into the Reader's buffer and is overwritten by
// the next call.
func (r *Reader) Next(p *Packet) error {
	if r.err != nil {
		return r.err
	}
	if r.start >= r.ahead {
		r.readAhead()
	}
	if r.mapped != nil && r.end-r.start > prefetchDistance+64 {
		// The hardware prefetcher stops at every 4 KiB page; a mapped
		// file is not in the cache as the streaming buffer is.
		prefetch(unsafe.Pointer(&r.buf[r.start+prefetchDistance]))
		prefetch(unsafe.Pointer(&r.buf[r.start+prefetchDistance+64]))
	}
	var err error
	if r.format == formatPcapng {
		err = r.nextPcapng(p)
	} else {
		err = r.nextPcap(p)
	}
	if err != nil {
		r.err = err
	}
	return err
}

// Interfaces returns the interfaces described so far: one for pcap, one per
// Interface Description Block read so far for pcapng. The slice is owned by
// the Reader; callers must not modify it.
func (r *Reader) Interfaces() []Interface { return r.ifaces }

// Kind names the file format: "pcap", "pcap-ns" (nanosecond pcap) or "pcapng".
func (r *Reader) Kind() string {
	switch r.format {
	case formatPcap:
		return "pcap"
	case formatPcapNs:
		return "pcap-ns"
	}
	return "pcapng"
}

// Offset returns the number of bytes consumed from the (decompressed)
// stream: the offset of the next record or block.
func (r *Reader) Offset() int64 { return r.off }

func (r *Reader) u16(b []byte) uint16 {
	if r.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *Reader) u64(b []byte) uint64 {
	if r.bigEndian {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// fill makes at least n unconsumed bytes available in buf[start:end]. It
// returns errShort if the source ends first, or the source's error. Slices
// handed out earlier may be overwritten.
func (r *Reader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if r.srcErr != nil {
		return r.sourceFailure()
	}
	if r.start+n > len(r.buf) {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	empty := 0
	for r.end-r.start < n {
		if r.end == len(r.buf) {
			// Only reached with start == 0 and n > len(buf): grow by at most
			// doubling, and only once the buffer is full of real input, so a
			// lying length field costs no more memory than the input holds.
			grown := make([]byte, min(2*len(r.buf), n))
			r.end = copy(grown, r.buf[r.start:r.end])
			r.start = 0
			r.buf = grown
		}
		m, err := r.src.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			r.srcErr = err
			if r.end-r.start >= n {
				return nil
			}
			return r.sourceFailure()
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty >= maxEmptyReads {
			r.srcErr = io.ErrNoProgress
			return r.sourceFailure()
		}
	}
	return nil
}

func (r *Reader) sourceFailure() error {
	if r.srcErr == io.EOF {
		return errShort
	}
	return fmt.Errorf("read capture at offset %d: %w", r.off+int64(r.end-r.start), r.srcErr)
}

// truncated turns a failed fill of need bytes at the current offset into the
// error Next reports.
func (r *Reader) truncated(err error, need int, what string) error {
	if err != errShort {
		return err
	}
	return &TruncatedError{Offset: r.off, Need: need, Have: r.end - r.start, What: what}
}

// atEnd reports a clean end: the source is exhausted on a record boundary.
func (r *Reader) atEnd(err error) bool {
	return err == errShort && r.end == r.start
}

func (r *Reader) consume(n int) {
	r.start += n
	r.off += int64(n)
}
