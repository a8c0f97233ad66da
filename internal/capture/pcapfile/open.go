package pcapfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"
)

// errClosed is what Next returns after Close.
var errClosed = errors.New("read capture: reader is closed")

// NewReaderBytes returns a Reader over a capture held in memory. Packets
// are not copied: every packet's Data is a slice of data itself, so data
// must not change while the Reader is in use. Packets, offsets and errors
// are the same as NewReader's over bytes.NewReader(data). A gzip'd capture
// is decompressed as NewReader does it (through a buffer).
func NewReaderBytes(data []byte) (*Reader, error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		return NewReader(bytes.NewReader(data))
	}
	// The whole input is in the buffer and the source is exhausted: fill
	// finds what it needs there or reports the end, and never writes to
	// buf (a mapped file is read-only).
	rd := &Reader{buf: data, end: len(data), srcErr: io.EOF, ahead: math.MaxInt}
	if err := rd.readFileHeader(); err != nil {
		return nil, err
	}
	return rd, nil
}

// NewFileReader reads the capture in f from its current offset. A regular
// file is mapped into memory and read like NewReaderBytes, without a read
// system call or a copy per buffer; anything else (a pipe, a terminal, a
// character device, an empty or unmappable file) is streamed as NewReader
// does. Close releases the mapping; it does not close f.
//
// A mapped file must not shrink while it is read: reading a page that is
// no longer backed by the file raises SIGBUS, which crashes the program
// unless the reading goroutine has called debug.SetPanicOnFault (then it
// panics with a runtime.Error, see pipeline.Read). A file that grows is
// read as it was when mapped.
func NewFileReader(f *os.File) (*Reader, error) {
	data, err := mapFile(f)
	if err != nil || data == nil {
		return NewReader(f)
	}
	pos := mappedStart(f, len(data))
	populate(data, pos, pos+2*populateChunk)
	rd, err := NewReaderBytes(data[pos:])
	if err != nil {
		unmapFile(data)
		return nil, err
	}
	rd.mapped, rd.mapOff = data, pos
	rd.ahead = populateChunk
	return rd, nil
}

// populateChunk is how much of a mapped file is made present at a time,
// one chunk ahead of the reader, and released once read: enough to make
// the system calls rare (256 KiB, 1, 2 and 8 MiB read 10 M packets in the
// same CPU time, within the noise), little enough to keep the resident
// part of the mapping small (it counts in the process's peak RSS: 256 KiB
// chunks keep it under 1 MiB, 1 MiB chunks kept about 3).
const populateChunk = 256 << 10

// readAhead populates the chunk after the next one once the reader has
// reached the next one.
func (r *Reader) readAhead() {
	if r.mapped == nil {
		r.ahead = math.MaxInt
		return
	}
	from := r.mapOff + r.ahead + populateChunk
	populate(r.mapped, from, from+populateChunk)
	r.ahead += populateChunk
	// Let go of what the reader has left behind, so the resident mapping
	// stays about two chunks whatever the file's size. Dropping a chunk's
	// page table entries costs about what populating them did.
	if behind := r.mapOff + r.start; behind > r.released {
		release(r.mapped, r.released, behind)
		r.released = behind &^ (os.Getpagesize() - 1)
	}
}

// mappedStart is f's current offset within a mapping of n bytes, so that
// a file handed over part-read (standard input after a header was
// consumed, for example) is read from where it stands, as NewReader would.
func mappedStart(f *os.File, n int) int {
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil || pos < 0 || pos > int64(n) {
		return 0
	}
	return int(pos)
}

// Open opens the capture file at path with NewFileReader. Close closes it.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	rd, err := NewFileReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open capture %s: %w", path, err)
	}
	rd.file = f
	return rd, nil
}

// Mapped reports whether the Reader reads a file mapped into memory.
func (r *Reader) Mapped() bool { return r.mapped != nil }

// Close releases what the Reader holds: the mapping of NewFileReader and
// the file of Open. Packets read before must not be used afterwards, and
// Next returns an error. Closing a Reader of NewReader or NewReaderBytes
// only makes later calls to Next fail; their source is the caller's.
func (r *Reader) Close() error {
	if r.err != errClosed {
		r.err = errClosed
		r.buf, r.start, r.end = nil, 0, 0
	}
	var err error
	if r.mapped != nil {
		err = unmapFile(r.mapped)
		r.mapped = nil
	}
	if r.file != nil {
		if cerr := r.file.Close(); err == nil {
			err = cerr
		}
		r.file = nil
	}
	return err
}

// mappable reports whether a file of size bytes can be mapped whole.
func mappable(size int64) bool {
	return size > 0 && uint64(size) <= math.MaxInt
}

// MappingFault returns an error if v, a value recovered from a panic, is
// the memory fault of reading a page of r's mapping that the file no
// longer backs (the file shrank while it was read, see NewFileReader),
// and nil for anything else.
func (r *Reader) MappingFault(v any) error {
	fault, ok := v.(interface {
		error
		Addr() uintptr
	})
	if !ok || len(r.mapped) == 0 {
		return nil
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(r.mapped)))
	a := fault.Addr()
	if a < base || a-base >= uintptr(len(r.mapped)) {
		return nil
	}
	return fmt.Errorf("read capture at offset %d: the file shrank while it was read (memory fault in its mapping)", int(a-base)-r.mapOff)
}
