package corpus_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// This file is a deliberately tiny capture walker, independent of flowlog's
// reader. The expectation needs three things the tshark truth does not carry:
// the number of interfaces (pcapng IDBs, also those without packets), the
// file-global interface index of each frame (tshark numbers interfaces per
// section), and a few packet bytes (SLL packet type, IPv6 headers that
// frame.protocols leaves ambiguous).

// walkedFrame is one frame as tshark numbers them: a packet record of a pcap
// file, or a pcapng block tshark shows as a frame.
type walkedFrame struct {
	isPacket     bool   // false for pcapng custom blocks: tshark shows them as frames, they carry no packet
	iface        int    // file-global interface index (rule 8)
	sectionIface int    // interface index within its pcapng section, as tshark's frame.interface_id
	linkType     uint32 // link type of the frame's interface, upper bits masked off
	data         []byte // captured bytes
}

// walkedCapture is what the walker learned about one capture file.
type walkedCapture struct {
	interfaces int
	frames     []walkedFrame
	truncated  bool  // the file ends inside a record
	cutOffset  int64 // offset of the record the file ends in
}

func walkCapture(path string) (walkedCapture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return walkedCapture{}, err
	}
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == 0x0A0D0D0A {
		return walkPcapng(b)
	}
	return walkPcap(b)
}

func walkPcap(b []byte) (walkedCapture, error) {
	if len(b) < 24 {
		return walkedCapture{}, errors.New("pcap header cut short")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xA1B2C3D4, 0xA1B23C4D:
		bo = binary.LittleEndian
	case 0xD4C3B2A1, 0x4D3CB2A1:
		bo = binary.BigEndian
	default:
		return walkedCapture{}, fmt.Errorf("unknown magic %x", b[:4])
	}
	if major := bo.Uint16(b[4:]); major != 2 {
		return walkedCapture{}, fmt.Errorf("pcap major version %d", major)
	}
	c := walkedCapture{interfaces: 1}
	linkType := bo.Uint32(b[20:]) & 0xFFFF
	minor := bo.Uint16(b[6:])
	for off := 24; off < len(b); {
		if len(b)-off < 16 {
			c.truncated, c.cutOffset = true, int64(off)
			break
		}
		n, orig := int(bo.Uint32(b[off+8:])), int(bo.Uint32(b[off+12:]))
		// Writers before 2.3 put the two lengths the other way round;
		// libpcap and tshark swap them back (always below 2.3, at 2.3
		// when the captured length exceeds the original).
		if minor < 3 || minor == 3 && n > orig {
			n = orig
		}
		if len(b)-off-16 < n {
			c.truncated, c.cutOffset = true, int64(off)
			break
		}
		c.frames = append(c.frames, walkedFrame{isPacket: true, linkType: linkType, data: b[off+16 : off+16+n]})
		off += 16 + n
	}
	return c, nil
}

func walkPcapng(b []byte) (walkedCapture, error) {
	var c walkedCapture
	var bo binary.ByteOrder = binary.LittleEndian
	var section []int // global index of each interface of the current section
	var linkTypes []uint32
	var snapLens []uint32
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			c.truncated, c.cutOffset = true, int64(off)
			break
		}
		if binary.LittleEndian.Uint32(b[off:]) == 0x0A0D0D0A {
			switch binary.LittleEndian.Uint32(b[off+8:]) {
			case 0x1A2B3C4D:
				bo = binary.LittleEndian
			case 0x4D3C2B1A:
				bo = binary.BigEndian
			default:
				return c, fmt.Errorf("bad byte-order magic at %d", off)
			}
			section = section[:0]
		}
		typ, size := bo.Uint32(b[off:]), int(bo.Uint32(b[off+4:]))
		if size < 12 || size%4 != 0 {
			return c, fmt.Errorf("block at %d: length %d", off, size)
		}
		if size > len(b)-off {
			c.truncated, c.cutOffset = true, int64(off)
			break
		}
		body := b[off+8 : off+size-4]
		short := func(n int) error {
			if len(body) < n {
				return fmt.Errorf("block %#x at %d: body of %d bytes, need %d", typ, off, len(body), n)
			}
			return nil
		}
		frame := func(ifaceInSection int, data []byte) error {
			if ifaceInSection >= len(section) {
				return fmt.Errorf("block at %d: interface %d not described", off, ifaceInSection)
			}
			g := section[ifaceInSection]
			c.frames = append(c.frames, walkedFrame{isPacket: true, iface: g, sectionIface: ifaceInSection, linkType: linkTypes[g], data: data})
			return nil
		}
		var err error
		switch typ {
		case 1: // interface description
			if err := short(8); err != nil {
				return c, err
			}
			section = append(section, c.interfaces)
			linkTypes = append(linkTypes, uint32(bo.Uint16(body)))
			snapLens = append(snapLens, bo.Uint32(body[4:]))
			c.interfaces++
		case 6, 2: // enhanced packet, obsolete packet
			if err := short(20); err != nil {
				return c, err
			}
			var iface int
			if typ == 6 {
				iface = int(bo.Uint32(body))
			} else {
				iface = int(bo.Uint16(body))
			}
			n := int(bo.Uint32(body[12:]))
			if err := short(20 + n); err != nil {
				return c, err
			}
			err = frame(iface, body[20:20+n])
		case 3: // simple packet: interface 0 of the section, captured length implied
			if err := short(4); err != nil {
				return c, err
			}
			n := min(int(bo.Uint32(body)), len(body)-4)
			if len(section) > 0 && snapLens[section[0]] != 0 {
				n = min(n, int(snapLens[section[0]]))
			}
			err = frame(0, body[4:4+n])
		case 0xBAD, 0x40000BAD: // custom blocks: tshark lists them as frames of no interface
			c.frames = append(c.frames, walkedFrame{iface: -1, sectionIface: -1})
		}
		if err != nil {
			return c, err
		}
		off += size
	}
	return c, nil
}
