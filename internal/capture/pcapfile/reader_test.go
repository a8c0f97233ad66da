package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// hideLen hides Len() so the Reader starts with its full-size buffer, as it
// does for files and pipes.
type hideLen struct{ r io.Reader }

func (h hideLen) Read(p []byte) (int, error) { return h.r.Read(p) }

// readAll reads every packet, copying Data, and returns the final error.
func readAll(t testing.TB, r *Reader) ([]Packet, []int64, error) {
	t.Helper()
	var pkts []Packet
	var ends []int64
	for {
		var p Packet
		if err := r.Next(&p); err != nil {
			return pkts, ends, err
		}
		p.Data = bytes.Clone(p.Data)
		pkts = append(pkts, p)
		ends = append(ends, r.Offset())
	}
}

func samePackets(t testing.TB, got, want []Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d packets, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Interface != w.Interface || g.Timestamp != w.Timestamp || g.CapLen != w.CapLen ||
			g.OrigLen != w.OrigLen || g.Direction != w.Direction || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("packet %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestPcapngSample(t *testing.T) {
	raw, _, want := sampleNg()
	for name, src := range map[string]func() io.Reader{
		"bytes":    func() io.Reader { return bytes.NewReader(raw) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(raw)) },
		"no len":   func() io.Reader { return hideLen{bytes.NewReader(raw)} },
		"gzip":     func() io.Reader { return bytes.NewReader(gzipped(t, raw)) },
	} {
		t.Run(name, func(t *testing.T) {
			r, err := NewReader(src())
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind() != "pcapng" {
				t.Errorf("Kind() = %q", r.Kind())
			}
			got, _, err := readAll(t, r)
			if err != io.EOF {
				t.Fatalf("final error %v, want io.EOF", err)
			}
			samePackets(t, got, want)
			wantIfaces := []Interface{
				{LinkType: 1, SnapLen: 0, Name: "eth0", Description: "uplink", MAC: []byte{2, 0, 0, 0, 0, 1}},
				{LinkType: 101, SnapLen: 4},
				{LinkType: 228, SnapLen: 0},
			}
			ifaces := r.Interfaces()
			if len(ifaces) != len(wantIfaces) {
				t.Fatalf("Interfaces() = %+v", ifaces)
			}
			for i, w := range wantIfaces {
				g := ifaces[i]
				if g.LinkType != w.LinkType || g.SnapLen != w.SnapLen || g.Name != w.Name ||
					g.Description != w.Description || !bytes.Equal(g.MAC, w.MAC) {
					t.Errorf("interface %d = %+v, want %+v", i, g, w)
				}
			}
			if r.Offset() != int64(len(raw)) {
				t.Errorf("Offset() = %d, want %d", r.Offset(), len(raw))
			}
		})
	}
}

func TestClock(t *testing.T) {
	for _, tc := range []struct {
		tsresol uint8
		offset  int64
		units   uint64
		want    int64
	}{
		{6, 0, 1_500_000, 1_500_000_000},
		{3, 0, 5, 5_000_000},
		{0, 0, 7, 7_000_000_000},
		{9, 0, 123, 123},
		{12, 0, 5_000_000, 5_000},
		{0x80 | 1, 0, 3, 1_500_000_000},
		{0x80 | 30, 0, 1 << 30, 1_000_000_000},
		{0x80 | 64, 0, 1 << 63, 500_000_000},
		{6, -10, 20_000_000, 10_000_000_000},
		{127, 0, 1 << 60, 0},
	} {
		c := newClock(tc.tsresol, tc.offset)
		if got := c.nanos(tc.units); got != tc.want {
			t.Errorf("tsresol 0x%02x offset %d units %d: %d ns, want %d", tc.tsresol, tc.offset, tc.units, got, tc.want)
		}
	}
}

