package pcapfile

import (
	"io"
	"strconv"
)

const (
	pcapFileHeaderLen   = 24
	pcapRecordHeaderLen = 16
)

// readPcapHeader reads the 24-byte classic pcap file header; r.format and
// r.bigEndian are already set from its magic.
// lengthOrder tells where a pcap record keeps its captured length.
type lengthOrder uint8

const (
	lengthsStandard     lengthOrder = iota // captured length, then original length
	lengthsSwapped                         // before version 2.3: original, then captured
	lengthsMaybeSwapped                    // version 2.3: swapped if captured > original
)

func (r *Reader) readPcapHeader() error {
	if err := r.fill(pcapFileHeaderLen); err != nil {
		return r.truncated(err, pcapFileHeaderLen, "pcap file header")
	}
	h := r.buf[r.start : r.start+pcapFileHeaderLen]
	if major := r.u16(h[4:]); major != 2 {
		return &CorruptError{Offset: 0, What: "pcap file header",
			Reason: "unsupported version " + strconv.Itoa(int(major)) + "." + strconv.Itoa(int(r.u16(h[6:]))) +
				" (major version " + strconv.Itoa(int(major)) + "; only version 2 exists)"}
	}
	// Version 2.3 swapped the record's two length fields to match BPF;
	// earlier files have the old order, and some 2.3 writers kept it.
	switch minor := r.u16(h[6:]); {
	case minor < 3:
		r.lengths = lengthsSwapped
	case minor == 3:
		r.lengths = lengthsMaybeSwapped
	}
	r.fracScale = 1000
	if r.format == formatPcapNs {
		r.fracScale = 1
	}
	r.ifaces = []Interface{{
		SnapLen:  r.u32(h[16:]),
		LinkType: r.u32(h[20:]) & 0xFFFF, // upper bits: FCS length and reserved flags
	}}
	r.consume(pcapFileHeaderLen)
	return nil
}

func (r *Reader) nextPcap(p *Packet) error {
	if r.end-r.start < pcapRecordHeaderLen {
		if err := r.fill(pcapRecordHeaderLen); err != nil {
			if r.atEnd(err) {
				return io.EOF
			}
			return r.truncated(err, pcapRecordHeaderLen, "pcap record header")
		}
	}
	h := r.buf[r.start : r.start+pcapRecordHeaderLen]
	capLen, origLen := r.u32(h[8:]), r.u32(h[12:])
	if r.lengths == lengthsSwapped || r.lengths == lengthsMaybeSwapped && capLen > origLen {
		capLen, origLen = origLen, capLen
	}
	if capLen > maxRecordLen {
		return &CorruptError{Offset: r.off, What: "pcap record",
			Reason: "captured length " + strconv.FormatUint(uint64(capLen), 10) + " exceeds the 256 MiB limit"}
	}
	need := pcapRecordHeaderLen + int(capLen)
	if r.end-r.start < need {
		if err := r.fill(need); err != nil {
			return r.truncated(err, need, "pcap record")
		}
		h = r.buf[r.start : r.start+pcapRecordHeaderLen]
	}
	data := r.start + pcapRecordHeaderLen
	p.Interface = 0
	p.Timestamp = int64(r.u32(h[0:]))*1e9 + int64(r.u32(h[4:]))*r.fracScale
	p.CapLen = capLen
	p.OrigLen = origLen
	p.Data = r.buf[data : data+int(capLen) : data+int(capLen)]
	p.Direction = 0
	r.consume(need)
	return nil
}
