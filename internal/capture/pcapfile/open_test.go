package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// readEnd is everything a Reader yields: its packets (Data copied), the
// offset after each, its interfaces and its final error.
type readEnd struct {
	kind   string
	pkts   []Packet
	ends   []int64
	ifaces []Interface
	err    error
}

func drain(t testing.TB, r *Reader, err error) readEnd {
	t.Helper()
	if err != nil {
		return readEnd{err: err}
	}
	pkts, ends, err := readAll(t, r)
	return readEnd{kind: r.Kind(), pkts: pkts, ends: ends, ifaces: r.Interfaces(), err: err}
}

// sameEnd requires two reads of one input to agree on everything,
// errors included (by message, which holds the offsets).
func sameEnd(t testing.TB, what string, got, want readEnd) {
	t.Helper()
	if (got.err == nil) != (want.err == nil) || got.err != nil && got.err.Error() != want.err.Error() {
		t.Fatalf("%s: error %v, streaming gave %v", what, got.err, want.err)
	}
	var gt, wt *TruncatedError
	if errors.As(want.err, &wt) && (!errors.As(got.err, &gt) || *gt != *wt) {
		t.Fatalf("%s: %#v, streaming gave %#v", what, got.err, want.err)
	}
	if got.kind != want.kind || len(got.ifaces) != len(want.ifaces) {
		t.Fatalf("%s: %s with %d interfaces, streaming gave %s with %d", what, got.kind, len(got.ifaces), want.kind, len(want.ifaces))
	}
	for i := range want.ifaces {
		g, w := got.ifaces[i], want.ifaces[i]
		if g.LinkType != w.LinkType || g.SnapLen != w.SnapLen || g.Name != w.Name || g.Description != w.Description || !bytes.Equal(g.MAC, w.MAC) {
			t.Fatalf("%s: interface %d is %+v, streaming gave %+v", what, i, g, w)
		}
	}
	samePackets(t, got.pkts, want.pkts)
	for i := range want.ends {
		if got.ends[i] != want.ends[i] {
			t.Fatalf("%s: offset after packet %d is %d, streaming gave %d", what, i, got.ends[i], want.ends[i])
		}
	}
}

// streamed reads raw with the streaming Reader through a full-size buffer.
func streamed(t testing.TB, raw []byte) readEnd {
	r, err := NewReader(hideLen{bytes.NewReader(raw)})
	return drain(t, r, err)
}

// mappedFile writes raw to a file and reads it with Open.
func mappedFile(t testing.TB, raw []byte) readEnd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		return readEnd{err: errors.Unwrap(err)} // Open names the file on top
	}
	defer r.Close()
	if !r.Mapped() && len(raw) > 0 && runtime.GOOS == "linux" {
		t.Fatalf("Open of a regular file of %d bytes did not map it", len(raw))
	}
	return drain(t, r, nil)
}

// TestMappedMatchesStreaming reads every corpus capture, the sample
// pcapng and a gzip'd capture from a mapped file, and from memory with
// NewReaderBytes, and requires what the streaming Reader gives.
func TestMappedMatchesStreaming(t *testing.T) {
	ng, _, _ := sampleNg()
	inputs := map[string][]byte{"sample.pcapng": ng, "sample.pcapng.gz": gzipped(t, ng)}
	dir := corpusDir(t)
	for _, m := range readManifest(t) {
		raw, err := os.ReadFile(filepath.Join(dir, m.file))
		if err != nil {
			t.Fatal(err)
		}
		inputs[m.file] = raw
	}
	for name, raw := range inputs {
		want := streamed(t, raw)
		r, err := NewReaderBytes(raw)
		sameEnd(t, name+" (NewReaderBytes)", drain(t, r, err), want)
		sameEnd(t, name+" (mapped)", mappedFile(t, raw), want)
	}
}

// TestMappedTruncatedEverywhere cuts the sample files at every byte: the
// in-memory Reader (the mapped file's code path) gives the packets,
// offsets and errors (TruncatedError offsets, needs and haves) of the
// streaming one; every 37th cut is read from a mapped file too.
func TestMappedTruncatedEverywhere(t *testing.T) {
	ng, _, _ := sampleNg()
	var pcapBuf bytes.Buffer
	w, err := NewWriter(&pcapBuf, 1, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := w.WritePacket(int64(i)*1e9, bytes.Repeat([]byte{byte(i)}, i*7), 0); err != nil {
			t.Fatal(err)
		}
	}
	for name, raw := range map[string][]byte{"pcapng": ng, "pcap": pcapBuf.Bytes()} {
		for cut := 0; cut <= len(raw); cut++ {
			want := streamed(t, raw[:cut])
			r, err := NewReaderBytes(raw[:cut])
			sameEnd(t, name+" cut at "+strconv.Itoa(cut), drain(t, r, err), want)
			if cut%37 == 0 || cut == len(raw) {
				sameEnd(t, name+" mapped, cut at "+strconv.Itoa(cut), mappedFile(t, raw[:cut]), want)
			}
		}
	}
}

