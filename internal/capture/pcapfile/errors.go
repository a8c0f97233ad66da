package pcapfile

import (
	"errors"
	"strconv"
)

// ErrNotCapture is wrapped by the error NewReader returns when the input
// starts with none of the magic numbers of pcap, pcapng or gzip.
var ErrNotCapture = errors.New("not a capture file")

// TruncatedError reports input that ends in the middle of a file header,
// record or block: the capture was cut short, typically by a writer that was
// killed or a copy that was interrupted. Every packet before Offset was
// delivered intact.
type TruncatedError struct {
	Offset int64  // offset in the (decompressed) stream where the cut record or block starts
	Need   int    // bytes the record or block needs from Offset (as far as its header tells)
	Have   int    // bytes the input still had from Offset
	What   string // what was cut, e.g. "pcap record", "pcapng enhanced packet block"
}

func (e *TruncatedError) Error() string {
	return "read " + e.What + " at offset " + strconv.FormatInt(e.Offset, 10) +
		": capture cut short: need " + strconv.Itoa(e.Need) + " bytes, have " + strconv.Itoa(e.Have)
}

// CorruptError reports a record or block whose fields contradict each other
// or exceed sane limits (a length that is not a multiple of 4, a trailer that
// differs from the header, an option running past its block, a packet naming
// an interface that was never described...). Reading stops there.
type CorruptError struct {
	Offset int64  // offset in the (decompressed) stream of the record or block
	What   string // the record or block, e.g. "pcapng interface description block"
	Reason string // what is wrong with it
}

func (e *CorruptError) Error() string {
	return "read " + e.What + " at offset " + strconv.FormatInt(e.Offset, 10) + ": " + e.Reason
}
