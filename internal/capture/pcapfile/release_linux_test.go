package pcapfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// mappingRss is the resident size in bytes of the mapping that starts at
// addr, from /proc/self/smaps.
func mappingRss(t *testing.T, addr uintptr) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	start := fmt.Sprintf("%x-", addr)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, start) {
			in = true
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping at %#x in /proc/self/smaps", addr)
	return 0
}

// TestMappedReleasesBehind reads a capture ten chunks long through the
// mapping and checks that what is resident of the mapping stays about two
// chunks (the one being read and the one populated ahead), while the
// packets stay those of the streaming reader.
func TestMappedReleasesBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w, err := NewWriter(bw, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 1500)
	var size int64
	for i := 0; size < 10*populateChunk; i++ {
		frame[0], frame[1] = byte(i), byte(i>>8)
		n := 60 + i%1400
		if err := w.WritePacket(int64(i)*1e6, frame[:n], 0); err != nil {
			t.Fatal(err)
		}
		size += int64(16 + n)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := streamed(t, raw)

	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Mapped() {
		t.Fatal("a regular file is not mapped")
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(r.mapped)))
	var p Packet
	peak := int64(0)
	for i := 0; ; i++ {
		err := r.Next(&p)
		if err == io.EOF {
			if i != len(want.pkts) {
				t.Fatalf("%d packets mapped, %d streamed", i, len(want.pkts))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(p.Data) != string(want.pkts[i].Data) || p.Timestamp != want.pkts[i].Timestamp {
			t.Fatalf("packet %d differs from the streaming reader's", i)
		}
		if i%2000 == 0 {
			peak = max(peak, mappingRss(t, addr))
		}
	}
	if limit := int64(3 * populateChunk); peak > limit {
		t.Errorf("up to %d MiB of a %d MiB mapping resident, want at most %d MiB", peak>>20, size>>20, limit>>20)
	}
	t.Logf("peak resident mapping %.1f MiB of %.1f MiB", float64(peak)/(1<<20), float64(size)/(1<<20))
}
