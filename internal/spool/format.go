package spool

// On-disk format.
//
// The spool directory holds segment files named by the global byte offset
// of their first byte, 20 decimal digits and ".seg" (00000000000000000000.seg,
// 00000000000016777216.seg, …): offsets grow across segments and restarts,
// so one number (the ack offset) says how far delivery got. A segment is a
// sequence of entries:
//
//	length  uint32 little endian: bytes in body
//	crc     uint32 little endian: CRC-32C (Castagnoli) of body
//	body    kind byte, then the payload
//
// Kinds:
//
//	'H' header, the first entry of every segment: "flowlog-spool 1\n" and
//	    the field names the record lines use (a flow log header line), so a
//	    segment stays readable after flowlog learns new fields.
//	'R' records: record lines in the header's fields, each ending in '\n'.
//	    A batch larger than chunkBytes spans several entries.
//	'A' advance: the watermark, int64 little endian.
//
// An entry never spans two segments. The ack file (ackFile) is 32 bytes:
// "FLSA", the ack offset, the durable bound and the offset it applies up
// to (int64 little endian each), and a CRC-32C of the first 28 bytes.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"

	"github.com/flowlog/flowlog/flow"
)

const (
	kindHeader  byte = 'H'
	kindRecords byte = 'R'
	kindAdvance byte = 'A'
)

// entryHeaderLen is the length and CRC before each body.
const entryHeaderLen = 8

// maxEntryBody bounds the body a decoder accepts: record entries are cut
// at chunkBytes and a single line is a few KiB, so a larger length field
// is corruption, not data (and must not make the reader allocate it).
const maxEntryBody = 16 << 20

// chunkBytes is the size at which a batch's record lines are cut into a
// new entry; it bounds what delivery holds in memory per entry.
const chunkBytes = 1 << 20

// headerMagic starts the payload of every header entry.
const headerMagic = "flowlog-spool 1\n"

// segmentSuffix names segment files.
const segmentSuffix = ".seg"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Decoding errors. errIncomplete means the bytes end inside an entry (a
// torn tail after a crash, or more to read); errCorrupt means the bytes
// cannot be an entry.
var (
	errIncomplete = errors.New("incomplete entry")
	errCorrupt    = errors.New("corrupt entry")
)

// spoolFormat renders and parses the record lines of new segments: every
// field flowlog knows, so a record survives the spool whatever the
// destination's format. It is built on first use, not at package
// initialisation, which every flowlog command (read included) pays for.
var spoolFormat = sync.OnceValue(func() *flow.Format {
	names := make([]string, flow.NumFields)
	for i := range flow.Fields {
		names[i] = "${" + flow.Fields[i].Name + "}"
	}
	f, err := flow.ParseFormat(strings.Join(names, " "))
	if err != nil {
		panic(err)
	}
	return f
})

// beginEntry appends the header of an entry of kind to b, to be completed
// by endEntry once the payload is appended; it returns the entry's start.
func beginEntry(b []byte, kind byte) ([]byte, int) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	return b, start
}

