package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/bench/internal/gen"
)

func TestRunWritesNamedCaptureAndKeepsIt(t *testing.T) {
	dir := t.TempDir() + "/"
	args := []string{"-packets", "2000", "-flows", "50", "-o", dir}
	var stderr bytes.Buffer
	if err := run(args, &stderr); err != nil {
		t.Fatal(err)
	}
	cfg := gen.Config{Packets: 2000, Flows: 50, IPv6: 0.3, Seed: 1, Duration: 600e9}
	path := filepath.Join(dir, cfg.FileName())
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("capture not at its derived name: %v (stderr: %s)", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "2000 packets, 50 conversations") {
		t.Errorf("summary %q lacks the counts", stderr.String())
	}
	stderr.Reset()
	if err := run(append(args, "-keep"), &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "kept") {
		t.Errorf("-keep on an existing file said %q", stderr.String())
	}
	again, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("-keep changed the file (err %v)", err)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-packets", "10"}, "-o"},
		{[]string{"-o", "x.pcap", "-flows", "0"}, "flows 0"},
		{[]string{"-o", "x.pcap", "-start", "yesterday"}, "-start"},
		{[]string{"-o", "x.pcap", "extra"}, "unexpected argument"},
	} {
		err := run(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
