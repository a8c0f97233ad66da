package sink

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// t0 is 2018-06-20T16:20:00Z, the period of the spec's example key.
var t0 = time.Date(2018, 6, 20, 16, 20, 0, 0, time.UTC).Unix()

func TestDirObjectContent(t *testing.T) {
	root := t.TempDir()
	d := newTestDir(t, "file://"+root, 0)
	recs := window(1, t0, 60, 50)
	recs = append(recs, flow.Record{ // a NODATA record of the same window
		Present: flow.FieldSet(0).With(flow.FieldVersion).With(flow.FieldAccountID).With(flow.FieldInterfaceID).
			With(flow.FieldStart).With(flow.FieldEnd).With(flow.FieldLogStatus),
		Version: 2, AccountID: "123456789012", InterfaceID: "eni-1", Start: t0, End: t0 + 60, LogStatus: flow.LogStatusNoData,
	})
	if err := d.Write(recs); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, root); len(got) != 0 {
		t.Fatalf("objects visible before their period is complete: %v", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	pub := d.Published()
	if len(pub) != 1 {
		t.Fatalf("published %v, want one object", pub)
	}
	if want := "AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_"; !strings.HasPrefix(pub[0], want) ||
		!isHash(strings.TrimSuffix(strings.TrimPrefix(pub[0], want), ".log.gz")) {
		t.Fatalf("published %s, want %s<8 hex>.log.gz", pub[0], want)
	}
	if got := visible(t, root); !slices.Equal(got, pub) {
		t.Fatalf("visible files %v, published %v", got, pub)
	}
	text := mustGunzip(t, filepath.Join(root, pub[0]))
	header, lines := objectLines(t, text)
	if header != defaultHeader {
		t.Errorf("header %q, want %q", header, defaultHeader)
	}
	if len(lines) != len(recs) {
		t.Fatalf("%d lines, want %d", len(lines), len(recs))
	}
	for i := range recs {
		if want := textOf(&recs[i]); lines[i] != want {
			t.Errorf("line %d: %q, want %q", i, lines[i], want)
		}
	}
	if lines[len(lines)-1] != "2 123456789012 eni-1 - - - - - - - 1529511600 1529511660 - NODATA" {
		t.Errorf("NODATA line %q", lines[len(lines)-1])
	}
	// flow's reader, which reads AWS's objects, reads ours back.
	f, err := os.Open(filepath.Join(root, pub[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := flow.NewReader(f, flow.ReaderOptions{})
	var got flow.Record
	n := 0
	for ; ; n++ {
		err := rd.Next(&got)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", pub[0], err)
		}
		if n >= len(recs) || got.End != recs[n].End || got.SrcAddr != recs[n].SrcAddr || got.Bytes != recs[n].Bytes || got.LogStatus != recs[n].LogStatus {
			t.Fatalf("record %d read back as %+v", n, got)
		}
	}
	if n != len(recs) {
		t.Errorf("read %d records back, wrote %d", n, len(recs))
	}
	fi, err := os.Stat(filepath.Join(root, pub[0]))
	if err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	want := DirStats{Objects: 1, Records: int64(len(recs)), Bytes: fi.Size(), UncompressedBytes: int64(len(text))}
	if st != want {
		t.Errorf("Stats %+v, want %+v", st, want)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("object mode %v, want 0644", fi.Mode().Perm())
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func isHash(s string) bool {
	if len(s) != 8 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// TestDirPeriods writes 600 s windows, whose records end in two periods, and
// checks each period's object holds exactly the records ending in it, in the
// order written.
func TestDirPeriods(t *testing.T) {
	root := t.TempDir()
	d := newTestDir(t, root, 0)
	var all []flow.Record
	for w := range int64(3) {
		batch := window(2, t0+w*600, 600, 400)
		all = append(all, batch...)
		if err := d.Write(batch); err != nil {
			t.Fatal(err)
		}
	}
	// The boundaries of spec §5.
	edges := []flow.Record{{End: t0 - 1}, {End: t0}, {End: t0 + 299}}
	for i := range edges {
		edges[i].Present, edges[i].Start = flow.FieldSet(0).With(flow.FieldEnd), edges[i].End
	}
	if err := d.Write(edges); err != nil {
		t.Fatal(err)
	}
	all = append(all, edges...)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	pub := d.Published()
	byPeriod := map[string][]string{} // name's time → lines expected
	for i := range all {
		stamp := time.Unix(PeriodOf(all[i].End), 0).UTC().Format("20060102T1504Z")
		byPeriod[stamp] = append(byPeriod[stamp], textOf(&all[i]))
	}
	if len(pub) != len(byPeriod) {
		t.Fatalf("published %d objects, want one per period: %d", len(pub), len(byPeriod))
	}
	for _, key := range pub {
		stamp := strings.Split(filepath.Base(key), "_")[4]
		_, lines := objectLines(t, mustGunzip(t, filepath.Join(root, key)))
		if !slices.Equal(lines, byPeriod[stamp]) {
			t.Errorf("%s: %d lines differ from the %d records ending in its period", key, len(lines), len(byPeriod[stamp]))
		}
	}
	if !slices.IsSorted(pub) {
		t.Errorf("Close published out of period order: %v", pub)
	}
	// 16:19:59 is the last second of the 16:15 period, 16:20:00 and
	// 16:24:59 are in the 16:20 period.
	for stamp, lines := range map[string]string{"20180620T1615Z": textOf(&edges[0]), "20180620T1620Z": textOf(&edges[2])} {
		if got := byPeriod[stamp]; len(got) == 0 || got[len(got)-1] != lines {
			t.Errorf("period %s does not end with %q", stamp, lines)
		}
	}
}

// TestDirAdvance checks that Advance publishes exactly the periods that
// ended at or before the watermark, and that at every moment each visible
// object is complete: a reader scans the tree after every call.
func TestDirAdvance(t *testing.T) {
	root := t.TempDir()
	d := newTestDir(t, root, 20_000) // small objects: cuts happen during Write too
	checkVisible := func(when string) {
		t.Helper()
		files := visible(t, root)
		for _, f := range files {
			if !strings.HasSuffix(f, ".log.gz") {
				t.Fatalf("%s: non-object file visible: %s", when, f)
			}
			if _, lines := objectLines(t, mustGunzip(t, filepath.Join(root, f))); len(lines) == 0 {
				t.Fatalf("%s: object without records: %s", when, f)
			}
		}
		pub := d.Published()
		slices.Sort(pub)
		if !slices.Equal(files, pub) {
			t.Fatalf("%s: visible %v, published %v", when, files, pub)
		}
	}
	for w := range int64(4) {
		start := t0 + w*600
		if err := d.Write(window(3, start, 600, 500)); err != nil {
			t.Fatal(err)
		}
		checkVisible("after Write")
		// The window is closed: every record ending before its end is
		// written, so its two periods are complete.
		before := len(d.Published())
		if err := d.Advance(start + 600); err != nil {
			t.Fatal(err)
		}
		checkVisible("after Advance")
		periods := map[int64]bool{}
		for _, key := range d.Published()[before:] {
			stamp := strings.Split(filepath.Base(key), "_")[4]
			p, _ := time.Parse("20060102T1504Z", stamp)
			periods[p.Unix()] = true
		}
		if !periods[start+300] {
			t.Errorf("Advance(%d) did not publish the period ending at the watermark", start+600)
		}
		for p := range periods {
			if p+PeriodSeconds > start+600 {
				t.Errorf("Advance(%d) published the incomplete period %d", start+600, p)
			}
		}
	}
	// A watermark inside a period completes only the periods before it.
	if err := d.Write(window(4, t0+2400, 60, 100)); err != nil {
		t.Fatal(err)
	}
	n := len(d.Published())
	if err := d.Advance(t0 + 2400 + 299); err != nil {
		t.Fatal(err)
	}
	if got := len(d.Published()); got != n {
		t.Errorf("Advance inside a period published %d objects", got-n)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(d.Published()); got <= n {
		t.Errorf("Close published nothing")
	}
	checkVisible("after Close")
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestDirReaderNeverSeesPartialObjects races a reader against the writer:
// every object the reader finds must decompress completely.
func TestDirReaderNeverSeesPartialObjects(t *testing.T) {
	root := t.TempDir()
	d := newTestDir(t, root, 50_000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	scans := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			scans++
			files, err := visibleFiles(root)
			if err != nil {
				bad = append(bad, err.Error())
			}
			for _, f := range files {
				b, err := gunzip(filepath.Join(root, f))
				if err != nil || !strings.HasPrefix(string(b), defaultHeader+"\n") {
					bad = append(bad, f)
				}
			}
		}
	})
	for w := range int64(10) {
		if err := d.Write(window(5, t0+w*600, 600, 2000)); err != nil {
			t.Fatal(err)
		}
		if err := d.Advance(t0 + w*600 + 600); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("reader saw %d incomplete objects, e.g. %s", len(bad), bad[0])
	}
	t.Logf("%d objects, %d scans", len(d.Published()), scans)
}

// TestDirDeterministic writes the same records to two directories, in
// different batches, and expects the same names and bytes; a changed record
// changes its object's name.
func TestDirDeterministic(t *testing.T) {
	var recs []flow.Record
	for w := range int64(3) {
		recs = append(recs, window(6, t0+w*600, 600, 700)...)
	}
	run := func(root string, batch int, change bool) []string {
		d := newTestDir(t, root, 30_000)
		recs := slices.Clone(recs)
		if change {
			recs[len(recs)-1].Packets++
		}
		for i := 0; i < len(recs); i += batch {
			if err := d.Write(recs[i:min(i+batch, len(recs))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		return d.Published()
	}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	pa, pb := run(a, 700, false), run(b, 33, false)
	if !slices.Equal(pa, pb) {
		t.Fatalf("same records, different names:\n%v\n%v", pa, pb)
	}
	for _, key := range pa {
		if !sameBytes(t, filepath.Join(a, key), filepath.Join(b, key)) {
			t.Errorf("%s differs between the runs", key)
		}
	}
	// Re-running into the same directory overwrites: nothing is duplicated.
	if pa2 := run(a, 100, false); !slices.Equal(pa2, pa) || len(visible(t, a)) != len(pa) {
		t.Errorf("re-run into the same directory: %d names, %d files, want %d", len(pa2), len(visible(t, a)), len(pa))
	}
	pc := run(c, 700, true)
	diff := 0
	for i := range pc {
		if pc[i] != pa[i] {
			diff++
		}
	}
	if diff != 1 || pc[len(pc)-1] == pa[len(pa)-1] {
		t.Errorf("one changed record renamed %d objects, want only the one holding it:\n%v\n%v", diff, pa, pc)
	}
}

// TestDirCut checks cutting at MaxObjectBytes: every object is within the
// limit unless it holds a single record, starts with the header, was cut
// only when the next line would not fit, and the objects of a period hold
// its records in order.
func TestDirCut(t *testing.T) {
	root := t.TempDir()
	const max = 4096
	d := newTestDir(t, root, max)
	recs := window(7, t0, 300, 1000)
	// Lines longer than max on their own: first in the period, and after
	// an object that has records.
	long := func(r flow.Record) flow.Record { r.InterfaceID = strings.Repeat("x", 5000); return r }
	recs = slices.Insert(recs, 500, long(recs[500]))
	recs = slices.Insert(recs, 0, long(recs[0]))
	if err := d.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	pub := d.Published()
	var got []string
	var total int64
	names := map[string]bool{}
	for i, key := range pub {
		names[filepath.Base(key)] = true
		text := mustGunzip(t, filepath.Join(root, key))
		total += int64(len(text))
		header, lines := objectLines(t, text)
		if header != defaultHeader {
			t.Fatalf("%s starts with %q", key, header)
		}
		if len(lines) == 0 {
			t.Fatalf("%s holds no record", key)
		}
		if len(text) > max && len(lines) != 1 {
			t.Errorf("%s: %d bytes with %d records, over the %d limit", key, len(text), len(lines), max)
		}
		if i+1 < len(pub) {
			_, next := objectLines(t, mustGunzip(t, filepath.Join(root, pub[i+1])))
			if len(text)+len(next[0])+1 <= max {
				t.Errorf("%s (%d bytes) was cut though the next line (%d bytes) fit", key, len(text), len(next[0])+1)
			}
		}
		got = append(got, lines...)
	}
	var want []string
	for i := range recs {
		want = append(want, textOf(&recs[i]))
	}
	if !slices.Equal(got, want) {
		t.Errorf("the %d objects hold %d lines, not the %d records in order", len(pub), len(got), len(want))
	}
	if len(names) != len(pub) {
		t.Errorf("%d objects share %d names", len(pub), len(names))
	}
	if minObjects := int(total / max); len(pub) < minObjects || len(pub) < 2 {
		t.Errorf("%d objects for %d bytes", len(pub), total)
	}
	if st := d.Stats(); st.Objects != int64(len(pub)) || st.Records != int64(len(recs)) || st.UncompressedBytes != total {
		t.Errorf("Stats %+v, want %d objects, %d records, %d bytes", st, len(pub), len(recs), total)
	}
}

// TestDirCutEqualContent cuts a period into objects whose text is equal
// (a format without distinguishing fields): they must not overwrite each
// other.
func TestDirCutEqualContent(t *testing.T) {
	root := t.TempDir()
	d, err := NewDir(DirConfig{Root: root, Layout: testLayout(), Format: constText{}, MaxObjectBytes: int64(len(constHeader) + 1 + 3*len("ACCEPT\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(make([]flow.Record, 9)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if pub, files := d.Published(), visible(t, root); len(pub) != 3 || len(files) != 3 {
		t.Errorf("published %v, visible %v, want 3 objects", pub, files)
	}
}

const constHeader = "action"

type constText struct{}

func (constText) Header() string                         { return constHeader }
func (constText) Append(b []byte, _ *flow.Record) []byte { return append(b, "ACCEPT"...) }

func TestDirLateRecordGetsItsOwnObject(t *testing.T) {
	root := t.TempDir()
	d := newTestDir(t, root, 0)
	if err := d.Write(window(8, t0, 300, 10)); err != nil {
		t.Fatal(err)
	}
	if err := d.Advance(t0 + 300); err != nil {
		t.Fatal(err)
	}
	if n := len(d.Published()); n != 1 {
		t.Fatalf("%d objects after the first period, want 1", n)
	}
	// A batch with records of the next period and one late record of the
	// period already published: nothing is refused or lost.
	late := window(8, t0+300, 60, 5)
	late = append(late, flow.Record{End: t0 + 299})
	if err := d.Write(late); err != nil {
		t.Fatalf("late record: %v", err)
	}
	if err := d.Advance(t0 + 360); err != nil {
		t.Fatal(err)
	}
	keys := d.Published()
	if len(keys) != 2 || !strings.Contains(keys[1], "_20180620T1620Z_") || keys[0] == keys[1] {
		t.Fatalf("published %v: want the late record in a second object of the 16:20 period", keys)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Records != 16 || st.Objects != 3 {
		t.Errorf("%d records in %d objects, want 16 in 3", st.Records, st.Objects)
	}
	if err := d.Write(window(8, t0+600, 60, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	under := filepath.Join(file, "flows")
	tests := []struct {
		name    string
		cfg     DirConfig
		wantErr string
	}{
		{"root under a file", DirConfig{Root: under, Layout: testLayout(), Format: flow.DefaultFormat()}, "create root " + under},
		{"root URL under a file", DirConfig{Root: "file://" + under, Layout: testLayout(), Format: flow.DefaultFormat()}, "create root " + under},
		{"s3 root", DirConfig{Root: "s3://bucket", Layout: testLayout(), Format: flow.DefaultFormat()}, "not a local directory"},
		{"empty root", DirConfig{Layout: testLayout(), Format: flow.DefaultFormat()}, "empty"},
		{"bad layout", DirConfig{Root: t.TempDir(), Layout: Layout{AccountID: "1"}, Format: flow.DefaultFormat()}, "account id"},
		{"parquet of lines", DirConfig{Root: t.TempDir(), Layout: Layout{AccountID: "123456789012", Region: "r", FlowLogID: "fl-12345678", Parquet: true}, Format: lineText{}}, "parquet objects need a *flow.Format"},
		{"parquet codec", DirConfig{Root: t.TempDir(), Layout: testLayout(), Format: flow.DefaultFormat(), ParquetCompression: "lz4"}, `parquet compression "lz4"`},
		{"no format", DirConfig{Root: t.TempDir(), Layout: testLayout()}, "format"},
		{"gzip level", DirConfig{Root: t.TempDir(), Layout: testLayout(), Format: flow.DefaultFormat(), GzipLevel: 10}, "gzip level 10"},
		{"negative max", DirConfig{Root: t.TempDir(), Layout: testLayout(), Format: flow.DefaultFormat(), MaxObjectBytes: -1}, "max object bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDir(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewDir: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDirFolderError makes the object's folder impossible to create: the
// error names the path, and nothing is published.
func TestDirFolderError(t *testing.T) {
	root := t.TempDir()
	d := newTestDir(t, root, 0)
	blocker := filepath.Join(root, "AWSLogs", "123456789012")
	if err := os.MkdirAll(filepath.Dir(blocker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := d.Write(window(9, t0, 60, 3))
	if err == nil || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("Write: %v, want an error naming %s", err, blocker)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close with nothing open: %v", err)
	}
	if len(d.Published()) != 0 {
		t.Errorf("published %v", d.Published())
	}
}

// TestDirPublishError makes the rename fail (a directory holds the final
// name): the error names the operation and the path, the temporary file is
// removed, and the loss is counted.
func TestDirPublishError(t *testing.T) {
	recs := window(10, t0, 60, 20)
	ref := newTestDir(t, t.TempDir(), 0)
	if err := ref.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := ref.Close(); err != nil {
		t.Fatal(err)
	}
	key := ref.Published()[0]

	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, key, "occupied"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newTestDir(t, root, 0)
	if err := d.Write(recs); err != nil {
		t.Fatal(err)
	}
	err := d.Advance(t0 + 300)
	if err == nil || !strings.Contains(err.Error(), "rename ") || !strings.Contains(err.Error(), filepath.Join(root, key)) {
		t.Fatalf("Advance: %v, want a rename error naming %s", err, filepath.Join(root, key))
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if st := d.Stats(); st.Objects != 0 || st.LostObjects != 1 || st.LostRecords != int64(len(recs)) {
		t.Errorf("Stats %+v, want 1 lost object of %d records", st, len(recs))
	}
	// The writer goes on with later periods.
	if err := d.Write(window(10, t0+300, 60, 5)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Objects != 1 || st.Records != 5 {
		t.Errorf("after the failure: Stats %+v, want 1 object of 5 records", st)
	}
}

var writeErrSink error

// TestDirWriteNoAllocs: appending records to an open object allocates
// nothing (rendering, hashing, compressing and writing the file included).
func TestDirWriteNoAllocs(t *testing.T) {
	d := newTestDir(t, t.TempDir(), 1<<40)
	batch := window(11, t0, 60, 1000)
	if err := d.Write(batch); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() { writeErrSink = d.Write(batch) })
	if writeErrSink != nil {
		t.Fatal(writeErrSink)
	}
	if allocs != 0 {
		t.Errorf("Write of %d records: %.1f allocations, want 0", len(batch), allocs)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDirWrite writes 1 M default-format records per iteration: 100
// windows of 60 s with 10,000 records each, advancing after every window,
// as the pipeline does; at the default gzip level (1) and at level 6.
func BenchmarkDirWrite(b *testing.B) {
	const windows, perWindow = 100, 10_000
	batches := make([][]flow.Record, windows)
	var text int64
	for w := range batches {
		batches[w] = window(12, t0+int64(w)*60, 60, perWindow)
		for i := range batches[w] {
			text += int64(len(textOf(&batches[w][i])) + 1)
		}
	}
	for _, level := range []int{0, 6} { // DefaultGzipLevel (1) and zlib's default
		b.Run("gzip="+strconv.Itoa(level), func(b *testing.B) {
			b.SetBytes(text)
			var st DirStats
			for b.Loop() {
				d, err := NewDir(DirConfig{Root: b.TempDir(), Layout: testLayout(), Format: flow.DefaultFormat(), GzipLevel: level})
				if err != nil {
					b.Fatal(err)
				}
				for w, batch := range batches {
					if err := d.Write(batch); err != nil {
						b.Fatal(err)
					}
					if err := d.Advance(t0 + int64(w+1)*60); err != nil {
						b.Fatal(err)
					}
				}
				if err := d.Close(); err != nil {
					b.Fatal(err)
				}
				st = d.Stats()
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(windows*perWindow/sec, "records/s")
			b.ReportMetric(float64(st.Bytes)/float64(st.UncompressedBytes), "ratio")
			b.ReportMetric(float64(st.Objects), "objects")
		})
	}
}
