package pcapfile

import (
	"bytes"
	"io"
	"math"
	"math/bits"
	"strconv"
)

// pcapng block types (draft-ietf-opsawg-pcapng).
const (
	blockSHB            = 0x0A0D0D0A
	blockIDB            = 0x00000001
	blockPB             = 0x00000002 // obsolete Packet Block
	blockSPB            = 0x00000003
	blockNRB            = 0x00000004
	blockISB            = 0x00000005
	blockEPB            = 0x00000006
	blockDSB            = 0x0000000A
	blockCustom         = 0x00000BAD
	blockCustomNoCopy   = 0x40000BAD
	blockHeaderLen      = 8 // type + length
	blockTrailerLen     = 4 // length again
	minBlockLen         = blockHeaderLen + blockTrailerLen
	shbFixedLen         = 24 // header, byte-order magic, version, section length
	idbFixedLen         = 16
	epbFixedLen         = 28 // also the obsolete Packet Block
	spbFixedLen         = 12
	optEndOfOpt         = 0
	optPacketFlags      = 2 // epb_flags, pack_flags
	optIfName           = 2
	optIfDescription    = 3
	optIfMAC            = 6
	optIfTsresol        = 9
	optIfTsoffset       = 14
	defaultTsresolExp10 = 6 // microseconds, when an IDB has no if_tsresol
)

// clock converts one interface's timestamp units to Unix nanoseconds.
type clock struct {
	mul    uint64 // power-of-ten resolution of 1 ns or coarser: nanoseconds per unit
	div    uint64 // power-of-ten resolution finer than 1 ns: units per nanosecond
	shift  uint   // power-of-two resolution: ns = units * 1e9 >> shift
	pow2   bool
	offset int64 // if_tsoffset, in nanoseconds
}

// newClock interprets if_tsresol: the low 7 bits are a negative exponent of
// 10, or of 2 when the top bit is set.
func newClock(tsresol uint8, offsetSeconds int64) clock {
	c := clock{offset: offsetSeconds * 1e9}
	exp := uint(tsresol & 0x7f)
	switch {
	case tsresol&0x80 != 0:
		c.pow2, c.shift = true, exp
	case exp <= 9:
		c.mul = pow10(9 - exp)
	case exp-9 <= 19:
		c.div = pow10(exp - 9)
	default:
		// Units below 1e-28 s: every 64-bit count is under a nanosecond.
		c.div = math.MaxUint64
	}
	return c
}

func pow10(n uint) uint64 {
	v := uint64(1)
	for range n {
		v *= 10
	}
	return v
}

func (c *clock) nanos(units uint64) int64 {
	var ns uint64
	switch {
	case c.pow2:
		hi, lo := bits.Mul64(units, 1e9)
		if c.shift >= 64 {
			ns = hi >> (c.shift - 64)
		} else {
			ns = lo>>c.shift | hi<<(64-c.shift)
		}
	case c.div != 0:
		ns = units / c.div
	default:
		ns = units * c.mul
	}
	return int64(ns) + c.offset
}

// blockName names a block type for error messages.
func blockName(typ uint32) string {
	switch typ {
	case blockSHB:
		return "pcapng section header block"
	case blockIDB:
		return "pcapng interface description block"
	case blockPB:
		return "pcapng packet block"
	case blockSPB:
		return "pcapng simple packet block"
	case blockNRB:
		return "pcapng name resolution block"
	case blockISB:
		return "pcapng interface statistics block"
	case blockEPB:
		return "pcapng enhanced packet block"
	case blockDSB:
		return "pcapng decryption secrets block"
	case blockCustom, blockCustomNoCopy:
		return "pcapng custom block"
	}
	return "pcapng block of type 0x" + strconv.FormatUint(uint64(typ), 16)
}

// minLen is the smallest valid total length of a block of type typ.
func minLen(typ uint32) uint32 {
	switch typ {
	case blockSHB:
		return shbFixedLen + blockTrailerLen
	case blockIDB:
		return idbFixedLen + blockTrailerLen
	case blockEPB, blockPB:
		return epbFixedLen + blockTrailerLen
	case blockSPB:
		return spbFixedLen + blockTrailerLen
	}
	return minBlockLen
}

