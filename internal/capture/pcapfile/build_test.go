package pcapfile

import (
	"encoding/binary"
)

// ngBuilder assembles pcapng files block by block, in the byte order of the
// section being written, so tests can state exactly what a file contains.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

type ngBuilder struct {
	order  byteOrder
	buf    []byte
	starts []int // offset of every block, for truncation tests
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (b *ngBuilder) u16(v uint16) []byte { return b.order.AppendUint16(nil, v) }
func (b *ngBuilder) u32(v uint32) []byte { return b.order.AppendUint32(nil, v) }
func (b *ngBuilder) u64(v uint64) []byte { return b.order.AppendUint64(nil, v) }

// opt encodes one option with its padding.
func (b *ngBuilder) opt(code uint16, val []byte) []byte {
	o := append(b.u16(code), b.u16(uint16(len(val)))...)
	return pad4(append(o, val...))
}

func (b *ngBuilder) endOpt() []byte { return b.opt(0, nil) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// block appends a block with a correct length in front and behind.
func (b *ngBuilder) block(typ uint32, body []byte) {
	body = pad4(body)
	length := uint32(12 + len(body))
	b.starts = append(b.starts, len(b.buf))
	b.buf = append(b.buf, b.u32(typ)...)
	b.buf = append(b.buf, b.u32(length)...)
	b.buf = append(b.buf, body...)
	b.buf = append(b.buf, b.u32(length)...)
}

// raw appends bytes that claim to be a block, for malformed ones.
func (b *ngBuilder) raw(block []byte) {
	b.starts = append(b.starts, len(b.buf))
	b.buf = append(b.buf, block...)
}

// shb starts a section in the given byte order.
func (b *ngBuilder) shb(order byteOrder, opts []byte) {
	b.order = order
	b.block(blockSHB, cat(b.u32(0x1A2B3C4D), b.u16(1), b.u16(0), b.u64(^uint64(0)), opts))
}

func (b *ngBuilder) idb(linkType uint16, snapLen uint32, opts []byte) {
	b.block(blockIDB, cat(b.u16(linkType), b.u16(0), b.u32(snapLen), opts))
}

func (b *ngBuilder) epb(iface uint32, units uint64, data []byte, origLen uint32, opts []byte) {
	b.block(blockEPB, cat(b.u32(iface), b.u32(uint32(units>>32)), b.u32(uint32(units)),
		b.u32(uint32(len(data))), b.u32(origLen), pad4(append([]byte(nil), data...)), opts))
}

// pb writes the obsolete Packet Block (type 2).
func (b *ngBuilder) pb(iface uint16, units uint64, data []byte, origLen uint32, opts []byte) {
	b.block(blockPB, cat(b.u16(iface), b.u16(0), b.u32(uint32(units>>32)), b.u32(uint32(units)),
		b.u32(uint32(len(data))), b.u32(origLen), pad4(append([]byte(nil), data...)), opts))
}

func (b *ngBuilder) spb(origLen uint32, data []byte) {
	b.block(blockSPB, cat(b.u32(origLen), data))
}

// pcapHeader builds a classic pcap file header in any byte order.
func pcapHeader(order binary.AppendByteOrder, magic uint32, major, minor uint16, snapLen, linkType uint32) []byte {
	return cat(order.AppendUint32(nil, magic), order.AppendUint16(nil, major), order.AppendUint16(nil, minor),
		order.AppendUint32(nil, 0), order.AppendUint32(nil, 0), order.AppendUint32(nil, snapLen),
		order.AppendUint32(nil, linkType))
}

func pcapRecord(order binary.AppendByteOrder, sec, frac, capLen, origLen uint32, data []byte) []byte {
	return cat(order.AppendUint32(nil, sec), order.AppendUint32(nil, frac), order.AppendUint32(nil, capLen),
		order.AppendUint32(nil, origLen), data)
}

// sampleNg is a two-section file using every block type the Reader knows,
// with the packets it must yield.
func sampleNg() ([]byte, []int, []Packet) {
	var b ngBuilder
	le, be := binary.LittleEndian, binary.BigEndian
	b.order = le // for the options built before shb sets it
	b.shb(le, cat(b.opt(2, []byte("test hardware")), b.endOpt()))
	b.idb(1, 0, cat(b.opt(optIfName, []byte("eth0")), b.opt(optIfDescription, []byte("uplink\x00")),
		b.opt(optIfMAC, []byte{2, 0, 0, 0, 0, 1}), b.opt(optIfTsresol, []byte{9}), b.endOpt()))
	b.block(blockNRB, cat(b.u16(1), b.u16(8), []byte{10, 0, 0, 1}, []byte("a\x00\x00\x00"), b.u32(0)))
	b.epb(0, 1_700_000_000_123_456_789, []byte("hello"), 60, cat(b.opt(optPacketFlags, b.u32(1)), b.endOpt()))
	b.block(blockISB, cat(b.u32(0), b.u32(0), b.u32(0)))
	b.block(blockCustom, cat(b.u32(32473), make([]byte, 5000)))
	b.pb(0, 1_700_000_001_000_000_000, []byte("abcdefg"), 7, cat(b.opt(optPacketFlags, b.u32(2))))
	b.spb(100, []byte("12345678"))
	b.block(blockDSB, cat(b.u32(0x544c534b), b.u32(4), []byte("keys")))

	b.shb(be, nil)
	b.idb(101, 4, cat(b.opt(optIfTsresol, []byte{0x80 | 20}), b.opt(optIfTsoffset, b.u64(1000))))
	b.idb(228, 0, nil)
	b.epb(1, 1_700_000_002_500_000, []byte{1, 2, 3}, 3, nil)
	b.spb(10, make([]byte, 12))
	b.block(blockCustomNoCopy, cat(b.u32(32473), []byte("private")))
	b.epb(0, 1_700_000_000<<20|1<<19, []byte{0x45, 0, 0, 20, 9}, 20, cat(b.opt(optPacketFlags, b.u32(0x1c)), b.endOpt()))

	want := []Packet{
		{Interface: 0, Timestamp: 1_700_000_000_123_456_789, CapLen: 5, OrigLen: 60, Data: []byte("hello"), Direction: 1},
		{Interface: 0, Timestamp: 1_700_000_001_000_000_000, CapLen: 7, OrigLen: 7, Data: []byte("abcdefg"), Direction: 2},
		{Interface: 0, Timestamp: 1_700_000_001_000_000_000, CapLen: 8, OrigLen: 100, Data: []byte("12345678")},
		{Interface: 2, Timestamp: 1_700_000_002_500_000_000, CapLen: 3, OrigLen: 3, Data: []byte{1, 2, 3}},
		{Interface: 1, Timestamp: 1_700_000_002_500_000_000, CapLen: 4, OrigLen: 10, Data: make([]byte, 4)},
		{Interface: 1, Timestamp: 1_700_001_000_500_000_000, CapLen: 5, OrigLen: 20, Data: []byte{0x45, 0, 0, 20, 9}},
	}
	return b.buf, b.starts, want
}
