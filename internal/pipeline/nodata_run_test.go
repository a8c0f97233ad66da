package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// recordSink hides StreamSink's NODATA runs: every record reaches it
// through Write, window by window, as from a sink without runs.
type recordSink struct{ s *StreamSink }

func (r recordSink) Write(recs []flow.Record) error { return r.s.Write(recs) }
func (r recordSink) Advance(w int64) error          { return r.s.Advance(w) }
func (r recordSink) Close() error                   { return r.s.Close() }

// twoInterfaces is a pcapng capture with two Ethernet interfaces; ifaces
// gives each packet's interface.
func twoInterfaces(pkts []pkt, ifaces []uint32) []byte {
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b := le.AppendUint32(nil, typ)
		b = le.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		return le.AppendUint32(b, uint32(12+len(body)))
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	out := block(0x0a0d0d0a, shb)
	for range 2 {
		idb := le.AppendUint16(nil, 1)
		idb = le.AppendUint16(idb, 0)
		idb = le.AppendUint32(idb, 65535)
		out = append(out, block(1, idb)...)
	}
	for i, p := range pkts {
		us := uint64(p.sec) * 1e6
		epb := le.AppendUint32(nil, ifaces[i])
		epb = le.AppendUint32(epb, uint32(us>>32))
		epb = le.AppendUint32(epb, uint32(us))
		epb = le.AppendUint32(epb, uint32(len(p.frame)))
		epb = le.AppendUint32(epb, uint32(len(p.frame)))
		out = append(out, block(6, append(epb, p.frame...))...)
	}
	return out
}

// TestNoDataRunsEqualRecords checks that NODATA runs rendered from a
// template are byte for byte the records Write renders: over gaps whose
// start and end gain a digit, with one and two interfaces, start and end
// in any order or absent, text and JSON.
func TestNoDataRunsEqualRecords(t *testing.T) {
	a := udpFrame("10.0.0.1", "10.0.0.2", 1000, 2000, 10)
	b := udpFrame("10.0.0.3", "10.0.0.4", 53, 53, 20)
	// 999 900 000 is 9 digits, the windows after 999 999 600 have 10.
	captures := map[string][]byte{
		"one interface": capture(t, []pkt{{999_900_005, a}, {1_000_300_007, a}, {1_000_300_100, b}, {1_000_900_000, b}}),
		"two interfaces": twoInterfaces(
			[]pkt{{999_990_005, a}, {999_990_010, b}, {1_000_020_000, a}, {1_000_400_003, b}},
			[]uint32{0, 1, 0, 1}),
		"no gap": capture(t, []pkt{{t0, a}, {t0 + 1, b}}),
	}
	formats := []string{
		flow.DefaultFormatText,
		"${end} ${start} ${log-status} ${interface-id}",
		"${start} ${end}",
		"${interface-id} ${log-status} ${packets}",
		"${version} ${start} ${account-id} ${end} ${az-id} ${flow-direction}",
	}
	for name, data := range captures {
		for _, format := range formats {
			for _, interval := range []int64{60, 600} {
				for _, asJSON := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%q/%d/json=%v", name, format, interval, asJSON), func(t *testing.T) {
						cfg := testConfig(t, interval)
						f, err := flow.ParseFormat(format)
						if err != nil {
							t.Fatal(err)
						}
						cfg.Format = f
						var runs, recs bytes.Buffer
						st1, err := Read(context.Background(), bytes.NewReader(data), "runs", cfg, NewStreamSink(&runs, f, asJSON, true))
						if err != nil {
							t.Fatal(err)
						}
						st2, err := Read(context.Background(), bytes.NewReader(data), "records", cfg, recordSink{NewStreamSink(&recs, f, asJSON, true)})
						if err != nil {
							t.Fatal(err)
						}
						if st1 != st2 {
							t.Errorf("stats with runs %+v, without %+v", st1, st2)
						}
						if !bytes.Equal(runs.Bytes(), recs.Bytes()) {
							t.Errorf("with runs:\n%s\nwithout:\n%s", head(runs.String()), head(recs.String()))
						}
						lines := strings.Count(recs.String(), "\n") - 1
						if asJSON {
							lines++
						}
						if uint64(lines) != st1.Records {
							t.Errorf("%d lines, %d records", lines, st1.Records)
						}
					})
				}
			}
		}
	}
}

func head(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}

// TestNoDataRunDigits checks the decimal counter across carries and new
// digits.
func TestNoDataRunDigits(t *testing.T) {
	for _, start := range []int64{0, 9, 999_999_400, 999_999_999, 1 << 33} {
		for _, inc := range []int64{1, 7, 60, 600, 999, 3000} {
			var d, e decimal
			d.set(start)
			e.set(start)
			step := newIncrement(inc)
			for v := start; v < start+200*inc; v += inc {
				if got, want := string(d.digits()), fmt.Sprint(v); got != want {
					t.Fatalf("start %d, +%d: got %s, want %s", start, inc, got, want)
				}
				if got, want := string(e.digits()), fmt.Sprint(v); got != want {
					t.Fatalf("start %d, step %d: got %s, want %s", start, inc, got, want)
				}
				d.add(inc)
				e.step(&step)
			}
		}
	}
}

// TestNoDataRunCounts checks a long gap: one NODATA record per window,
// nothing else, and the first and last lines.
func TestNoDataRunCounts(t *testing.T) {
	a := udpFrame("10.0.0.1", "10.0.0.2", 1000, 2000, 10)
	const gap = 100_000 // windows
	out, st := readToText(t, capture(t, []pkt{{t0, a}, {t0 + (gap+1)*600, a}}), testConfig(t, 600))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != gap+2 || st.NoData != gap || st.Records != gap+2 {
		t.Fatalf("%d lines, stats %+v", len(lines), st)
	}
	want := fmt.Sprintf("eni-00000000000000000 - - - - - - %d %d NODATA", t0+600, t0+1200)
	if lines[1] != want {
		t.Errorf("first NODATA %q, want %q", lines[1], want)
	}
	want = fmt.Sprintf("eni-00000000000000000 - - - - - - %d %d NODATA", t0+gap*600, t0+(gap+1)*600)
	if lines[gap] != want {
		t.Errorf("last NODATA %q, want %q", lines[gap], want)
	}
}
