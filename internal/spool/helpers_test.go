package spool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// t0 is 2018-06-20T16:20:00Z, the spec's example period.
const t0 = 1529511600

var okFields = flow.FieldSet(0).With(flow.FieldVersion).With(flow.FieldAccountID).With(flow.FieldInterfaceID).
	With(flow.FieldSrcAddr).With(flow.FieldDstAddr).With(flow.FieldSrcPort).With(flow.FieldDstPort).
	With(flow.FieldProtocol).With(flow.FieldPackets).With(flow.FieldBytes).With(flow.FieldStart).
	With(flow.FieldEnd).With(flow.FieldAction).With(flow.FieldLogStatus).With(flow.FieldVPCID).
	With(flow.FieldTCPFlags).With(flow.FieldFlowDirection)

// window returns the batch of one window [start, start+interval): n OK
// records spread over ifaces interfaces, sorted by start, like the
// pipeline hands a sink.
func window(seed uint64, start, interval int64, n, ifaces int) []flow.Record {
	rng := rand.New(rand.NewPCG(seed, uint64(start)))
	recs := make([]flow.Record, n)
	for i := range recs {
		s := start + rng.Int64N(interval)
		e := s + rng.Int64N(start+interval-s)
		recs[i] = flow.Record{
			Present:       okFields,
			Version:       5,
			AccountID:     "123456789012",
			InterfaceID:   fmt.Sprintf("eni-%017x", rng.IntN(ifaces)),
			SrcAddr:       netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			DstAddr:       netip.AddrFrom4([4]byte{172, 31, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			SrcPort:       uint16(rng.IntN(65536)),
			DstPort:       uint16(rng.IntN(1024)),
			Protocol:      6,
			Packets:       1 + rng.Uint64N(100),
			Bytes:         40 + rng.Uint64N(150000),
			Start:         s,
			End:           e,
			Action:        flow.ActionAccept,
			LogStatus:     flow.LogStatusOK,
			VPCID:         "vpc-0123456789abcdef0",
			TCPFlags:      uint8(rng.IntN(32)),
			FlowDirection: flow.DirectionIngress,
		}
	}
	slices.SortStableFunc(recs, func(a, b flow.Record) int { return int(a.Start - b.Start) })
	return recs
}

// testFormat renders records for comparisons: every field the test
// records carry.
var testFormat = mustFormat("${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${vpc-id} ${tcp-flags} ${flow-direction}")

func mustFormat(s string) *flow.Format {
	f, err := flow.ParseFormat(s)
	if err != nil {
		panic(err)
	}
	return f
}

func lines(recs []flow.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = string(testFormat.Append(nil, &recs[i]))
	}
	return out
}

var errDown = errors.New("destination down")

// streamSink is a destination with the contract of the stream sinks
// (Kafka, CloudWatch Logs): Write buffers, Advance delivers the buffer or
// fails and drops it, Reset drops it. While down, Write and Advance fail.
type streamSink struct {
	mu        sync.Mutex
	held      []string
	delivered []string
	advances  []int64
	down      bool
	failures  int
	closed    bool
	writeErr  bool // fail in Write rather than Advance while down
	advanced  chan struct{}
}

func newStreamSink() *streamSink { return &streamSink{advanced: make(chan struct{}, 1)} }

func (d *streamSink) Write(recs []flow.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("write after close")
	}
	if d.down && d.writeErr {
		d.failures++
		d.held = nil
		return errDown
	}
	d.held = append(d.held, lines(recs)...)
	return nil
}

func (d *streamSink) Advance(wm int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		d.failures++
		d.held = nil
		return errDown
	}
	d.delivered = append(d.delivered, d.held...)
	d.held = nil
	d.advances = append(d.advances, wm)
	select {
	case d.advanced <- struct{}{}:
	default:
	}
	return nil
}

func (d *streamSink) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *streamSink) Reset() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held = nil
	return nil
}

func (d *streamSink) setDown(down bool) {
	d.mu.Lock()
	d.down = down
	d.mu.Unlock()
}

func (d *streamSink) isDown() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down
}

func (d *streamSink) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.delivered)
}

func (d *streamSink) failureCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failures
}

// testConfig is a spool in dir with fast retries.
func testConfig(dir string) Config {
	cfg := DefaultConfig(dir)
	cfg.Interval = 60
	cfg.Retry = Retry{Initial: time.Millisecond, Max: 20 * time.Millisecond}
	return cfg
}

func startSpool(t testing.TB, cfg Config, dest Sink) *Spool {
	t.Helper()
	s, err := New(cfg, dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// waitFor polls cond for up to 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// counts returns how often each line occurs.
func counts(ls []string) map[string]int {
	m := make(map[string]int, len(ls))
	for _, l := range ls {
		m[l]++
	}
	return m
}

// errorLog collects what OnError hears.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}