func (r *Reader) checkBlockLength(typ, length uint32) error {
	reason := ""
	switch {
	case length < minLen(typ):
		reason = "block length " + strconv.FormatUint(uint64(length), 10) +
			" is below the minimum of " + strconv.FormatUint(uint64(minLen(typ)), 10)
	case length%4 != 0:
		reason = "block length " + strconv.FormatUint(uint64(length), 10) + " is not a multiple of 4"
	case length > maxRecordLen:
		reason = "block length " + strconv.FormatUint(uint64(length), 10) + " exceeds the 256 MiB limit"
	default:
		return nil
	}
	return &CorruptError{Offset: r.off, What: blockName(typ), Reason: reason}
}

// loadBlock makes the whole block at r.start available and checks that its
// trailer repeats its length. The block stays unconsumed.
func (r *Reader) loadBlock(typ, length uint32) ([]byte, error) {
	if r.end-r.start < int(length) {
		if err := r.fill(int(length)); err != nil {
			return nil, r.truncated(err, int(length), blockName(typ))
		}
	}
	b := r.buf[r.start : r.start+int(length)]
	if trailer := r.u32(b[length-blockTrailerLen:]); trailer != length {
		return nil, &CorruptError{Offset: r.off, What: blockName(typ),
			Reason: "trailing block length " + strconv.FormatUint(uint64(trailer), 10) +
				" differs from leading block length " + strconv.FormatUint(uint64(length), 10)}
	}
	return b, nil
}

// splitOption splits the first option off opts, the bytes between a block's
// fixed fields and its trailer. ok is false if the option runs past them.
func (r *Reader) splitOption(opts []byte) (code uint16, val, rest []byte, ok bool) {
	if len(opts) < 4 {
		return 0, nil, nil, false
	}
	code = r.u16(opts)
	n := int(r.u16(opts[2:]))
	padded := (n + 3) &^ 3
	if 4+padded > len(opts) {
		return code, nil, nil, false
	}
	return code, opts[4 : 4+n], opts[4+padded:], true
}

// badOption reports the option at the start of opts, which splitOption
// rejected, in block b.
func (r *Reader) badOption(typ uint32, b, opts []byte) error {
	pos := len(b) - blockTrailerLen - len(opts)
	reason := "option header at block offset " + strconv.Itoa(pos) + " needs 4 bytes, " +
		strconv.Itoa(len(opts)) + " left before the block trailer"
	if len(opts) >= 4 {
		reason = "option " + strconv.Itoa(int(r.u16(opts))) + " at block offset " + strconv.Itoa(pos) +
			" has length " + strconv.Itoa(int(r.u16(opts[2:]))) + ", but only " +
			strconv.Itoa(len(opts)-4) + " bytes are left before the block trailer"
	}
	return &CorruptError{Offset: r.off, What: blockName(typ), Reason: reason}
}

// checkOptions validates the option lengths of a block whose options are
// not needed.
func (r *Reader) checkOptions(typ uint32, b, opts []byte) error {
	for len(opts) > 0 {
		code, _, rest, ok := r.splitOption(opts)
		if !ok {
			return r.badOption(typ, b, opts)
		}
		if code == optEndOfOpt {
			return nil
		}
		opts = rest
	}
	return nil
}

