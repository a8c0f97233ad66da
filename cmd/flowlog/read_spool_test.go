package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFlowlogProcess is not a test: started by flowlogProcess as a
// subprocess of the test binary, it runs flowlog with the arguments in
// FLOWLOG_TEST_ARGS, so tests can kill a real flowlog process without
// building the command first.
func TestFlowlogProcess(t *testing.T) {
	raw := os.Getenv("FLOWLOG_TEST_ARGS")
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	os.Exit(run(args, os.Stdin, os.Stdout, os.Stderr))
}

// flowlogProcess returns a command that runs `flowlog args…` in a
// subprocess.
func flowlogProcess(args ...string) *exec.Cmd {
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestFlowlogProcess$")
	cmd.Env = append(os.Environ(), "FLOWLOG_TEST_ARGS="+string(enc))
	return cmd
}

// TestSpoolSurvivesSIGKILL kills `flowlog read --spool` with SIGKILL while
// it is delivering to a slow Kafka broker, after every record was spooled
// but only some delivered. A second run with the same spool and an empty
// capture delivers the rest: the topic then holds every record of the
// capture (some twice: delivery is at least once) and nothing else.
func TestSpoolSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	capture, empty := filepath.Join(dir, "capture.pcap"), filepath.Join(dir, "empty.pcap")
	writeCapture(t, capture, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), 120, 20)
	writeCapture(t, empty, time.Time{}, 0, 0)
	want := recordLines(t, "--interval", "60", capture)

	c := kafkaCluster(t, "flows")
	var slow atomic.Bool
	var produces atomic.Int64
	slow.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produces.Add(1)
		if slow.Load() {
			time.Sleep(40 * time.Millisecond) // a slow broker: delivery takes seconds
		}
		return nil, nil, false
	})
	dest := "kafka://" + c.ListenAddrs()[0] + "/flows"
	spoolDir := filepath.Join(dir, "spool")

	p := flowlogProcess("read", "--interval", "60", "--dest", dest, "--spool", spoolDir, capture)
	var stderr bytes.Buffer
	p.Stderr = &stderr
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for produces.Load() < 15 {
		select {
		case err := <-exited:
			t.Fatalf("flowlog read ended before it was killed (%v): %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no deliveries to kafka after 30 s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	slow.Store(false)
	_, before := kafkaMessages(t, c, "flows", 1)
	if len(before) >= len(want) {
		t.Fatalf("killed too late: all %d records were delivered already", len(want))
	}

	code := 0
	out, err := flowlogProcess("read", "--interval", "60", "--dest", dest, "--spool", spoolDir, empty).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, out)
	}
	_, after := kafkaMessages(t, c, "flows", len(want))
	wantSet := map[string]bool{}
	for _, l := range want {
		wantSet[l] = true
	}
	got := map[string]int{}
	for _, v := range after {
		if !wantSet[v] {
			t.Fatalf("topic holds a message that is no record of the capture: %q", v)
		}
		got[v]++
	}
	for _, l := range want {
		if got[l] == 0 {
			t.Fatalf("record lost across SIGKILL: %s", l)
		}
	}
	t.Logf("%d records; %d delivered before SIGKILL; %d messages in the end (%d repeated); second run: %s",
		len(want), len(before), len(after), len(after)-len(want), strings.TrimSpace(lastLine(string(out))))
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestReadSpoolNeedsDest: --spool without --dest is a usage error.
func TestReadSpoolNeedsDest(t *testing.T) {
	code, _, stderr := flowlog(t, nil, "read", "--spool", t.TempDir(), samplePath)
	if code != exitUsage || !strings.Contains(stderr, "--spool needs --dest") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestReadSpoolToDirectory: with --spool, the directory destination gets
// the same objects as without, and the spool reports what it did and is
// empty afterwards.
func TestReadSpoolToDirectory(t *testing.T) {
	plain, spooledDest, spoolDir := t.TempDir(), t.TempDir(), t.TempDir()
	if code, _, stderr := flowlog(t, nil, "read", "--dest", plain, samplePath); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, _, stderr := flowlog(t, nil, "read", "--dest", spooledDest, "--spool", spoolDir, "--spool-max-bytes", "1048576", samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "flowlog: spool "+spoolDir+": ") || !strings.Contains(stderr, ", 0 bytes left to deliver") {
		t.Errorf("stderr %q does not report the spool", stderr)
	}
	a, b := treeFiles(t, plain), treeFiles(t, spooledDest)
	if len(a) == 0 || strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("objects with --spool:\n%v\nwithout:\n%v", b, a)
	}
	for _, k := range a {
		x, _ := os.ReadFile(filepath.Join(plain, k))
		y, _ := os.ReadFile(filepath.Join(spooledDest, k))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs with --spool", k)
		}
	}
}

// treeFiles lists the files under root whose names do not start with '.'.
func treeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
