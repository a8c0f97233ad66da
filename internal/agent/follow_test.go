package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
	"github.com/flowlog/flowlog/internal/spool"
)

// TestDeliveryStatus: the status the agent reports follows what the
// spool's retries of a real directory destination meet: SUCCESS with the
// records published, FAILED with the destination's error while its root
// is unusable, SUCCESS again (with every record delivered) once it is
// fixed.
func TestDeliveryStatus(t *testing.T) {
	root := filepath.Join(t.TempDir(), "dest")
	dir, err := sink.NewDir(sink.DirConfig{Root: root, Layout: sink.Layout{AccountID: "123456789012", Region: "eu-test-1", FlowLogID: "fl-0123456789abcdef0"},
		Format: flow.DefaultFormat(), PublishOnAdvance: true})
	if err != nil {
		t.Fatal(err)
	}
	d := newDelivery(dir, time.Now)
	sc := spool.DefaultConfig(filepath.Join(t.TempDir(), "spool"))
	sc.Retry = spool.Retry{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	sc.Interval = 60
	sp, err := spool.New(sc, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	wait := func(what string, cond func(control.FlowLogStatus) bool) control.FlowLogStatus {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := d.status("fl-0123456789abcdef0")
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v", what, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	const start = 1_700_000_040
	if err := sp.Write(sinktest.Window(1, start, 10, 2)); err != nil {
		t.Fatal(err)
	}
	if err := sp.Advance(start + 60); err != nil {
		t.Fatal(err)
	}
	st := wait("published", func(s control.FlowLogStatus) bool { return s.Records == 10 })
	if st.Status != "SUCCESS" || st.Message != "" || st.LastDelivery.IsZero() || st.LastRecordEnd.Unix() < start {
		t.Fatalf("after delivery: %+v", st)
	}

	// The root becomes a file: publishing fails, and is retried.
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sp.Write(sinktest.Window(2, start+60, 5, 2)); err != nil {
		t.Fatal(err)
	}
	if err := sp.Advance(start + 120); err != nil {
		t.Fatal(err)
	}
	st = wait("failing", func(s control.FlowLogStatus) bool { return s.Status == "FAILED" })
	if !strings.Contains(st.Message, root) || st.Records != 10 {
		t.Fatalf("while failing: %+v", st)
	}
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	st = wait("recovered", func(s control.FlowLogStatus) bool { return s.Status == "SUCCESS" })
	st = wait("all delivered", func(s control.FlowLogStatus) bool { return s.Records == 15 })
	if st.Message != "" {
		t.Fatalf("after recovery: %+v", st)
	}
}