// readSectionHeader reads the Section Header Block at r.start, which sets
// the byte order of everything up to the next one and starts a new set of
// interface ids.
func (r *Reader) readSectionHeader() error {
	if err := r.fill(12); err != nil {
		return r.truncated(err, 12, blockName(blockSHB))
	}
	switch bom := r.buf[r.start+8 : r.start+12]; {
	case bytes.Equal(bom, []byte{0x4d, 0x3c, 0x2b, 0x1a}):
		r.bigEndian = false
	case bytes.Equal(bom, []byte{0x1a, 0x2b, 0x3c, 0x4d}):
		r.bigEndian = true
	default:
		return &CorruptError{Offset: r.off, What: blockName(blockSHB),
			Reason: "byte-order magic is 0x" + strconv.FormatUint(uint64(r.u32(bom)), 16) + ", not 0x1a2b3c4d"}
	}
	length := r.u32(r.buf[r.start+4:])
	if err := r.checkBlockLength(blockSHB, length); err != nil {
		return err
	}
	b, err := r.loadBlock(blockSHB, length)
	if err != nil {
		return err
	}
	if major, minor := r.u16(b[12:]), r.u16(b[14:]); major != 1 {
		return &CorruptError{Offset: r.off, What: blockName(blockSHB),
			Reason: "unsupported version " + strconv.Itoa(int(major)) + "." + strconv.Itoa(int(minor)) +
				" (only major version 1 exists)"}
	}
	if err := r.checkOptions(blockSHB, b, b[shbFixedLen:length-blockTrailerLen]); err != nil {
		return err
	}
	r.sectionBase = len(r.ifaces)
	r.consume(int(length))
	return nil
}

// readInterface reads an Interface Description Block.
func (r *Reader) readInterface(b []byte) error {
	iface := Interface{LinkType: uint32(r.u16(b[8:])), SnapLen: r.u32(b[12:])}
	tsresol := uint8(defaultTsresolExp10)
	var tsoffset int64
	for opts := b[idbFixedLen : len(b)-blockTrailerLen]; len(opts) > 0; {
		code, val, rest, ok := r.splitOption(opts)
		if !ok {
			return r.badOption(blockIDB, b, opts)
		}
		if code == optEndOfOpt {
			break
		}
		switch {
		case code == optIfName:
			iface.Name = string(bytes.TrimRight(val, "\x00"))
		case code == optIfDescription:
			iface.Description = string(bytes.TrimRight(val, "\x00"))
		case code == optIfMAC && len(val) == 6:
			iface.MAC = bytes.Clone(val)
		case code == optIfTsresol && len(val) >= 1:
			tsresol = val[0]
		case code == optIfTsoffset && len(val) == 8:
			tsoffset = int64(r.u64(val))
		}
		opts = rest
	}
	r.ifaces = append(r.ifaces, iface)
	r.clocks = append(r.clocks, newClock(tsresol, tsoffset))
	return nil
}

// interfaceIndex maps a section-local interface id to an index in r.ifaces.
func (r *Reader) interfaceIndex(typ uint32, id uint32) (int, error) {
	if n := len(r.ifaces) - r.sectionBase; uint64(id) >= uint64(n) {
		return 0, &CorruptError{Offset: r.off, What: blockName(typ),
			Reason: "packet refers to interface " + strconv.FormatUint(uint64(id), 10) +
				", but its section has described " + strconv.Itoa(n) + " interfaces"}
	}
	return r.sectionBase + int(id), nil
}

// readPacket fills p from an Enhanced Packet Block or an obsolete Packet
// Block, which differ only in the width of the interface id.
func (r *Reader) readPacket(typ uint32, b []byte, p *Packet) error {
	var id uint32
	if typ == blockEPB {
		id = r.u32(b[8:])
	} else {
		id = uint32(r.u16(b[8:]))
	}
	idx, err := r.interfaceIndex(typ, id)
	if err != nil {
		return err
	}
	capLen := r.u32(b[20:])
	if room := uint32(len(b)) - epbFixedLen - blockTrailerLen; capLen > room {
		return &CorruptError{Offset: r.off, What: blockName(typ),
			Reason: "captured length " + strconv.FormatUint(uint64(capLen), 10) +
				" does not fit in the block's " + strconv.FormatUint(uint64(room), 10) + " bytes of packet data"}
	}
	var direction uint8
	for opts := b[epbFixedLen+(capLen+3)&^3 : len(b)-blockTrailerLen]; len(opts) > 0; {
		code, val, rest, ok := r.splitOption(opts)
		if !ok {
			return r.badOption(typ, b, opts)
		}
		if code == optEndOfOpt {
			break
		}
		if code == optPacketFlags && len(val) == 4 {
			direction = uint8(r.u32(val) & 3)
		}
		opts = rest
	}
	units := uint64(r.u32(b[12:]))<<32 | uint64(r.u32(b[16:]))
	p.Interface = idx
	p.Timestamp = r.clocks[idx].nanos(units)
	p.CapLen = capLen
	p.OrigLen = r.u32(b[24:])
	p.Data = b[epbFixedLen : epbFixedLen+capLen : epbFixedLen+capLen]
	p.Direction = direction
	r.lastTimestamp = p.Timestamp
	return nil
}

