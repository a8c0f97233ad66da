package pcapfile

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

type failWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errDiskFull
	}
	f.after--
	return len(p), nil
}

func TestWriterRoundTrip(t *testing.T) {
	type in struct {
		ts      int64
		data    []byte
		origLen uint32
	}
	inputs := []in{
		{0, []byte{}, 0},
		{1_700_000_000_123_456_789, []byte("first packet"), 0},
		{1_700_000_000_999_999_999, bytes.Repeat([]byte{0xab}, 300), 1500},
		{4_294_967_295_999_999_999, []byte("last second pcap can hold"), 5},
	}
	for _, nano := range []bool{false, true} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, 276, 100, nano)
		if err != nil {
			t.Fatal(err)
		}
		var want []Packet
		for _, p := range inputs {
			if err := w.WritePacket(p.ts, p.data, p.origLen); err != nil {
				t.Fatal(err)
			}
			ts := p.ts
			if !nano {
				ts -= ts % 1000
			}
			data := p.data[:min(len(p.data), 100)]
			orig := max(p.origLen, uint32(len(p.data)))
			want = append(want, Packet{Timestamp: ts, CapLen: uint32(len(data)), OrigLen: orig, Data: data})
		}
		r, err := NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		wantKind := map[bool]string{false: "pcap", true: "pcap-ns"}[nano]
		if r.Kind() != wantKind {
			t.Errorf("Kind() = %q, want %q", r.Kind(), wantKind)
		}
		if ifs := r.Interfaces(); len(ifs) != 1 || ifs[0].LinkType != 276 || ifs[0].SnapLen != 100 {
			t.Errorf("Interfaces() = %+v", ifs)
		}
		got, _, err := readAll(t, r)
		if err != io.EOF {
			t.Fatal(err)
		}
		samePackets(t, got, want)
	}
}

func TestWriterErrors(t *testing.T) {
	if _, err := NewWriter(&failWriter{}, 1, 0, false); !errors.Is(err, errDiskFull) ||
		!strings.Contains(err.Error(), "write pcap file header") {
		t.Errorf("NewWriter on a failing writer: %v", err)
	}
	w, err := NewWriter(&failWriter{after: 1}, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(1e9, []byte("x"), 0); !errors.Is(err, errDiskFull) {
		t.Errorf("WritePacket on a failing writer: %v", err)
	}
	w, err = NewWriter(io.Discard, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range []int64{-1, 4_294_967_296 * 1e9} {
		if err := w.WritePacket(ts, nil, 0); err == nil || !strings.Contains(err.Error(), "outside the pcap range") {
			t.Errorf("timestamp %d: %v, want a range error", ts, err)
		}
	}
}

var sinkWriteErr error

func TestWritePacketNoAllocs(t *testing.T) {
	w, err := NewWriter(io.Discard, 1, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64)
	if allocs := testing.AllocsPerRun(1000, func() { sinkWriteErr = w.WritePacket(1e18, data, 0) }); allocs != 0 {
		t.Errorf("%v allocations per WritePacket, want 0", allocs)
	}
}
