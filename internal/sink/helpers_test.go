package sink

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/flowlog/flowlog/flow"
)

// defaultHeader is the header line of default-format objects (spec §3).
const defaultHeader = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// textOf renders r in the default format.
func textOf(r *flow.Record) string { return string(flow.DefaultFormat().Append(nil, r)) }

var okFields = flow.FieldSet(0).With(flow.FieldVersion).With(flow.FieldAccountID).With(flow.FieldInterfaceID).
	With(flow.FieldSrcAddr).With(flow.FieldDstAddr).With(flow.FieldSrcPort).With(flow.FieldDstPort).
	With(flow.FieldProtocol).With(flow.FieldPackets).With(flow.FieldBytes).With(flow.FieldStart).
	With(flow.FieldEnd).With(flow.FieldAction).With(flow.FieldLogStatus)

// window returns n OK records of the window [start, start+interval), sorted
// by start as aggregate emits them, with ends anywhere in the window (so a
// 600 s window spans two periods), from a fixed seed.
func window(seed uint64, start, interval int64, n int) []flow.Record {
	rng := rand.New(rand.NewPCG(seed, uint64(start)))
	recs := make([]flow.Record, n)
	for i := range recs {
		s := start + rng.Int64N(interval)
		e := s + rng.Int64N(start+interval-s)
		recs[i] = flow.Record{
			Present:     okFields,
			Version:     2,
			AccountID:   "123456789012",
			InterfaceID: "eni-0123456789abcdef0",
			SrcAddr:     netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			DstAddr:     netip.AddrFrom4([4]byte{172, 31, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			SrcPort:     uint16(rng.IntN(65536)),
			DstPort:     uint16(rng.IntN(1024)),
			Protocol:    6,
			Packets:     1 + rng.Uint64N(100),
			Bytes:       40 + rng.Uint64N(150000),
			Start:       s,
			End:         e,
			Action:      flow.ActionAccept,
			LogStatus:   flow.LogStatusOK,
		}
	}
	slices.SortStableFunc(recs, func(a, b flow.Record) int { return int(a.Start - b.Start) })
	return recs
}

// testLayout is the layout of the spec's example key.
func testLayout() Layout {
	return Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-1234abcd"}
}

func newTestDir(t testing.TB, root string, max int64) *Dir {
	t.Helper()
	d, err := NewDir(DirConfig{Root: root, Layout: testLayout(), Format: flow.DefaultFormat(), MaxObjectBytes: max})
	if err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	return d
}

// gunzip returns the whole decompressed content of the object at path; a
// truncated or corrupt gzip stream is an error.
func gunzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func mustGunzip(t testing.TB, path string) []byte {
	t.Helper()
	b, err := gunzip(path)
	if err != nil {
		t.Fatalf("gunzip %s: %v", path, err)
	}
	return b
}

// objectLines splits an object's text into its header and record lines,
// failing unless every line ends in '\n'.
func objectLines(t testing.TB, text []byte) (header string, lines []string) {
	t.Helper()
	if len(text) == 0 || text[len(text)-1] != '\n' {
		t.Fatalf("object text does not end in a line end: %q", text)
	}
	all := strings.Split(string(text[:len(text)-1]), "\n")
	return all[0], all[1:]
}

// visible walks root like a reader would and returns every file whose name
// does not start with '.', relative with '/' separators, sorted.
func visible(t testing.TB, root string) []string {
	t.Helper()
	files, err := visibleFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func visibleFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// tempFiles returns every dot-named file under root.
func tempFiles(t testing.TB, root string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), ".") {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func sameBytes(t testing.TB, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}
