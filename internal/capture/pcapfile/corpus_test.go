package pcapfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// corpusDir finds ../shared/corpora/pcap beside the module root, which CI
// and the development machines lay out the same way.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "corpora", "pcap")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

type manifestRow struct {
	file, linkType, notes string
	packets               int
}

func (m manifestRow) malformed() bool { return strings.Contains(m.notes, "malformed FILE") }
func (m manifestRow) cutShort() bool  { return strings.Contains(m.notes, "cut short") }

// format returns the capinfos file type from the notes (format=...).
func (m manifestRow) format() string {
	_, rest, _ := strings.Cut(m.notes, "format=")
	f, _, _ := strings.Cut(rest, ";")
	return f
}

func readManifest(t testing.TB) []manifestRow {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir(t), "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []manifestRow
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 7 {
			t.Fatalf("MANIFEST row has %d columns: %q", len(cols), sc.Text())
		}
		n, err := strconv.Atoi(cols[5])
		if err != nil {
			t.Fatalf("MANIFEST packets of %s: %v", cols[0], err)
		}
		rows = append(rows, manifestRow{file: cols[0], linkType: cols[4], packets: n, notes: cols[6]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// truthRow is one frame of a *.packets.tsv file, as tshark printed it.
type truthRow struct {
	number      int
	interfaceID string // section-local in tshark; "" for pcap and for non-packet records
	timeEpoch   string // "" for Simple Packet Blocks and non-packet records
	frameLen    uint32
	capLen      uint32
	protocols   string
}

func readTruth(t testing.TB, path string) []truthRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatalf("%s: empty", path)
	}
	col := map[string]int{}
	for i, name := range strings.Split(sc.Text(), "\t") {
		col[name] = i
	}
	var rows []truthRow
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		num := func(name string) uint64 {
			v, err := strconv.ParseUint(c[col[name]], 10, 32)
			if err != nil {
				t.Fatalf("%s line %d: %s: %v", path, len(rows)+2, name, err)
			}
			return v
		}
		rows = append(rows, truthRow{
			number:      int(num("frame.number")),
			interfaceID: c[col["frame.interface_id"]],
			timeEpoch:   c[col["frame.time_epoch"]],
			frameLen:    uint32(num("frame.len")),
			capLen:      uint32(num("frame.cap_len")),
			protocols:   c[col["frame.protocols"]],
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// parseEpoch turns tshark's "seconds.fraction" into nanoseconds exactly.
// tshark prints the fraction as %09d of the nanosecond field, so a field
// holding 1e9 or more (a damaged record) shows as ten digits, which still
// add as nanoseconds.
func parseEpoch(t testing.TB, s string) int64 {
	t.Helper()
	secStr, frac, ok := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || !ok || len(frac) < 9 {
		t.Fatalf("frame.time_epoch %q: not seconds.nanoseconds", s)
	}
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		t.Fatalf("frame.time_epoch %q: %v", s, err)
	}
	return sec*1e9 + ns
}

// ngRecord is what an independent walk of a pcapng file finds at a record
// tshark shows as a frame: a packet block (with the index its section's
// first interface has in file-wide numbering) or a custom block.
type ngRecord struct {
	packet      bool
	sectionBase int
}

// walkPcapng lists the frame-like blocks of a well-formed pcapng file. It
// shares no code with the Reader so the two can check each other.
func walkPcapng(t testing.TB, raw []byte) []ngRecord {
	t.Helper()
	var order binary.ByteOrder = binary.LittleEndian
	var recs []ngRecord
	ifaces, base := 0, 0
	for off := 0; off+12 <= len(raw); {
		if binary.LittleEndian.Uint32(raw[off:]) == blockSHB {
			order = binary.LittleEndian
			if raw[off+8] == 0x1a {
				order = binary.BigEndian
			}
			base = ifaces
		}
		typ, length := order.Uint32(raw[off:]), int(order.Uint32(raw[off+4:]))
		switch typ {
		case 1:
			ifaces++
		case 2, 3, 6:
			recs = append(recs, ngRecord{packet: true, sectionBase: base})
		case 0xBAD, 0x40000BAD:
			recs = append(recs, ngRecord{packet: false})
		}
		if length < 12 {
			t.Fatalf("walk: block at %d has length %d", off, length)
		}
		off += length
	}
	return recs
}

// expectedPacket is what Next must return for one truth row.
type expectedPacket struct {
	frame     int
	iface     int
	timestamp int64
	origLen   uint32
	capLen    uint32
}

// expectPackets turns truth rows into expected packets: it drops tshark's
// non-packet frames (custom blocks, shown as protocol "data" with no
// interface), maps section-local interface ids to file-wide indexes, and
// gives Simple Packet Blocks the previous packet's timestamp.
func expectPackets(t testing.TB, raw []byte, rows []truthRow, pcapng bool) []expectedPacket {
	t.Helper()
	var recs []ngRecord
	if pcapng {
		recs = walkPcapng(t, raw)
		if len(recs) != len(rows) {
			t.Fatalf("file has %d packet and custom blocks, truth has %d frames", len(recs), len(rows))
		}
	}
	var want []expectedPacket
	var last int64
	for i, row := range rows {
		iface := 0
		if pcapng {
			if !recs[i].packet {
				if row.interfaceID != "" || row.protocols != "data" {
					t.Fatalf("frame %d is a custom block in the file, but tshark shows interface %q protocols %q",
						row.number, row.interfaceID, row.protocols)
				}
				continue
			}
			local, err := strconv.Atoi(row.interfaceID)
			if err != nil {
				t.Fatalf("frame %d is a packet block, but tshark shows interface %q", row.number, row.interfaceID)
			}
			iface = recs[i].sectionBase + local
		} else if row.interfaceID != "" && row.interfaceID != "0" {
			t.Fatalf("pcap frame %d on interface %q", row.number, row.interfaceID)
		}
		if row.timeEpoch != "" {
			last = parseEpoch(t, row.timeEpoch)
		}
		want = append(want, expectedPacket{frame: row.number, iface: iface, timestamp: last,
			origLen: row.frameLen, capLen: row.capLen})
	}
	return want
}

var linkTypeNumbers = map[string][]uint32{
	"ether": {1}, "null": {0}, "linux-sll": {113}, "linux-sll2": {276}, "ppp": {9},
	"rawip": {101, 12, 14}, "rawip4": {228}, "rawip6": {229},
}

var formatKinds = map[string]string{"pcap": "pcap", "nsecpcap": "pcap-ns", "pcapng": "pcapng"}

func TestManifestCoversCorpus(t *testing.T) {
	listed := map[string]bool{}
	for _, m := range readManifest(t) {
		listed[m.file] = true
	}
	captures, err := filepath.Glob(filepath.Join(corpusDir(t), "*.pcap*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range captures {
		name := filepath.Base(c)
		if strings.HasSuffix(name, ".tsv") {
			continue
		}
		n++
		if !listed[name] {
			t.Errorf("%s is not in MANIFEST.tsv, so TestCorpus does not read it", name)
		}
	}
	if n != len(listed) {
		t.Errorf("%d captures on disk, %d in MANIFEST.tsv", n, len(listed))
	}
}

// TestCorpus reads every capture of the corpus and compares each packet with
// tshark's truth, then reads it again gzipped and expects identical results.
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	for _, m := range readManifest(t) {
		t.Run(m.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, m.file))
			if err != nil {
				t.Fatal(err)
			}
			rows := readTruth(t, filepath.Join(dir, m.file+".packets.tsv"))
			if len(rows) != m.packets {
				t.Fatalf("truth has %d frames, MANIFEST says %d", len(rows), m.packets)
			}
			if m.malformed() && len(rows) == 0 {
				r, err := NewReader(bytes.NewReader(raw))
				if err == nil {
					var p Packet
					err = r.Next(&p)
				}
				if err == nil || err == io.EOF {
					t.Fatalf("malformed capture that tshark cannot read: got %v, want an error", err)
				}
				t.Logf("error as expected: %v", err)
				return
			}
			kind, ok := formatKinds[m.format()]
			if !ok {
				t.Fatalf("MANIFEST format %q unknown to the test", m.format())
			}
			want := expectPackets(t, raw, rows, kind == "pcapng")
			checkCapture(t, m, kind, raw, want)
			checkGzipIdentical(t, raw)
		})
	}
}

