// Package pcapfile owns reading and writing capture files without cgo: it
// reads classic pcap (microsecond and nanosecond, either byte order), pcapng
// (any number of sections, each in its own byte order) and gzip-compressed
// forms of both, and writes classic pcap.
//
// The Reader is zero-copy: every packet's Data is a slice of one reusable
// read buffer, valid only until the next call to Next, and Next allocates
// nothing. A regular file (NewFileReader, Open) is mapped into memory and
// its packets are slices of the mapping, which saves the read system calls
// and the copy into the buffer; pipes, standard input from a pipe and gzip
// are streamed. Damaged input never panics: a file that stops in the middle of a
// record yields a *TruncatedError, a record or block that contradicts itself
// yields a *CorruptError, and input that is no capture at all yields an error
// wrapping ErrNotCapture.
package pcapfile
