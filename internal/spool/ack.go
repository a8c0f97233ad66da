package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// ackFile is the name of the file holding the ack state in the spool
// directory; ackTemp is where a new state is written before it replaces
// the old one by rename, so a crash leaves one or the other, never half.
const (
	ackFile  = "ack"
	ackTemp  = "ack.tmp"
	ackMagic = "FLSA"
	ackLen   = 32
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

func (a ackState) encode() []byte {
	b := make([]byte, 0, ackLen)
	b = append(b, ackMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Bound))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Upto))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeAck(b []byte) (ackState, error) {
	if len(b) != ackLen || string(b[:4]) != ackMagic {
		return ackState{}, fmt.Errorf("%w: ack state of %d bytes", errCorrupt, len(b))
	}
	if crc32.Checksum(b[:ackLen-4], castagnoli) != binary.LittleEndian.Uint32(b[ackLen-4:]) {
		return ackState{}, fmt.Errorf("%w: ack state checksum", errCorrupt)
	}
	a := ackState{
		Offset: int64(binary.LittleEndian.Uint64(b[4:])),
		Bound:  int64(binary.LittleEndian.Uint64(b[12:])),
		Upto:   int64(binary.LittleEndian.Uint64(b[20:])),
	}
	if a.Offset < 0 || a.Upto < a.Offset {
		return ackState{}, fmt.Errorf("%w: ack offsets %d, %d", errCorrupt, a.Offset, a.Upto)
	}
	return a, nil
}

// readAck reads the ack state of dir; a missing file is the zero state.
func readAck(dir string) (ackState, error) {
	b, err := os.ReadFile(filepath.Join(dir, ackFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ackState{Bound: minInt64}, nil
	}
	if err != nil {
		return ackState{Bound: minInt64}, fmt.Errorf("read ack state: %w", err)
	}
	a, err := decodeAck(b)
	if err != nil {
		return ackState{Bound: minInt64}, fmt.Errorf("read ack state %s: %w", filepath.Join(dir, ackFile), err)
	}
	return a, nil
}

// writeAck replaces the ack state of dir atomically (write, rename). It
// does not fsync: losing an ack in a power failure only means delivering
// again what was delivered, which at-least-once allows; a segment whose
// deletion reached the disk before the ack that covers it held only
// delivered entries, so a replay that finds it gone skips nothing owed.
// sync makes it durable (used when the spool stops).
func writeAck(dir string, a ackState, sync bool) error {
	tmp := filepath.Join(dir, ackTemp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write ack state: %w", err)
	}
	_, err = f.Write(a.encode())
	if err == nil && sync {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ackFile))
	}
	if err != nil {
		return fmt.Errorf("write ack state: %w", err)
	}
	return nil
}