func checkCapture(t *testing.T, m manifestRow, kind string, raw []byte, want []expectedPacket) {
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind() != kind {
		t.Errorf("Kind() = %q, want %q", r.Kind(), kind)
	}
	var p Packet
	var got int
	cutAt := int64(pcapFileHeaderLen) // where the cut record starts, for pcap
	for {
		start := r.Offset()
		err = r.Next(&p)
		if err != nil {
			break
		}
		if got >= len(want) {
			t.Fatalf("packet %d read, truth has only %d packets", got+1, len(want))
		}
		w := want[got]
		got++
		if p.Interface != w.iface || p.Timestamp != w.timestamp || p.OrigLen != w.origLen || p.CapLen != w.capLen {
			t.Fatalf("frame %d: got interface %d time %d len %d caplen %d, want %d %d %d %d", w.frame,
				p.Interface, p.Timestamp, p.OrigLen, p.CapLen, w.iface, w.timestamp, w.origLen, w.capLen)
		}
		if len(p.Data) != int(p.CapLen) {
			t.Fatalf("frame %d: len(Data) %d != CapLen %d", w.frame, len(p.Data), p.CapLen)
		}
		if p.Interface >= len(r.Interfaces()) {
			t.Fatalf("frame %d: interface %d of %d", w.frame, p.Interface, len(r.Interfaces()))
		}
		if kind != "pcapng" {
			end := r.Offset()
			if end-start != int64(pcapRecordHeaderLen)+int64(p.CapLen) ||
				!bytes.Equal(p.Data, raw[end-int64(p.CapLen):end]) {
				t.Fatalf("frame %d: Data is not the record's bytes at %d..%d", w.frame, start, end)
			}
			cutAt = end
		}
	}
	if got != len(want) {
		t.Errorf("read %d packets, want %d (then %v)", got, len(want), err)
	}
	if m.cutShort() {
		var te *TruncatedError
		if !errors.As(err, &te) {
			t.Fatalf("capture cut short: got %v, want *TruncatedError", err)
		}
		if te.Offset != cutAt || te.Have != len(raw)-int(cutAt) || te.Need <= te.Have {
			t.Errorf("TruncatedError %+v, want Offset %d Have %d", te, cutAt, len(raw)-int(cutAt))
		}
		t.Logf("error as expected: %v", err)
	} else {
		if err != io.EOF {
			t.Fatalf("after %d packets: %v, want io.EOF", got, err)
		}
		if r.Offset() != int64(len(raw)) {
			t.Errorf("Offset() = %d at EOF, file has %d bytes", r.Offset(), len(raw))
		}
	}
	if again := r.Next(&p); again != err {
		t.Errorf("Next after %v returned %v", err, again)
	}
	if lts, ok := linkTypeNumbers[m.linkType]; ok {
		for i, iface := range r.Interfaces() {
			if !containsLinkType(lts, iface.LinkType) {
				t.Errorf("interface %d: link type %d, MANIFEST says %s", i, iface.LinkType, m.linkType)
			}
		}
	}
}

