package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// A capture file is mapped into memory (pipeline.Read, also for standard
// input redirected from a file) and a pipe is streamed: the records and
// the summary's counts must not depend on it.
func TestReadMappedFileStdinAndPipeAgree(t *testing.T) {
	// The bundled sample, uncompressed into a file of its own.
	zf, err := os.Open(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sample.pcap")
	plain, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(plain, zr); err != nil {
		t.Fatal(err)
	}
	if err := plain.Close(); err != nil {
		t.Fatal(err)
	}

	code, byPath, stderrPath := flowlog(t, nil, "read", path)
	if code != 0 {
		t.Fatalf("read %s: exit %d: %s", path, code, stderrPath)
	}

	asStdin, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer asStdin.Close()
	_, byStdin, stderrStdin := flowlog(t, asStdin, "read", "-")

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.Open(path)
		if err == nil {
			io.Copy(pw, f)
			f.Close()
		}
		pw.Close()
	}()
	_, byPipe, stderrPipe := flowlog(t, pr, "read", "-")
	pr.Close()

	if byStdin != byPath || byPipe != byPath || len(byPath) < 1000 {
		t.Fatalf("records differ: by path %d bytes, stdin from the file %d, pipe %d", len(byPath), len(byStdin), len(byPipe))
	}
	// The summaries differ only in the input's name and the time taken.
	counts := regexp.MustCompile(`read (\d+) packets \((\d+) bytes\) from .* in [0-9.]+s: (.*)`)
	want := counts.FindStringSubmatch(stderrPath)
	if want == nil || want[1] != samplePackets {
		t.Fatalf("summary %q, want %s packets", stderrPath, samplePackets)
	}
	for name, got := range map[string]string{"stdin from the file": stderrStdin, "pipe": stderrPipe} {
		m := counts.FindStringSubmatch(got)
		if m == nil || m[1] != want[1] || m[2] != want[2] || m[3] != want[3] {
			t.Errorf("%s: summary %q, by path %q", name, got, stderrPath)
		}
	}
}
