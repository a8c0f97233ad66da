package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/agent/netlab"
)

// downDir makes a directory destination fail for real: dir (the
// destination, or its AWSLogs folder) moves aside and a regular file
// takes its place, so creating an object under it fails with ENOTDIR
// (root is not stopped by modes); with the destination itself, opening
// it fails too. up undoes it, with whatever was published before.
func downDir(t *testing.T, dir string) (up func()) {
	t.Helper()
	moved := true
	if err := os.Rename(dir, dir+".up"); os.IsNotExist(err) {
		moved = false
	} else if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("down\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if !moved {
			return
		}
		if err := os.Rename(dir+".up", dir); err != nil {
			t.Fatal(err)
		}
	}
}

// retiredBacklog is flowlog_retired_spool_backlog_bytes of flow log id
// on /metrics, -1 if it is not there.
func retiredBacklog(t *testing.T, a *Agent, id string) int64 {
	t.Helper()
	a.do(func() { a.tick() }) // a fresh snapshot
	resp, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^flowlog_retired_spool_backlog_bytes\{flow_log_id="` + id + `"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(v)
}

// udpPackets sends n UDP packets of port from va to vb.
func udpPackets(t *testing.T, l *lab, port uint16, n int) {
	t.Helper()
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = 100
	}
	if err := netlab.UDP(l.nsA, ap(pA, port), l.nsB, ap(pB, port), sizes); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // past the capture
}

// checkOnce checks that dest holds the n packets of port exactly once on
// each of the two links (every record once: a repeat would add up).
func checkOnce(t *testing.T, dest string, port uint16, n uint64) {
	t.Helper()
	var got []uint64
	for _, flows := range sumRecords(readRecords(t, dest)) {
		for f, tot := range flows {
			if f.Protocol == 17 && f.DstPort == port {
				got = append(got, tot.Packets)
			}
		}
	}
	if !slices.Equal(got, []uint64{n, n}) {
		t.Errorf("%s: packets of port %d per link %v, want %d on each of 2 links", dest, port, got, n)
	}
}

func retireConfig(l *lab) Config {
	cfg := l.config("afpacket", FlowLog{Resource: "vpc"}, FlowLog{Resource: "vpc"})
	cfg.Spool.Retry = 300 * time.Millisecond
	cfg.ShutdownTimeout = 4 * time.Second
	return cfg
}

