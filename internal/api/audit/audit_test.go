package audit

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig("/var/lib/flowlog/server").Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEventOfClassifiesResults(t *testing.T) {
	call := &api.Call{RequestID: "r1", Service: "ec2", Action: "CreateFlowLogs", Time: time.Unix(100, 0), SourceIP: netip.MustParseAddr("127.0.0.1"),
		Principal: api.Principal{ARN: "arn:aws:iam::123456789012:user/alice", AccessKeyID: "AKIAX"}}
	if e := EventOf(call, []string{"*"}, nil); e.Result != ResultAllowed || e.SourceIP != "127.0.0.1" || e.Principal == "" {
		t.Fatalf("allowed: %+v", e)
	}
	if e := EventOf(call, nil, api.AccessDenied("ec2", call.Principal, "ec2:CreateFlowLogs", []string{"*"})); e.Result != ResultDenied || e.ErrorCode != "UnauthorizedOperation" {
		t.Fatalf("denied: %+v", e)
	}
	if e := EventOf(call, nil, api.Errorf("InvalidParameterValue", "bad")); e.Result != ResultError || e.ErrorCode != "InvalidParameterValue" {
		t.Fatalf("error: %+v", e)
	}
}

// Concurrent writers, a small file size so that it rotates many times,
// then Stop: every line is in the trail exactly once, in the kept files.
func TestRotationKeepsEveryLineUntilDropped(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	cfg.MaxBytes, cfg.Keep = 4096, 1000
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.Start(context.Background())
	const writers, each = 8, 500
	var wg sync.WaitGroup
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Write(Event{Time: base.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprintf("%d-%d", w, i), Service: "iam", Action: "GetUser", Result: ResultAllowed})
			}
		}()
	}
	wg.Wait()
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files: did it rotate?", len(files))
	}
	seen := map[string]int{}
	skipped, err := Read(cfg.Dir, Filter{}, func(e Event) error { seen[e.RequestID]++; return nil })
	if err != nil || skipped != 0 {
		t.Fatalf("read: %v, %d skipped", err, skipped)
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("line %s read %d times", id, n)
		}
	}

	// With Keep 2 only the newest two rotated files remain.
	cfg2 := cfg
	cfg2.Dir, cfg2.Keep = filepath.Join(dir, "keep2"), 2
	l2, err := New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		l2.Write(Event{Time: base, RequestID: fmt.Sprint(i), Result: ResultAllowed})
		if i%100 == 0 {
			l2.flush()
		}
	}
	if err := l2.Stop(); err != nil {
		t.Fatal(err)
	}
	files, _ = Files(cfg2.Dir)
	if len(files) != 3 || filepath.Base(files[0]) != "audit.log.2" {
		t.Fatalf("files with keep 2: %v", files)
	}
}

func TestFlushedWithinInterval(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.Start(context.Background())
	defer l.Stop()
	l.Write(Event{Time: time.Now(), RequestID: "x", Result: ResultAllowed})
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(filepath.Join(cfg.Dir, FileName)); len(b) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the line was not written within 3 s (flush interval 1 s)")
}

func TestFilter(t *testing.T) {
	e := Event{Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), Principal: "arn:aws:sts::123456789012:assumed-role/flowlogs-role/flowlog-delivery",
		AccessKeyID: "ASIAX", Service: "logs", Action: "PutLogEvents", Result: ResultDenied}
	for _, c := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Since: e.Time.Add(time.Second)}, false},
		{Filter{Until: e.Time}, false},
		{Filter{Result: "denied"}, true},
		{Filter{Result: "allowed"}, false},
		{Filter{Principal: "flowlogs-role"}, true},
		{Filter{Principal: "flowlog-delivery"}, true},
		{Filter{Principal: "ASIAX"}, true},
		{Filter{Principal: "alice"}, false},
		{Filter{Action: "putlogevents"}, true},
		{Filter{Action: "logs:Put*"}, true},
		{Filter{Action: "ec2:*"}, false},
	} {
		if got := c.f.Match(e); got != c.want {
			t.Errorf("%+v: %v", c.f, got)
		}
	}
}
