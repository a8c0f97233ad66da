package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// Corpus captures whose timestamps span days and years: 27 packets over
// 4.1 days (587 NODATA records, 590 objects at --interval 600), and 20,885
// packets over 23.6 years (1.24 M NODATA records and as many objects).
const (
	mongodb = "../../../shared/corpora/pcap/ndpi-mongodb.pcap"
	mixA    = "../../../shared/corpora/pcap/ndpi-mix-a.pcap"
)

// objectLines reads every object under root: the record lines (header
// left out) of all of them, the number of objects, and the names of any
// temporary files left behind.
func objectLines(t *testing.T, root string) (lines []string, objects int, leftovers []string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			leftovers = append(leftovers, path)
			return nil
		}
		objects++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(zr)
		sc.Scan() // the header
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines, objects, leftovers
}

// TestReadWarnsAboutManyObjects: a capture whose objects pass
// --objects-warning gets one warning while it is read, naming the first
// packet and why (5-minute objects, NODATA windows), and one at the end
// naming the span; the objects are the very ones a run without the
// warning writes (same names, which hash their content), holding every
// record `flowlog read` prints.
func TestReadWarnsAboutManyObjects(t *testing.T) {
	warned, quiet := t.TempDir(), t.TempDir()
	code, _, stderr := flowlog(t, nil, "read", "--objects-warning", "200", "--dest", warned, mongodb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	t.Logf("stderr:\n%s", stderr)
	during := regexp.MustCompile(`(?m)^flowlog: warning: this capture makes more than 200 objects: --dest writes one object per 5-minute period of capture time that has a record, ` +
		`and NODATA records fill every 600-second window between the first packet \(2017-01-03T16:12:58Z\) and the last; the records have reached (\S+) so far\. Interrupt \(Ctrl-C\)`)
	if n := len(during.FindAllString(stderr, -1)); n != 1 {
		t.Errorf("%d warnings while reading, want 1", n)
	}
	if !strings.Contains(stderr, "flowlog: warning: 590 objects for packets from 2017-01-03T16:12:58Z to 2017-01-07T18:48:36Z (4.1 days): one per 5-minute period with a record, NODATA records included\n") {
		t.Error("no warning at the end naming the span and the objects")
	}
	if !strings.Contains(stderr, "597 records (587 NODATA, 0 SKIPDATA), 590 objects;") {
		t.Error("summary changed")
	}

	code, _, stderr = flowlog(t, nil, "read", "--dest", quiet, mongodb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("below the default threshold (%d objects): %s", defaultObjectsWarning, stderr)
	}
	if w, q := treeFiles(t, warned), treeFiles(t, quiet); !slices.Equal(w, q) {
		t.Errorf("objects differ with and without the warning: %d against %d", len(w), len(q))
	}
	lines, objects, leftovers := objectLines(t, warned)
	want := recordLines(t, mongodb)
	slices.Sort(lines)
	slices.Sort(want)
	if objects != 590 || len(leftovers) > 0 || !slices.Equal(lines, want) {
		t.Errorf("%d objects (%d temporary files left) with %d records; stdout had %d records", objects, len(leftovers), len(lines), len(want))
	}
}

// TestReadInterruptStopsManyObjects interrupts (SIGINT) a real `flowlog
// read` of a capture spanning 23 years into a directory once it warned:
// it ends within seconds, not after writing 1.24 M objects for minutes,
// exits with an error naming where it stopped, and leaves only complete
// objects holding exactly the records of the windows before that point.
func TestReadInterruptStopsManyObjects(t *testing.T) {
	dir := t.TempDir()
	p := flowlogProcess("read", "--objects-warning", "100", "--dest", dir, mixA)
	stderrPipe, err := p.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Process.Kill() })
	stderr := bufio.NewReader(stderrPipe)
	first, err := stderr.ReadString('\n')
	if err != nil || !strings.Contains(first, "this capture makes more than 100 objects") || !strings.Contains(first, "first packet (2000-01-01T15:08:18Z)") {
		t.Fatalf("first line on stderr %q (%v), want the warning", first, err)
	}
	interrupted := time.Now()
	if err := p.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	err = p.Wait()
	took := time.Since(interrupted)
	t.Logf("ended %s after SIGINT:\n%s", took.Round(time.Millisecond), rest)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitError {
		t.Fatalf("exit %v, want %d", err, exitError)
	}
	if took > 10*time.Second {
		t.Errorf("took %s to stop after SIGINT", took)
	}
	m := regexp.MustCompile(`flowlog: read \S+: context canceled: records were written for the windows before (\S+), none after`).FindSubmatch(rest)
	if m == nil {
		t.Fatal("no error naming where the read stopped")
	}
	if strings.Contains(string(rest), "objects for packets from") {
		t.Error("the end-of-run span warning after an interrupt: the span it names is not the capture's")
	}
	stop, err := time.Parse(time.RFC3339, string(m[1]))
	if err != nil {
		t.Fatal(err)
	}

	lines, objects, leftovers := objectLines(t, dir)
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if objects <= 100 || objects > 100_000 {
		t.Errorf("%d objects: want more than the 100 of the warning, and far fewer than the capture's 1.24 M", objects)
	}
	// The records before the stop, as `flowlog read` prints them.
	var want []string
	var rec flow.Record
	for _, line := range recordLines(t, mixA) {
		if err := flow.DefaultFormat().ParseRecord([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.End <= stop.Unix() {
			want = append(want, line)
		}
	}
	slices.Sort(lines)
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("%d objects hold %d records; stdout has %d records ending at or before %s", objects, len(lines), len(want), m[1])
	}
	t.Logf("%d objects, %d records, up to %s", objects, len(lines), m[1])
}
