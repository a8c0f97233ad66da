package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The ack file holds the ack state in two fixed slots of ackSlotLen
// bytes, written alternately in place: a new state goes to the slot that
// does not hold the latest one, so a crash in the middle of a write
// leaves the previous state intact in the other slot, and overwriting
// allocated bytes needs no free space: delivery can acknowledge, and so
// delete segments, on a full disk. A slot is "FLSA", a sequence number,
// the ack offset, the durable bound and the offset it applies up to
// (int64 little endian each) and a CRC-32C of the bytes before it. The
// valid slot with the higher sequence number is the state.
const (
	ackFile    = "ack"
	ackMagic   = "FLSA"
	ackSlotLen = 4 + 8*4 + 4
)

// ackState is how far the destination has acknowledged the spool.
//
// Every entry before Offset is delivered for good. Entries from Offset up
// to Upto were delivered before a successful Advance, and their records
// with End < Bound are already durable at the destination (objects of
// periods it published): a replay skips those records, so replaying after
// a restart does not duplicate them. Bound is math.MinInt64 when the
// destination keeps nothing after Advance.
type ackState struct {
	Offset int64
	Bound  int64
	Upto   int64
}

func (a ackState) encode(seq uint64) []byte {
	b := make([]byte, 0, ackSlotLen)
	b = append(b, ackMagic...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Bound))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Upto))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeAck(b []byte) (ackState, uint64, error) {
	if len(b) != ackSlotLen || string(b[:4]) != ackMagic {
		return ackState{}, 0, fmt.Errorf("%w: no ack state", errCorrupt)
	}
	if crc32.Checksum(b[:ackSlotLen-4], castagnoli) != binary.LittleEndian.Uint32(b[ackSlotLen-4:]) {
		return ackState{}, 0, fmt.Errorf("%w: ack state checksum", errCorrupt)
	}
	seq := binary.LittleEndian.Uint64(b[4:])
	a := ackState{
		Offset: int64(binary.LittleEndian.Uint64(b[12:])),
		Bound:  int64(binary.LittleEndian.Uint64(b[20:])),
		Upto:   int64(binary.LittleEndian.Uint64(b[28:])),
	}
	if a.Offset < 0 || a.Upto < a.Offset {
		return ackState{}, 0, fmt.Errorf("%w: ack offsets %d, %d", errCorrupt, a.Offset, a.Upto)
	}
	return a, seq, nil
}

// ackLog is the open ack file.
type ackLog struct {
	f   *os.File
	seq uint64 // sequence number of the latest state
}

// openAck opens (creating) the ack file of dir and reads the state. A new
// file holds the zero state. When neither slot is valid the error says so
// and the state is the zero state: everything in the spool is delivered
// again, duplicates rather than loss.
func openAck(dir string) (*ackLog, ackState, error) {
	zero := ackState{Bound: minInt64}
	path := filepath.Join(dir, ackFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, zero, fmt.Errorf("open ack state: %w", err)
	}
	l := &ackLog{f: f}
	var b [2 * ackSlotLen]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		f.Close()
		return nil, zero, fmt.Errorf("read ack state: %w", err)
	}
	if n == 0 {
		// New: allocate both slots now, while there is space.
		err := l.write(zero, false)
		if err == nil {
			err = l.write(zero, true)
		}
		if err != nil {
			f.Close()
			return nil, zero, err
		}
		return l, zero, nil
	}
	state, found := zero, false
	var firstErr error
	for i := range 2 {
		a, seq, err := decodeAck(b[i*ackSlotLen : (i+1)*ackSlotLen])
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		if !found || seq > l.seq {
			state, l.seq, found = a, seq, true
		}
	}
	if !found {
		return l, zero, fmt.Errorf("read ack state %s: %w", path, firstErr)
	}
	return l, state, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// write stores a in the slot not holding the latest state. It does not
// fsync unless sync: losing an ack in a power failure only means
// delivering again what was delivered, which at-least-once allows; and a
// segment whose deletion reached the disk before the ack that covers it
// held only delivered entries, so a replay that finds it gone skips
// nothing owed.
func (l *ackLog) write(a ackState, sync bool) error {
	seq := l.seq + 1
	if _, err := l.f.WriteAt(a.encode(seq), int64(seq%2)*ackSlotLen); err != nil {
		return fmt.Errorf("write ack state: %w", err)
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("sync ack state: %w", err)
		}
	}
	l.seq = seq
	return nil
}

func (l *ackLog) close() {
	if l != nil && l.f != nil {
		l.f.Sync()
		l.f.Close()
		l.f = nil
	}
}