func TestBigEndianPcap(t *testing.T) {
	be := binary.BigEndian
	for _, tc := range []struct {
		magic uint32
		kind  string
		frac  uint32
		ns    int64
	}{
		{0xa1b2c3d4, "pcap", 250_000, 250_000_000},
		{0xa1b23c4d, "pcap-ns", 250_000_001, 250_000_001},
	} {
		raw := cat(pcapHeader(be, tc.magic, 2, 4, 1500, 0x0F000065),
			pcapRecord(be, 1_600_000_000, tc.frac, 4, 60, []byte{0x45, 0, 0, 60}),
			pcapRecord(be, 1_600_000_001, 0, 2, 2, []byte{0x60, 0}))
		r, err := NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := readAll(t, r)
		if err != io.EOF {
			t.Fatal(err)
		}
		if r.Kind() != tc.kind {
			t.Errorf("Kind() = %q, want %q", r.Kind(), tc.kind)
		}
		samePackets(t, got, []Packet{
			{Timestamp: 1_600_000_000*1e9 + tc.ns, CapLen: 4, OrigLen: 60, Data: []byte{0x45, 0, 0, 60}},
			{Timestamp: 1_600_000_001 * 1e9, CapLen: 2, OrigLen: 2, Data: []byte{0x60, 0}},
		})
		if ifs := r.Interfaces(); len(ifs) != 1 || ifs[0].LinkType != 101 || ifs[0].SnapLen != 1500 {
			t.Errorf("Interfaces() = %+v, want link type 101 (upper bits masked), snaplen 1500", ifs)
		}
	}
}

// Before version 2.3 a record stored the original length first; 2.3 files
// may have either order, told apart because captured <= original.
func TestPcapSwappedLengths(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		minor            uint16
		first, second    uint32
		wantCap, wantLen uint32
	}{
		{4, 3, 9, 3, 9},
		{4, 3, 2, 3, 2}, // caplen > origlen is kept as written
		{2, 9, 3, 3, 9},
		{3, 3, 9, 3, 9},
		{3, 9, 3, 3, 9},
	} {
		raw := cat(pcapHeader(le, 0xa1b2c3d4, 2, tc.minor, 65535, 1),
			pcapRecord(le, 1, 0, tc.first, tc.second, []byte{1, 2, 3}))
		r, err := NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		if err := r.Next(&p); err != nil {
			t.Fatalf("version 2.%d lengths %d %d: %v", tc.minor, tc.first, tc.second, err)
		}
		if p.CapLen != tc.wantCap || p.OrigLen != tc.wantLen || len(p.Data) != 3 {
			t.Errorf("version 2.%d lengths %d %d: caplen %d origlen %d, want %d %d",
				tc.minor, tc.first, tc.second, p.CapLen, p.OrigLen, tc.wantCap, tc.wantLen)
		}
	}
}

func TestNotCapture(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{nil, "input is empty"},
		{[]byte("hello, world"), "68656c6c6f2c20776f726c64"},
		{[]byte{0xd4, 0xc3}, "d4c3"},
		{cat([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0}, []byte{1, 2, 3, 4}), "0a0d0d0a1c00000001020304"},
		{gzipped(t, []byte("not a capture")), "6e6f742061206361707475726"},
	} {
		_, err := NewReader(bytes.NewReader(tc.in))
		if !errors.Is(err, ErrNotCapture) || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), "a1b2c3d4") {
			t.Errorf("input %q: %v, want ErrNotCapture naming %s and the expected magics", tc.in, err, tc.want)
		}
	}
}

func TestInvalidVersions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(corpusDir(t), "libpcap-pcap-invalid-version-1.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewReader(bytes.NewReader(raw))
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "version 1.4") || ce.Offset != 0 {
		t.Errorf("corpus invalid version: %v, want a *CorruptError naming version 1.4", err)
	}

	var b ngBuilder
	b.order = binary.LittleEndian
	b.block(blockSHB, cat(b.u32(0x1A2B3C4D), b.u16(2), b.u16(0), b.u64(0)))
	_, err = NewReader(bytes.NewReader(b.buf))
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "version 2.0") {
		t.Errorf("pcapng version 2.0: %v, want a *CorruptError naming it", err)
	}
}