func containsLinkType(list []uint32, lt uint32) bool {
	for _, v := range list {
		if v == lt {
			return true
		}
	}
	return false
}

func gzipped(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, part := range parts {
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(part); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// checkGzipIdentical reads raw and its gzip in lockstep and requires the
// same packets, offsets and final error.
func checkGzipIdentical(t *testing.T, raw []byte) {
	t.Helper()
	compareReaders(t, bytes.NewReader(raw), bytes.NewReader(gzipped(t, raw)))
}

func compareReaders(t *testing.T, a, b io.Reader) {
	t.Helper()
	ra, errA := NewReader(a)
	rb, errB := NewReader(b)
	if errA != nil || errB != nil {
		t.Fatalf("NewReader: plain %v, gzip %v", errA, errB)
	}
	if ra.Kind() != rb.Kind() {
		t.Fatalf("Kind plain %q, gzip %q", ra.Kind(), rb.Kind())
	}
	var pa, pb Packet
	for n := 0; ; n++ {
		errA, errB = ra.Next(&pa), rb.Next(&pb)
		if errA != nil || errB != nil {
			break
		}
		if pa.Interface != pb.Interface || pa.Timestamp != pb.Timestamp || pa.CapLen != pb.CapLen ||
			pa.OrigLen != pb.OrigLen || pa.Direction != pb.Direction || !bytes.Equal(pa.Data, pb.Data) ||
			ra.Offset() != rb.Offset() {
			t.Fatalf("packet %d differs between plain and gzip", n)
		}
	}
	if errA == nil || errB == nil || errA.Error() != errB.Error() {
		t.Fatalf("end of plain: %v, end of gzip: %v", errA, errB)
	}
	if len(ra.Interfaces()) != len(rb.Interfaces()) {
		t.Fatalf("interfaces: plain %d, gzip %d", len(ra.Interfaces()), len(rb.Interfaces()))
	}
}

func TestGzipMultistream(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(corpusDir(t), "ndpi-alexa-app.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	// Members split at arbitrary points, not at block boundaries.
	z := gzipped(t, raw[:1000], raw[1000:500000], raw[500000:])
	compareReaders(t, bytes.NewReader(raw), bytes.NewReader(z))
}
