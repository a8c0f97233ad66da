package pipeline

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	livesrc "github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/policy"
)

const liveFormat = "${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${pkt-srcaddr} ${pkt-dstaddr} ${flow-direction} ${tcp-flags}"

// textSink renders records as lines, safe to read while written.
type textSink struct {
	mu      sync.Mutex
	format  *flow.Format
	lines   []string
	marks   []int64
	closed  bool
	block   chan struct{} // Write waits on it when set
	writing chan struct{}
}

func (s *textSink) Write(recs []flow.Record) error {
	if s.writing != nil {
		s.writing <- struct{}{}
	}
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range recs {
		s.lines = append(s.lines, string(s.format.Append(nil, &recs[i])))
	}
	return nil
}

func (s *textSink) Advance(w int64) error {
	s.mu.Lock()
	s.marks = append(s.marks, w)
	s.mu.Unlock()
	return nil
}

func (s *textSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *textSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

func newLive(t *testing.T, tt TrafficType, sink *textSink, queue int) *LiveLog {
	t.Helper()
	f, err := flow.ParseFormat(liveFormat)
	if err != nil {
		t.Fatal(err)
	}
	sink.format = f
	l, err := NewLiveLog(LiveConfig{
		Format: f, Aggregate: aggregate.Config{Interval: 60}, TrafficType: tt,
		Exclusions: policy.DefaultExclusions(), QueueWindows: queue,
	}, sink)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func res(eni, primary string, addrs ...string) inventory.Resolved {
	r := inventory.Resolved{AccountID: "123456789012", InterfaceID: eni}
	if primary != "" {
		r.PrimaryIPv4 = netip.MustParseAddr(primary)
	}
	for _, a := range addrs {
		r.Addresses = append(r.Addresses, netip.MustParseAddr(a))
	}
	return r
}

func delta(iface uint32, src, dst string, sport, dport uint16, proto uint8, sec int64, packets uint64, dir flow.Direction) *livesrc.Delta {
	return &livesrc.Delta{
		Key: flow.Key{Interface: iface, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
			SrcPort: sport, DstPort: dport, Protocol: proto, Action: flow.ActionAccept},
		Packets: packets, Bytes: packets * 100, First: sec * 1e9, Last: sec*1e9 + 5e8, Direction: dir,
	}
}

type fakeNAT map[inventory.Tuple][2]netip.Addr

func (n fakeNAT) Lookup(t inventory.Tuple) (netip.Addr, netip.Addr, bool) {
	a, ok := n[t]
	return a[0], a[1], ok
}

func TestLiveLogWindowsOnTheClock(t *testing.T) {
	sink := &textSink{}
	l := newLive(t, TrafficAll, sink, 0)
	if err := l.Start(context.Background(), 1000); err != nil {
		t.Fatal(err)
	}
	nat := fakeNAT{{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("8.8.8.8"), SrcPort: 4000, DstPort: 53, Protocol: 17}: {
		netip.MustParseAddr("172.17.0.2"), netip.MustParseAddr("8.8.8.8")}}
	l.AddInterface(1, res("eni-00000001", "192.0.2.1", "192.0.2.1"), nat)
	l.AddInterface(2, res("eni-00000002", "", "10.0.0.2"), nil)
	l.AddInterface(3, res("eni-00000003", ""), nil)
	l.Add(delta(1, "192.0.2.1", "8.8.8.8", 4000, 53, 17, 1001, 2, flow.DirectionEgress))
	l.Add(delta(2, "10.0.0.9", "10.0.0.2", 1, 2, 6, 1002, 1, flow.DirectionUnknown)) // direction from the address
	l.Add(delta(2, "10.0.0.9", "169.254.169.254", 1, 80, 6, 1002, 7, 0))             // excluded
	l.Add(delta(9, "10.0.0.9", "10.0.0.2", 1, 2, 6, 1002, 1, flow.DirectionIngress)) // not covered
	l.AddLost(3, 1003, 5)
	l.AddLost(9, 1003, 5)
	l.Advance(1019)
	if sink.text() != "" {
		t.Fatalf("written before the window closed:\n%s", sink.text())
	}
	l.Advance(1022) // window 960..1020 closes at 1020 + lateness 2
	l.Advance(1085) // one more, with NODATA only
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	want := `eni-00000003 - - - - - - 960 1020 - SKIPDATA - - - -
eni-00000001 192.0.2.1 8.8.8.8 4000 53 2 200 1001 1001 ACCEPT OK 172.17.0.2 8.8.8.8 egress 0
eni-00000002 10.0.0.9 10.0.0.2 1 2 1 100 1002 1002 ACCEPT OK 10.0.0.9 10.0.0.2 ingress 0
eni-00000001 - - - - - - 1020 1080 - NODATA - - - -
eni-00000002 - - - - - - 1020 1080 - NODATA - - - -
eni-00000003 - - - - - - 1020 1080 - NODATA - - - -
eni-00000001 - - - - - - 1080 1140 - NODATA - - - -
eni-00000002 - - - - - - 1080 1140 - NODATA - - - -
eni-00000003 - - - - - - 1080 1140 - NODATA - - - -`
	if got := sink.text(); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
	if len(sink.marks) != 3 || sink.marks[0] != 1020 || sink.marks[2] != 1140 {
		t.Errorf("advanced to %v", sink.marks)
	}
	if !sink.closed {
		t.Error("sink not closed")
	}
	st := l.Stats()
	if st.Excluded != 7 || st.Table.LostPackets != 5 || st.Records != 9 || st.NoData != 6 || st.SkipData != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestLiveLogSlowSink fills the queue to a sink that does not return:
// windows that find no room become SKIPDATA, written once there is room,
// and nothing after them is written before them.
func TestLiveLogSlowSink(t *testing.T) {
	sink := &textSink{block: make(chan struct{}), writing: make(chan struct{}, 16)}
	l := newLive(t, TrafficAll, sink, 1)
	if err := l.Start(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	l.AddInterface(1, res("eni-00000001", ""), nil)
	l.Add(delta(1, "10.0.0.1", "10.0.0.2", 1, 2, 6, 10, 1, flow.DirectionEgress))
	l.Advance(62) // window 0: taken by the sink goroutine, which blocks
	<-sink.writing
	l.Add(delta(1, "10.0.0.1", "10.0.0.2", 1, 2, 6, 70, 1, flow.DirectionEgress))
	l.Advance(122) // window 60: queued
	l.Add(delta(1, "10.0.0.1", "10.0.0.2", 1, 2, 6, 130, 1, flow.DirectionEgress))
	l.Advance(182) // window 120: no room, SKIPDATA pending
	l.Advance(242) // window 180 (NODATA): no room either
	if st := l.Stats(); st.DroppedWindows != 2 || st.DroppedRecords != 2 {
		t.Errorf("stats %+v", st)
	}
	close(sink.block)
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	want := `eni-00000001 10.0.0.1 10.0.0.2 1 2 1 100 10 10 ACCEPT OK 10.0.0.1 10.0.0.2 egress 0
eni-00000001 10.0.0.1 10.0.0.2 1 2 1 100 70 70 ACCEPT OK 10.0.0.1 10.0.0.2 egress 0
eni-00000001 - - - - - - 120 180 - SKIPDATA - - - -
eni-00000001 - - - - - - 180 240 - SKIPDATA - - - -
eni-00000001 - - - - - - 240 300 - NODATA - - - -`
	if got := sink.text(); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
}

func TestLiveLogTrafficTypeAndRemoval(t *testing.T) {
	sink := &textSink{}
	l := newLive(t, TrafficReject, sink, 0)
	if err := l.Start(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	l.AddInterface(1, res("eni-00000001", ""), nil)
	l.AddInterface(2, res("eni-00000002", ""), nil)
	rej := delta(1, "10.0.0.1", "10.0.0.2", 1, 2, 6, 10, 3, flow.DirectionIngress)
	rej.Key.Action = flow.ActionReject
	l.Add(rej)
	l.Add(delta(1, "10.0.0.1", "10.0.0.2", 1, 2, 6, 11, 4, flow.DirectionIngress))
	l.RemoveInterface(2, 20)
	l.Advance(130)
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	want := `eni-00000002 - - - - - - 0 60 - NODATA - - - -
eni-00000001 10.0.0.1 10.0.0.2 1 2 3 300 10 10 REJECT OK 10.0.0.1 10.0.0.2 ingress 0
eni-00000001 - - - - - - 60 120 - NODATA - - - -
eni-00000001 - - - - - - 120 180 - NODATA - - - -`
	if got := sink.text(); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
}

// fakeSource hands out fixed deltas and losses.
type fakeSource struct {
	deltas []livesrc.Delta
	lost   map[uint32]uint64
}

func (f *fakeSource) Attach(uint32, livesrc.Link) error { return nil }
func (f *fakeSource) Detach(uint32) error               { return nil }
func (f *fakeSource) Close() error                      { return nil }
func (f *fakeSource) Drain(fn func(*livesrc.Delta)) (map[uint32]uint64, error) {
	for i := range f.deltas {
		fn(&f.deltas[i])
	}
	return f.lost, nil
}

func TestDrainLive(t *testing.T) {
	a, b := &textSink{}, &textSink{}
	la, lb := newLive(t, TrafficAll, a, 0), newLive(t, TrafficAll, b, 0)
	for _, l := range []*LiveLog{la, lb} {
		if err := l.Start(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	}
	la.AddInterface(1, res("eni-00000001", ""), nil)
	lb.AddInterface(1, res("eni-00000001", ""), nil)
	lb.AddInterface(2, res("eni-00000002", ""), nil)
	src := &fakeSource{
		deltas: []livesrc.Delta{*delta(1, "10.0.0.1", "10.0.0.2", 1, 2, 17, 5, 2, flow.DirectionEgress), *delta(2, "10.0.0.3", "10.0.0.4", 3, 4, 17, 6, 1, flow.DirectionEgress)},
		lost:   map[uint32]uint64{2: 9},
	}
	var seen int
	lost, err := DrainLive(src, 7, []*LiveLog{la, lb}, func(*livesrc.Delta) { seen++ })
	if err != nil || seen != 2 || lost[2] != 9 {
		t.Fatalf("DrainLive: %v %d %v", err, seen, lost)
	}
	la.Stop()
	lb.Stop()
	if got := a.text(); got != "eni-00000001 10.0.0.1 10.0.0.2 1 2 2 200 5 5 ACCEPT OK 10.0.0.1 10.0.0.2 egress 0" {
		t.Errorf("log a:\n%s", got)
	}
	want := `eni-00000002 - - - - - - 0 60 - SKIPDATA - - - -
eni-00000001 10.0.0.1 10.0.0.2 1 2 2 200 5 5 ACCEPT OK 10.0.0.1 10.0.0.2 egress 0
eni-00000002 10.0.0.3 10.0.0.4 3 4 1 100 6 6 ACCEPT OK 10.0.0.3 10.0.0.4 egress 0`
	if got := b.text(); got != want {
		t.Errorf("log b:\n%s\nwant:\n%s", got, want)
	}
}

func TestLiveLogForgetsRemovedInterfaces(t *testing.T) {
	sink := &textSink{}
	l := newLive(t, TrafficAll, sink, 0)
	if err := l.Start(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	l.AddInterface(1, res("eni-00000001", ""), nil)
	l.RemoveInterface(1, 10)
	// The last counts of a detached link still count.
	l.Add(delta(1, "10.0.0.1", "10.0.0.2", 1, 2, 17, 9, 1, flow.DirectionEgress))
	l.Advance(100)
	if !l.Covers(1) {
		t.Fatal("forgot a removed interface before its windows were written")
	}
	l.Advance(10 + 60 + 2 + 61)
	if l.Covers(1) {
		t.Error("removed interface kept for good")
	}
	l.Stop()
	if !strings.Contains(sink.text(), "eni-00000001 10.0.0.1 10.0.0.2 1 2 1 100 9 9") {
		t.Errorf("records:\n%s", sink.text())
	}
}