func TestShbOptionTooLong(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(corpusDir(t), "libpcap-shb-option-too-long.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewReader(bytes.NewReader(raw))
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != 0 || !strings.Contains(ce.What, "section header") {
		t.Fatalf("corpus file: %v, want *CorruptError in the section header block at 0", err)
	}
	// The corpus file's trailer is damaged too; this one differs only in
	// the option length, so the option check must catch it.
	b := ngBuilder{order: binary.LittleEndian}
	b.shb(binary.LittleEndian, cat(b.u16(4), b.u16(12336), []byte("0000")))
	_, err = NewReader(bytes.NewReader(b.buf))
	if !errors.As(err, &ce) || ce.Offset != 0 || !strings.Contains(ce.Reason, "option 4 at block offset 24 has length 12336") {
		t.Fatalf("option too long: %v", err)
	}
}

func TestCorruptPcapng(t *testing.T) {
	le := binary.LittleEndian
	type fileFunc func(b *ngBuilder)
	idb := func(b *ngBuilder) { b.shb(le, nil); b.idb(1, 0, nil) }
	for _, tc := range []struct {
		name   string
		build  fileFunc
		what   string
		reason string
	}{
		{"length not multiple of 4", func(b *ngBuilder) {
			idb(b)
			b.raw(cat(b.u32(blockNRB), b.u32(14), make([]byte, 6)))
		}, "name resolution block", "not a multiple of 4"},
		{"length below minimum", func(b *ngBuilder) {
			idb(b)
			b.raw(cat(b.u32(blockEPB), b.u32(16), b.u32(0), b.u32(16)))
		}, "enhanced packet block", "below the minimum of 32"},
		{"length above limit", func(b *ngBuilder) {
			idb(b)
			b.raw(cat(b.u32(0x77), b.u32(300<<20), make([]byte, 64)))
		}, "block of type 0x77", "exceeds the 256 MiB limit"},
		{"trailer differs", func(b *ngBuilder) {
			idb(b)
			b.epb(0, 0, []byte("x"), 1, nil)
			le.PutUint32(b.buf[len(b.buf)-4:], 40)
		}, "enhanced packet block", "trailing block length 40 differs from leading block length 36"},
		{"skipped block trailer differs", func(b *ngBuilder) {
			idb(b)
			b.block(blockISB, make([]byte, 12))
			le.PutUint32(b.buf[len(b.buf)-4:], 8)
		}, "interface statistics block", "trailing block length 8"},
		{"IDB option overruns", func(b *ngBuilder) {
			b.shb(le, nil)
			b.idb(1, 0, cat(b.opt(optIfName, []byte("eth0")), b.u16(optIfDescription), b.u16(9), []byte("abcd")))
		}, "interface description block", "option 3 at block offset 24 has length 9, but only 4 bytes are left"},
		{"EPB option overruns", func(b *ngBuilder) {
			idb(b)
			b.epb(0, 0, []byte("abcd"), 4, cat(b.u16(optPacketFlags), b.u16(8), b.u32(1)))
		}, "enhanced packet block", "option 2 at block offset 32 has length 8"},
		{"EPB caplen past block", func(b *ngBuilder) {
			idb(b)
			b.epb(0, 0, []byte("abcd"), 4, nil)
			le.PutUint32(b.buf[len(b.buf)-36+20:], 5)
		}, "enhanced packet block", "captured length 5 does not fit in the block's 4 bytes"},
		{"EPB unknown interface", func(b *ngBuilder) {
			idb(b)
			b.epb(1, 0, []byte("abcd"), 4, nil)
		}, "enhanced packet block", "packet refers to interface 1, but its section has described 1 interfaces"},
		{"PB unknown interface", func(b *ngBuilder) {
			b.shb(le, nil)
			b.pb(0, 0, []byte("abcd"), 4, nil)
		}, "pcapng packet block", "interface 0, but its section has described 0"},
		{"SPB before any IDB", func(b *ngBuilder) {
			b.shb(le, nil)
			b.spb(4, []byte("abcd"))
		}, "simple packet block", "interface 0, but its section has described 0"},
		{"interface of an earlier section", func(b *ngBuilder) {
			idb(b)
			b.shb(binary.BigEndian, nil)
			b.epb(0, 0, []byte("abcd"), 4, nil)
		}, "enhanced packet block", "interface 0, but its section has described 0"},
		{"second SHB bad byte order", func(b *ngBuilder) {
			idb(b)
			b.shb(le, nil)
			le.PutUint32(b.buf[len(b.buf)-28+8:], 0x11223344)
		}, "section header block", "byte-order magic is 0x11223344"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ngBuilder{order: le}
			tc.build(&b)
			lastBlock := int64(b.starts[len(b.starts)-1])
			r, err := NewReader(bytes.NewReader(b.buf))
			if err == nil {
				_, _, err = readAll(t, r)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want *CorruptError", err)
			}
			if !strings.Contains(ce.What, tc.what) || !strings.Contains(ce.Reason, tc.reason) || ce.Offset != lastBlock {
				t.Fatalf("got %q (offset %d), want %q: %q at offset %d", err, ce.Offset, tc.what, tc.reason, lastBlock)
			}
		})
	}
}