// TestMappedLargeFile reads a capture larger than several populate chunks
// (so readAhead runs), from a mapped file and streamed, with a record
// bigger than the streaming buffer in the middle.
func TestMappedLargeFile(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 2<<20)
	for i := 0; buf.Len() < 3*populateChunk+12345; i++ {
		binary.BigEndian.PutUint32(frame, uint32(i))
		n := 60 + i%1340
		if i == 5000 {
			n = len(frame) // bigger than the streaming buffer
		}
		if err := w.WritePacket(int64(i)*1e6, frame[:n], 0); err != nil {
			t.Fatal(err)
		}
	}
	raw := buf.Bytes()
	want := streamed(t, raw)
	if want.err != io.EOF || len(want.pkts) < 1000 {
		t.Fatalf("streaming: %d packets, then %v", len(want.pkts), want.err)
	}
	sameEnd(t, "large file, mapped", mappedFile(t, raw), want)
}

// A file handed over part-read is read from its offset, as the streaming
// Reader would; a pipe is streamed.
func TestNewFileReaderOffsetAndPipe(t *testing.T) {
	ng, _, want := sampleNg()
	path := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(path, append([]byte("junk before the capture"), ng...), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(int64(len("junk before the capture")), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	r, err := NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, r, nil)
	if got.err != io.EOF || r.Offset() != int64(len(ng)) {
		t.Fatalf("read to %v at offset %d, want io.EOF at %d", got.err, r.Offset(), len(ng))
	}
	samePackets(t, got.pkts, want)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekCurrent); err != nil {
		t.Fatalf("Close closed the caller's file: %v", err)
	}
	var p Packet
	if err := r.Next(&p); err == nil || err == io.EOF {
		t.Fatalf("Next after Close: %v, want an error", err)
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(ng)
		pw.Close()
	}()
	r, err = NewFileReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mapped() {
		t.Fatal("a pipe was mapped")
	}
	got = drain(t, r, nil)
	if got.err != io.EOF {
		t.Fatal(got.err)
	}
	samePackets(t, got.pkts, want)
	r.Close()
	pr.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty.pcap")
	notCap := filepath.Join(dir, "text.pcap")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(notCap, []byte("hello, this is text"), 0o644)
	for _, path := range []string{empty, notCap} {
		_, err := Open(path)
		if !errors.Is(err, ErrNotCapture) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want ErrNotCapture naming the file", path, err)
		}
	}
}

// A mapped file that shrinks while it is read faults; with
// SetPanicOnFault the fault is a panic that MappingFault recognises.
func TestMappingFault(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("files are mapped on Linux only")
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		w.WritePacket(int64(i)*1e6, make([]byte, 100), 0)
	}
	path := filepath.Join(t.TempDir(), "shrinks.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var p Packet
	if err := r.Next(&p); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	fault := func() (err error) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if e := recover(); e != nil {
				if err = r.MappingFault(e); err == nil {
					err = fmt.Errorf("not recognised as a mapping fault: %v", e)
				}
			}
		}()
		for {
			if err := r.Next(&p); err != nil {
				return fmt.Errorf("Next returned %v instead of faulting", err)
			}
		}
	}()
	if fault == nil || !strings.Contains(fault.Error(), "shrank") {
		t.Fatalf("reading past the new end: %v", fault)
	}
	t.Logf("as expected: %v", fault)
	if r.MappingFault(errors.New("something else")) != nil || r.MappingFault("x") != nil {
		t.Error("MappingFault claims other panics")
	}
}

func TestMappedNextNoAllocs(t *testing.T) {
	for _, name := range []string{"gopacket-cip.pcap", "ndpi-alexa-app.pcapng"} {
		r, err := Open(filepath.Join(corpusDir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(200, func() {
			if sinkErr = r.Next(&sinkPacket); sinkErr != nil {
				panic(sinkErr)
			}
		})
		r.Close()
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Next, want 0", name, allocs)
		}
	}
}