// TestRetiredSpool removes a flow log while its destination is down: the
// reload returns at once, the backlog stays and is retried in the
// background (shown on /metrics), and once the destination is back every
// record is there exactly once and the spool directory is gone.
func TestRetiredSpool(t *testing.T) {
	l := newLab(t)
	cfg := retireConfig(l)
	destA, destB := cfg.FlowLogs[0].Destination, cfg.FlowLogs[1].Destination
	a := l.start(t, cfg, l.nsA+"/va", l.nsB+"/vb")
	idA := a.FlowLogIDs()[0]
	spoolA := filepath.Join(cfg.Spool.Dir, idA)

	udpPackets(t, l, 7001, 7)
	// The destination opens (it is added again below) but takes nothing.
	up := downDir(t, filepath.Join(destA, "AWSLogs"))
	onlyB := cfg
	onlyB.FlowLogs = cfg.FlowLogs[1:]
	start := time.Now()
	if _, err := a.Reload(onlyB); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("reload removing the flow log of a down destination: %s", took.Round(time.Millisecond))
	if took > cfg.ShutdownTimeout/2 {
		t.Errorf("reload took %s: it waited for the down destination", took)
	}
	if !slices.Contains(a.RetiredSpools(), idA) {
		t.Fatalf("retired spools %v, want %s", a.RetiredSpools(), idA)
	}
	if b := retiredBacklog(t, a, idA); b <= 0 {
		t.Errorf("retired backlog on /metrics: %d", b)
	}
	// The others go on: B takes new traffic while A is retried.
	udpPackets(t, l, 7002, 4)
	time.Sleep(time.Second) // a few failed retries
	if _, err := os.Stat(spoolA); err != nil {
		t.Fatalf("backlog of the removed flow log: %v", err)
	}
	// Added again while retired: the flow log's spool takes the backlog
	// over; removed again, it is retired again.
	if _, err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if ids := a.RetiredSpools(); len(ids) != 0 || !runs(a, idA) {
		t.Fatalf("added again: retired %v, running %v", ids, a.FlowLogIDs())
	}
	if _, err := a.Reload(onlyB); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(a.RetiredSpools(), idA) {
		t.Fatalf("removed again: retired spools %v", a.RetiredSpools())
	}

	up()
	took = eventually(t, 5*time.Second, "retired spool delivered and removed", func() bool {
		_, err := os.Stat(spoolA)
		return os.IsNotExist(err)
	})
	t.Logf("destination back -> retired spool delivered and removed: %s", took.Round(time.Millisecond))
	if ids := a.RetiredSpools(); len(ids) != 0 {
		t.Errorf("retired spools after delivery: %v", ids)
	}
	if b := retiredBacklog(t, a, idA); b != -1 {
		t.Errorf("retired backlog on /metrics after delivery: %d", b)
	}
	checkOnce(t, destA, 7001, 7)
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, destB, 7001, 7)
	checkOnce(t, destB, 7002, 4)
	if n := len(sumRecords(readRecords(t, destA))); n == 0 {
		t.Error("A: no records")
	}
}

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRetiredSpoolRestart stops the agent while a destination is down
// and starts it without that flow log: the spool left behind is retried
// and, once the destination is back, delivered exactly once and removed.
// A spool directory without its destination file (an older agent's) is
// left alone with a warning.
func TestRetiredSpoolRestart(t *testing.T) {
	l := newLab(t)
	cfg := retireConfig(l)
	cfg.ShutdownTimeout = time.Second
	destA := cfg.FlowLogs[0].Destination
	a := l.start(t, cfg, l.nsA+"/va", l.nsB+"/vb")
	idA := a.FlowLogIDs()[0]
	spoolA := filepath.Join(cfg.Spool.Dir, idA)

	udpPackets(t, l, 7003, 5)
	up := downDir(t, destA)
	if err := a.Stop(); err == nil {
		t.Error("stopped without error while a destination was down")
	}
	if _, err := os.Stat(filepath.Join(spoolA, retireFile)); err != nil {
		t.Fatalf("the spool left for the next start: %v", err)
	}
	old := filepath.Join(cfg.Spool.Dir, "fl-0123456789abcdef0")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "00000000000000000000.seg"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Two more removed flow logs, whose ids sort before and after A's,
	// with a destination that cannot be opened (a regular file where
	// their directory would be): they stay retired for the whole test,
	// so RetiredSpools lists three ids, which it must sort (the map's
	// order differs between calls).
	gone := filepath.Join(l.root, "gone")
	if err := os.WriteFile(gone, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idLow, idHigh := "fl-00000000000000000", "fl-fffffffffffffffff"
	for _, id := range []string{idLow, idHigh} {
		def := cfg.FlowLogs[0]
		def.Destination = filepath.Join(gone, id)
		if err := a.writeRetireInfo(def, id); err != nil {
			t.Fatal(err)
		}
	}
	wantRetired := []string{idLow, idA, idHigh}

	onlyB := cfg
	onlyB.FlowLogs = cfg.FlowLogs[1:]
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	// startB starts an agent with only flow log B (A removed), logging
	// into logs too; it stops when the test ends.
	startB := func() *Agent {
		t.Helper()
		b, err := New(onlyB, Deps{Logger: log, HostRoot: filepath.Join(l.root, "host")})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Stop() })
		return b
	}
	b := startB()
	if got := b.RetiredSpools(); !slices.Equal(got, wantRetired) {
		t.Fatalf("retired spools %v, want %v (sorted)", got, wantRetired)
	}
	time.Sleep(time.Second) // the destination cannot even be opened: retried
	if bl := retiredBacklog(t, b, idA); bl <= 0 {
		t.Errorf("retired backlog on /metrics: %d", bl)
	}
	// Stop ends the retirement; the backlog stays for the next start.
	start := time.Now()
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop while a spool is retired: %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(spoolA); err != nil {
		t.Fatalf("backlog of the removed flow log after stop: %v", err)
	}
	b = startB()
	// The map's iteration starts at a random slot: with three ids in
	// the order the directory scan added them (sorted), an unsorted
	// result shows in about one call of four, so in 50 calls with near
	// certainty.
	for range 50 {
		if got := b.RetiredSpools(); !slices.Equal(got, wantRetired) {
			t.Fatalf("retired spools after a second restart %v, want %v (sorted)", got, wantRetired)
		}
	}
	up()
	took := eventually(t, 5*time.Second, "retired spool delivered and removed", func() bool {
		_, err := os.Stat(spoolA)
		return os.IsNotExist(err)
	})
	t.Logf("destination back -> retired spool of the last run delivered and removed: %s", took.Round(time.Millisecond))
	checkOnce(t, destA, 7003, 5)

	if _, err := os.Stat(old); err != nil {
		t.Errorf("an older agent's spool was not left alone: %v", err)
	}
	if s := logs.String(); !strings.Contains(s, "left alone") || !strings.Contains(s, old) {
		t.Errorf("no warning naming %s", old)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
}
