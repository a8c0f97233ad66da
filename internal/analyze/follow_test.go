package analyze

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// publish writes records with flowlog's directory destination, as an
// agent publishes a window: each object appears atomically.
func publish(t *testing.T, root string, format *flow.Format, lines ...string) {
	t.Helper()
	d, err := sink.NewDir(sink.DirConfig{Root: root, Format: format,
		Layout: sink.Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-0123456789abcdef0"}})
	if err != nil {
		t.Fatal(err)
	}
	var recs []flow.Record
	for _, l := range lines {
		var r flow.Record
		if err := format.ParseRecord([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		r.AccountID = "123456789012"
		r.Present = r.Present.With(flow.FieldAccountID)
		recs = append(recs, r)
	}
	if err := d.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFollowPrintsConversationsAsTheyEnd(t *testing.T) {
	format, err := flow.ParseHeader("${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}")
	if err != nil {
		t.Fatal(err)
	}
	rec := func(src, dst string, sport, dport, flags, start, end int) string {
		return strings.Join([]string{"3", "123456789012", "eni-0123456789abcdef0", src, dst, itoa(sport), itoa(dport), "6", itoa(flags), "2", "120", itoa(start), itoa(end), "ACCEPT", "OK"}, " ")
	}
	root := t.TempDir()
	// Before following: the handshake of A.
	publish(t, root, format,
		rec("10.0.0.9", "10.0.0.5", 50001, 443, 2, 1_700_000_000, 1_700_000_010),
		rec("10.0.0.5", "10.0.0.9", 443, 50001, 18, 1_700_000_000, 1_700_000_010))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := make(chan int, 100)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := FollowConnections(ctx, &Lister{}, []string{root}, ReadConfig{}, ConnOptions{},
			FollowOptions{Poll: 20 * time.Millisecond, OnBatch: func(n int) { batches <- n }}, Output{W: &out})
		done <- err
	}()
	waitRead := func() {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case n := <-batches:
				if n > 0 {
					return
				}
			case <-timeout:
				t.Fatal("follow did not read the new objects")
			}
		}
	}
	waitRead()
	if got := out.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "interface\tproto\tclient") {
		t.Fatalf("after the handshake: %q, want the header alone", got)
	}
	// A closes; B sends a SYN nobody answers.
	publish(t, root, format,
		rec("10.0.0.9", "10.0.0.5", 50001, 443, 1, 1_700_000_300, 1_700_000_310),
		rec("10.0.0.5", "10.0.0.9", 443, 50001, 1, 1_700_000_300, 1_700_000_311),
		rec("10.0.0.9", "192.0.2.1", 50002, 8443, 2, 1_700_000_300, 1_700_000_307))
	waitRead()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "10.0.0.9:50001\t10.0.0.5:443\tflags\tclosed by FIN by both\tcomplete") {
		t.Fatalf("after A closed: %q", lines)
	}
	// Records from much later: B has been quiet for more than the idle
	// time of record time, so it is over.
	publish(t, root, format, rec("10.0.0.9", "10.0.0.6", 50003, 80, 2, 1_700_001_000, 1_700_001_000))
	waitRead()
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "10.0.0.9:50002\t192.0.2.1:8443\tflags\tno answer to SYN") {
		t.Fatalf("after B went quiet: %q", lines)
	}
	// Ctrl-C: what is still open is printed as it stands.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], "10.0.0.9:50003\t10.0.0.6:80\tflags\tno answer to SYN") {
		t.Fatalf("after interrupt: %q", lines)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// follow is a FollowConnections running in the background.
type follow struct {
	cw      *CloudWatch
	out     syncBuffer
	batches chan int
	done    chan error
	st      Stats // when done
	cancel  context.CancelFunc
	took    time.Duration // from cancel to return
}

// runFollow runs FollowConnections of args through l in the background,
// with --poll 20ms and JSON output.
func runFollow(t *testing.T, l *Lister, args []string, rc ReadConfig) *follow {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follow{batches: make(chan int, 1000), done: make(chan error, 1)}
	f.cancel = func() {
		began := time.Now()
		cancel()
		select {
		case err := <-f.done:
			f.took = time.Since(began)
			f.done <- err
		case <-time.After(5 * time.Second):
			t.Fatal("the follow did not end within 5 s of its context")
		}
	}
	go func() {
		st, err := FollowConnections(ctx, l, args, rc, ConnOptions{},
			FollowOptions{Poll: 20 * time.Millisecond, OnBatch: func(n int) {
				select {
				case f.batches <- n:
				default:
				}
			}}, Output{W: &f.out, Mode: ModeJSON})
		f.st = st
		f.done <- err
	}()
	t.Cleanup(cancel)
	return f
}