// readSimplePacket fills p from a Simple Packet Block: interface 0 of the
// section, no timestamp (the previous packet's is used), and a captured
// length implied by the block size, the original length and the snapshot
// length.
func (r *Reader) readSimplePacket(b []byte, p *Packet) error {
	idx, err := r.interfaceIndex(blockSPB, 0)
	if err != nil {
		return err
	}
	origLen := r.u32(b[8:])
	capLen := min(origLen, uint32(len(b))-spbFixedLen-blockTrailerLen)
	if snap := r.ifaces[idx].SnapLen; snap != 0 {
		capLen = min(capLen, snap)
	}
	p.Interface = idx
	p.Timestamp = r.lastTimestamp
	p.CapLen = capLen
	p.OrigLen = origLen
	p.Data = b[spbFixedLen : spbFixedLen+capLen : spbFixedLen+capLen]
	p.Direction = 0
	return nil
}

func (r *Reader) nextPcapng(p *Packet) error {
	for {
		if r.end-r.start < blockHeaderLen {
			if err := r.fill(blockHeaderLen); err != nil {
				if r.atEnd(err) {
					return io.EOF
				}
				return r.truncated(err, blockHeaderLen, "pcapng block header")
			}
		}
		typ := r.u32(r.buf[r.start:])
		if typ == blockSHB {
			if err := r.readSectionHeader(); err != nil {
				return err
			}
			continue
		}
		length := r.u32(r.buf[r.start+4:])
		if err := r.checkBlockLength(typ, length); err != nil {
			return err
		}
		switch typ {
		case blockEPB, blockPB, blockSPB, blockIDB:
		default:
			if err := r.skipBlock(typ, length); err != nil {
				return err
			}
			continue
		}
		b, err := r.loadBlock(typ, length)
		if err != nil {
			return err
		}
		switch typ {
		case blockIDB:
			err = r.readInterface(b)
		case blockSPB:
			err = r.readSimplePacket(b, p)
		default:
			err = r.readPacket(typ, b, p)
		}
		if err != nil {
			return err
		}
		r.consume(int(length))
		if typ != blockIDB {
			return nil
		}
	}
}

// skipBlock consumes a block this package has no use for. A block that
// fits the buffer is checked like any other; a bigger one is streamed
// through the buffer rather than growing it.
func (r *Reader) skipBlock(typ, length uint32) error {
	if int(length) <= len(r.buf) {
		if _, err := r.loadBlock(typ, length); err != nil {
			return err
		}
		r.consume(int(length))
		return nil
	}
	blockOff := r.off
	for left := int(length) - blockTrailerLen; left > 0; {
		if r.end == r.start {
			if err := r.fill(1); err != nil {
				if err != errShort {
					return err
				}
				return &TruncatedError{Offset: blockOff, Need: int(length),
					Have: int(r.off - blockOff), What: blockName(typ)}
			}
		}
		n := min(left, r.end-r.start)
		r.consume(n)
		left -= n
	}
	if err := r.fill(blockTrailerLen); err != nil {
		if err != errShort {
			return err
		}
		return &TruncatedError{Offset: blockOff, Need: int(length),
			Have: int(r.off-blockOff) + r.end - r.start, What: blockName(typ)}
	}
	if trailer := r.u32(r.buf[r.start:]); trailer != length {
		return &CorruptError{Offset: blockOff, What: blockName(typ),
			Reason: "trailing block length " + strconv.FormatUint(uint64(trailer), 10) +
				" differs from leading block length " + strconv.FormatUint(uint64(length), 10)}
	}
	r.consume(blockTrailerLen)
	return nil
}
