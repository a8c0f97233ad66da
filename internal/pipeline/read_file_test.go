package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// A capture read from a file (mapped) gives the records, stats and
// truncation offset it gives read from memory (streamed).
func TestReadFileEqualsStream(t *testing.T) {
	var pkts []pkt
	for i := range 3000 {
		pkts = append(pkts, pkt{t0 + int64(i%1500), udpFrame("10.0.0.1", "10.0.0.2", uint16(1000+i%700), 53, i%300)})
	}
	data := capture(t, pkts)
	cfg := testConfig(t, 60)
	dir := t.TempDir()
	for _, cut := range []int{len(data), len(data) - 7} {
		path := filepath.Join(dir, "capture.pcap")
		if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		var fromFile, fromMemory bytes.Buffer
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		stFile, errFile := Read(context.Background(), f, path, cfg, NewStreamSink(&fromFile, cfg.Format, false, false))
		f.Close()
		stMem, errMem := Read(context.Background(), bytes.NewReader(data[:cut]), path, cfg, NewStreamSink(&fromMemory, cfg.Format, false, false))
		if (errFile == nil) != (errMem == nil) || errFile != nil && errFile.Error() != errMem.Error() {
			t.Fatalf("cut at %d: file %v, memory %v", cut, errFile, errMem)
		}
		if stFile != stMem {
			t.Fatalf("cut at %d: stats from the file %+v, from memory %+v", cut, stFile, stMem)
		}
		if fromFile.String() != fromMemory.String() || fromFile.Len() == 0 {
			t.Fatalf("cut at %d: records differ:\nfile:\n%s\nmemory:\n%s", cut, tailLines(fromFile.String()), tailLines(fromMemory.String()))
		}
		if cut < len(data) && !stFile.Truncated {
			t.Fatalf("cut at %d: not reported truncated", cut)
		}
	}
}

func tailLines(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// shrinkingSink cuts the capture file the first time records arrive.
type shrinkingSink struct {
	path string
	done bool
}

func (s *shrinkingSink) Write([]flow.Record) error {
	if !s.done {
		s.done = true
		return os.Truncate(s.path, 0)
	}
	return nil
}
func (s *shrinkingSink) Advance(int64) error { return nil }
func (s *shrinkingSink) Close() error        { return nil }

// A mapped capture that shrinks while it is read ends the read with an
// error naming the file, not a crash.
func TestReadFileShrinks(t *testing.T) {
	var pkts []pkt
	// The first window closes after 2000 packets; 100 k more follow, far
	// beyond the page the reader is on.
	for range 2000 {
		pkts = append(pkts, pkt{t0 + 1, udpFrame("10.0.0.1", "10.0.0.2", 1000, 53, 100)})
	}
	for range 100_000 {
		pkts = append(pkts, pkt{t0 + 700, udpFrame("10.0.0.1", "10.0.0.2", 1000, 53, 100)})
	}
	path := filepath.Join(t.TempDir(), "shrinks.pcap")
	if err := os.WriteFile(path, capture(t, pkts), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Read(context.Background(), f, path, testConfig(t, 600), &shrinkingSink{path: path})
	if err == nil || !strings.Contains(err.Error(), "shrank") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error saying %s shrank", err, path)
	}
	t.Logf("as expected: %v", err)
}