// endEntry fills in the length and CRC of the entry starting at start.
func endEntry(b []byte, start int) []byte {
	body := b[start+entryHeaderLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// appendHeaderEntry appends a segment's header entry for format f.
func appendHeaderEntry(b []byte, f *flow.Format) []byte {
	b, start := beginEntry(b, kindHeader)
	b = append(b, headerMagic...)
	b = append(b, f.Header()...)
	return endEntry(b, start)
}

// appendAdvanceEntry appends an advance entry.
func appendAdvanceEntry(b []byte, watermark int64) []byte {
	b, start := beginEntry(b, kindAdvance)
	b = binary.LittleEndian.AppendUint64(b, uint64(watermark))
	return endEntry(b, start)
}

// appendRecordEntries appends recs as record entries of at most about
// chunkBytes each, rendered in f.
func appendRecordEntries(b []byte, f *flow.Format, recs []flow.Record) []byte {
	if len(recs) == 0 {
		return b
	}
	b, start := beginEntry(b, kindRecords)
	for i := range recs {
		if len(b)-start >= chunkBytes {
			b = endEntry(b, start)
			b, start = beginEntry(b, kindRecords)
		}
		b = f.Append(b, &recs[i])
		b = append(b, '\n')
	}
	return endEntry(b, start)
}

// decodeEntry decodes the entry at the start of b: its kind, its payload
// (aliasing b) and its total length.
func decodeEntry(b []byte) (kind byte, payload []byte, n int, err error) {
	if len(b) < entryHeaderLen {
		return 0, nil, 0, errIncomplete
	}
	size := binary.LittleEndian.Uint32(b)
	if size == 0 || size > maxEntryBody {
		return 0, nil, 0, fmt.Errorf("%w: body length %d", errCorrupt, size)
	}
	if len(b)-entryHeaderLen < int(size) {
		return 0, nil, 0, errIncomplete
	}
	body := b[entryHeaderLen : entryHeaderLen+int(size)]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[4:]); got != want {
		return 0, nil, 0, fmt.Errorf("%w: checksum %08x, want %08x", errCorrupt, got, want)
	}
	switch kind = body[0]; kind {
	case kindHeader:
		if !strings.HasPrefix(string(body[1:]), headerMagic) {
			return 0, nil, 0, fmt.Errorf("%w: header without %q", errCorrupt, strings.TrimSpace(headerMagic))
		}
	case kindRecords:
		if body[len(body)-1] != '\n' {
			return 0, nil, 0, fmt.Errorf("%w: record lines without a final line end", errCorrupt)
		}
	case kindAdvance:
		if len(body) != 9 {
			return 0, nil, 0, fmt.Errorf("%w: advance of %d bytes", errCorrupt, len(body)-1)
		}
	default:
		return 0, nil, 0, fmt.Errorf("%w: unknown kind %q", errCorrupt, kind)
	}
	return kind, body[1:], entryHeaderLen + int(size), nil
}

// headerFormat returns the format a header entry's payload names.
func headerFormat(payload []byte) (*flow.Format, error) {
	line := strings.TrimSuffix(string(payload[len(headerMagic):]), "\n")
	f, err := flow.ParseHeader(line)
	if err != nil {
		return nil, fmt.Errorf("%w: header fields: %w", errCorrupt, err)
	}
	return f, nil
}

// advanceWatermark returns an advance entry's watermark.
func advanceWatermark(payload []byte) int64 {
	return int64(binary.LittleEndian.Uint64(payload))
}

// resync returns the offset in b, after from, of the next byte where a
// valid entry starts, or -1. It lets recovery keep the intact entries
// after a corrupt one: a false match needs a length that fits, a matching
// CRC-32C and a known kind, which random bytes almost never give.
func resync(b []byte, from int) int {
	for i := from + 1; i+entryHeaderLen < len(b); i++ {
		if _, _, _, err := decodeEntry(b[i:]); err == nil {
			return i
		}
	}
	return -1
}

// parseRecords parses the record lines of a payload in format f into recs
// (reusing its records) and returns them; keep, when not nil, filters.
func parseRecords(f *flow.Format, payload []byte, recs []flow.Record, keep func(*flow.Record) bool) ([]flow.Record, error) {
	recs = recs[:0]
	line := 0
	for len(payload) > 0 {
		i := bytes.IndexByte(payload, '\n')
		if i < 0 {
			i = len(payload)
		}
		line++
		if len(recs) == cap(recs) {
			recs = append(recs, flow.Record{})
		} else {
			recs = recs[:len(recs)+1]
		}
		r := &recs[len(recs)-1]
		if err := f.ParseRecord(payload[:i], r); err != nil {
			return recs[:len(recs)-1], fmt.Errorf("%w: line %d: %w", errCorrupt, line, err)
		}
		if keep != nil && !keep(r) {
			recs = recs[:len(recs)-1]
		}
		payload = payload[min(i+1, len(payload)):]
	}
	return recs, nil
}
