package pcapfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic,
// always make progress, and end with io.EOF or one of its documented
// errors. The in-memory Reader (NewReaderBytes, which mapped files use)
// must yield exactly what the streaming one does.
func FuzzReader(f *testing.F) {
	captures, err := filepath.Glob(filepath.Join(corpusDir(f), "*.pcap*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range captures {
		if strings.HasSuffix(c, ".tsv") {
			continue
		}
		raw, err := os.ReadFile(c)
		if err != nil {
			f.Fatal(err)
		}
		if len(raw) > 64<<10 {
			raw = raw[:4<<10]
		}
		f.Add(raw)
	}
	ng, _, _ := sampleNg()
	f.Add(ng)
	f.Add(gzipped(f, ng[:600]))

	f.Fuzz(func(t *testing.T, data []byte) {
		rs, errS := NewReader(bytes.NewReader(data))
		rb, errB := NewReaderBytes(data)
		sameEnd(t, "NewReaderBytes", drain(t, rb, errB), drain(t, rs, errS))

		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			checkReaderError(t, err)
			return
		}
		compressed := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
		var p Packet
		prev := r.Offset()
		for calls := 0; ; calls++ {
			// Every packet record or block is at least 12 bytes, so a plain
			// input allows at most len/12 of them; a gzip bomb is bounded
			// by deflate's ratio.
			if !compressed && calls > len(data)/12+1 || calls > 2000*len(data)+10 {
				t.Fatalf("%d calls to Next on %d bytes: not making progress", calls, len(data))
			}
			err := r.Next(&p)
			if err != nil {
				checkReaderError(t, err)
				if again := r.Next(&p); again != err {
					t.Fatalf("Next after %v returned %v", err, again)
				}
				break
			}
			if len(p.Data) != int(p.CapLen) {
				t.Fatalf("len(Data) %d, CapLen %d", len(p.Data), p.CapLen)
			}
			if p.Interface < 0 || p.Interface >= len(r.Interfaces()) {
				t.Fatalf("packet on interface %d of %d", p.Interface, len(r.Interfaces()))
			}
			if p.Direction > 3 {
				t.Fatalf("direction %d", p.Direction)
			}
			if r.Offset() <= prev || !compressed && r.Offset() > int64(len(data)) {
				t.Fatalf("Offset went from %d to %d (input %d bytes)", prev, r.Offset(), len(data))
			}
			prev = r.Offset()
		}
	})
}

func checkReaderError(t *testing.T, err error) {
	t.Helper()
	var te *TruncatedError
	var ce *CorruptError
	switch {
	case err == io.EOF, errors.As(err, &te), errors.As(err, &ce), errors.Is(err, ErrNotCapture):
	case strings.Contains(err.Error(), "gzip"), strings.Contains(err.Error(), "read capture at offset"):
		// The decompressor's own errors (bad header, checksum, corrupt data).
	default:
		t.Fatalf("undocumented error %T: %v", err, err)
	}
	if te != nil && (te.Have >= te.Need || te.Have < 0 || te.Offset < 0) {
		t.Fatalf("inconsistent %+v", te)
	}
}
