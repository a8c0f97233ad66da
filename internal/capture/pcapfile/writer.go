package pcapfile

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer writes a classic little-endian pcap file (version 2.4). Each call
// writes straight to the underlying writer, so give it a buffered one.
type Writer struct {
	w          io.Writer
	snapLen    uint32
	nanosecond bool
	hdr        [pcapRecordHeaderLen]byte
}

// NewWriter writes a pcap file header for the given link type and snapshot
// length, with nanosecond timestamps (magic a1b23c4d) or microsecond ones
// (a1b2c3d4), and returns a Writer for the records.
func NewWriter(w io.Writer, linkType uint32, snapLen uint32, nanosecond bool) (*Writer, error) {
	var h [pcapFileHeaderLen]byte
	magic := uint32(0xa1b2c3d4)
	if nanosecond {
		magic = 0xa1b23c4d
	}
	binary.LittleEndian.PutUint32(h[0:], magic)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], linkType)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("write pcap file header: %w", err)
	}
	return &Writer{w: w, snapLen: snapLen, nanosecond: nanosecond}, nil
}

// WritePacket writes one record. data longer than the snapshot length (if
// not 0) is cut to it; origLen is the length on the wire and is raised to
// len(data) if smaller (0 thus means "not cut"). Microsecond files drop the
// sub-microsecond part of tsNanos. pcap stores unsigned 32-bit seconds, so
// times before 1970 or after 2106 are an error.
func (w *Writer) WritePacket(tsNanos int64, data []byte, origLen uint32) error {
	if tsNanos < 0 || tsNanos/1e9 > math.MaxUint32 {
		return fmt.Errorf("write pcap record: timestamp %d ns is outside the pcap range (1970 to 2106)", tsNanos)
	}
	if len(data) > maxRecordLen {
		return fmt.Errorf("write pcap record: %d bytes exceed the 256 MiB limit", len(data))
	}
	if origLen < uint32(len(data)) {
		origLen = uint32(len(data))
	}
	if w.snapLen != 0 && uint32(len(data)) > w.snapLen {
		data = data[:w.snapLen]
	}
	frac := tsNanos % 1e9
	if !w.nanosecond {
		frac /= 1000
	}
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(tsNanos/1e9))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(frac))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(w.hdr[12:], origLen)
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return fmt.Errorf("write pcap record header: %w", err)
	}
	if _, err := w.w.Write(data); err != nil {
		return fmt.Errorf("write pcap record data: %w", err)
	}
	return nil
}