func TestPcapRecordTooLong(t *testing.T) {
	le := binary.LittleEndian
	raw := cat(pcapHeader(le, 0xa1b2c3d4, 2, 4, 65535, 1), pcapRecord(le, 1, 0, 1, 1, []byte{7}),
		pcapRecord(le, 2, 0, 300<<20, 300<<20, make([]byte, 100)))
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	pkts, _, err := readAll(t, r)
	var ce *CorruptError
	if len(pkts) != 1 || !errors.As(err, &ce) || ce.Offset != 24+17 || !strings.Contains(ce.Reason, "314572800") {
		t.Fatalf("%d packets then %v, want 1 then *CorruptError at 41 naming the length", len(pkts), err)
	}
}

// TestTruncatedEverywhere cuts files at every byte and requires the packets
// wholly before the cut, then io.EOF on a record boundary or a
// *TruncatedError pointing at the start of the cut record.
func TestTruncatedEverywhere(t *testing.T) {
	ng, ngStarts, _ := sampleNg()

	var pcapBuf bytes.Buffer
	w, err := NewWriter(&pcapBuf, 1, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	pcapStarts := []int{0}
	for i := range 5 {
		pcapStarts = append(pcapStarts, pcapBuf.Len())
		if err := w.WritePacket(int64(i)*1e9, bytes.Repeat([]byte{byte(i)}, i*7), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range []struct {
		name      string
		raw       []byte
		starts    []int // record or block starts; the first is the file header
		headerLen int
	}{
		{"pcapng", ng, ngStarts, ngStarts[1]},
		{"pcap", pcapBuf.Bytes(), pcapStarts, pcapFileHeaderLen},
	} {
		full, err := NewReader(bytes.NewReader(file.raw))
		if err != nil {
			t.Fatal(err)
		}
		all, ends, err := readAll(t, full)
		if err != io.EOF {
			t.Fatal(err)
		}
		for cut := 0; cut < len(file.raw); cut++ {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				func(r io.Reader) io.Reader { return hideLen{iotest.HalfReader(r)} },
			} {
				checkCut(t, file.name, file.raw[:cut], wrap, file.starts, file.headerLen, all, ends)
			}
		}
	}
}

func checkCut(t *testing.T, name string, raw []byte, wrap func(io.Reader) io.Reader, starts []int,
	headerLen int, all []Packet, ends []int64) {
	t.Helper()
	cut := len(raw)
	r, err := NewReader(wrap(bytes.NewReader(raw)))
	var te *TruncatedError
	if cut < 4 {
		if !errors.Is(err, ErrNotCapture) {
			t.Fatalf("%s cut at %d: %v, want ErrNotCapture", name, cut, err)
		}
		return
	}
	if cut < headerLen {
		if !errors.As(err, &te) || te.Offset != 0 || te.Have != cut {
			t.Fatalf("%s cut at %d: %v, want *TruncatedError at 0 with %d bytes", name, cut, err, cut)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s cut at %d: %v", name, cut, err)
	}
	got, _, err := readAll(t, r)
	n := 0
	for n < len(ends) && ends[n] <= int64(cut) {
		n++
	}
	samePackets(t, got, all[:n])
	recordStart, _ := slices.BinarySearch(starts, cut)
	if recordStart < len(starts) && starts[recordStart] == cut {
		if err != io.EOF {
			t.Fatalf("%s cut at record boundary %d: %v, want io.EOF", name, cut, err)
		}
		return
	}
	start := starts[recordStart-1]
	if !errors.As(err, &te) || te.Offset != int64(start) || te.Have != cut-start || te.Need <= te.Have {
		t.Fatalf("%s cut at %d: %v, want *TruncatedError at %d with %d bytes", name, cut, err, start, cut-start)
	}
}

// A block bigger than the read buffer is streamed through it when skipped,
// and a record bigger than the buffer grows it.
func TestLargerThanBuffer(t *testing.T) {
	var b ngBuilder
	b.shb(binary.LittleEndian, nil)
	b.idb(1, 0, nil)
	b.block(blockCustom, cat(b.u32(1), make([]byte, 3<<20)))
	big := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16)
	b.epb(0, 42, big, uint32(len(big)), nil)
	b.epb(0, 43, []byte("tail"), 4, nil)

	r, err := NewReader(hideLen{bytes.NewReader(b.buf)})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := readAll(t, r)
	if err != io.EOF {
		t.Fatal(err)
	}
	samePackets(t, got, []Packet{
		{Timestamp: 42_000, CapLen: uint32(len(big)), OrigLen: uint32(len(big)), Data: big},
		{Timestamp: 43_000, CapLen: 4, OrigLen: 4, Data: []byte("tail")},
	})

	customStart := int64(b.starts[2])
	for _, cut := range []int{b.starts[2] + 8, b.starts[2] + 2<<20, b.starts[3] - 2} {
		r, err := NewReader(hideLen{bytes.NewReader(b.buf[:cut])})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = readAll(t, r)
		var te *TruncatedError
		if !errors.As(err, &te) || te.Offset != customStart || te.Have != cut-int(customStart) ||
			!strings.Contains(te.What, "custom block") {
			t.Errorf("cut at %d inside the big custom block: %v", cut, err)
		}
	}
}

// A length field that lies must not make the Reader allocate more than
// about twice the input it actually got.
func TestLyingLengthBoundedMemory(t *testing.T) {
	le := binary.LittleEndian
	input := cat(pcapHeader(le, 0xa1b2c3d4, 2, 4, 65535, 1), pcapRecord(le, 1, 0, 200<<20, 200<<20, make([]byte, 3<<20)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := NewReader(hideLen{bytes.NewReader(input)})
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	err = r.Next(&p)
	runtime.ReadMemStats(&after)
	var te *TruncatedError
	if !errors.As(err, &te) || te.Need != 16+200<<20 || te.Have != 16+3<<20 {
		t.Fatalf("got %v, want *TruncatedError needing %d", err, 16+200<<20)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d bytes for a %d-byte input", alloc, len(input))
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestSourceErrors(t *testing.T) {
	raw, _, _ := sampleNg()
	r, err := NewReader(io.MultiReader(bytes.NewReader(raw[:200]), iotest.ErrReader(iotest.ErrTimeout)))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = readAll(t, r)
	if !errors.Is(err, iotest.ErrTimeout) || !strings.Contains(err.Error(), "offset 200") {
		t.Errorf("got %v, want the source's error with its offset", err)
	}

	_, err = NewReader(zeroReader{})
	if !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("reader returning (0, nil) forever: %v, want io.ErrNoProgress", err)
	}

	// A gzip stream cut short reports the decompressor's error, wrapped.
	z := gzipped(t, raw)
	r, err = NewReader(bytes.NewReader(z[:len(z)-10]))
	if err == nil {
		_, _, err = readAll(t, r)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut gzip: %v, want io.ErrUnexpectedEOF", err)
	}
}

var (
	sinkPacket Packet
	sinkErr    error
)

func TestNextNoAllocs(t *testing.T) {
	for _, name := range []string{"gopacket-cip.pcap", "ndpi-alexa-app.pcapng", "gopacket-le-test301.pcapng"} {
		raw, err := os.ReadFile(filepath.Join(corpusDir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(200, func() {
			sinkErr = r.Next(&sinkPacket)
			if sinkErr != nil {
				panic(sinkErr)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Next, want 0", name, allocs)
		}
	}
}
