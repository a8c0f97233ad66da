package analyze

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// windowGap is how far apart (in seconds) two NODATA or SKIPDATA windows
// of an interface may be and still be reported as one stretch: consecutive
// windows share a bound or are a second or two apart.
const windowGap = 5

// Window is a stretch of time on one interface.
type Window struct {
	Interface string `json:"interface"`
	Start     int64  `json:"-"`
	End       int64  `json:"-"`
	Windows   int    `json:"windows"` // aggregation windows merged into it
}

// InterfaceSummary is what one interface's records say.
type InterfaceSummary struct {
	Interface string `json:"interface"`
	Records   int64  `json:"records"`
	NoData    int64  `json:"nodata_records"`
	SkipData  int64  `json:"skipdata_records"`
	first     int64
	last      int64
	hasTime   bool
}

// summaryTable accumulates Summary.
type summaryTable struct {
	noHooks
	records, ok, noData, skipData int64
	accepted, rejected            int64
	packets, bytes                uint64
	first, last                   int64
	hasTime                       bool
	ifaces                        map[string]*InterfaceSummary
	noDataW, skipW                []Window
	formats                       map[string]*int64
	cur                           *int64
}

func newSummaryTable() *summaryTable {
	return &summaryTable{ifaces: map[string]*InterfaceSummary{}, formats: map[string]*int64{}}
}

var summaryFields = flow.FieldSet(0).With(flow.FieldInterfaceID).With(flow.FieldStart).With(flow.FieldEnd).
	With(flow.FieldLogStatus).With(flow.FieldAction).With(flow.FieldPackets).With(flow.FieldBytes)

func (s *summaryTable) format(f *flow.Format) {
	n := s.formats[f.Header()]
	if n == nil {
		n = new(int64)
		s.formats[f.Header()] = n
	}
	s.cur = n
}

func (s *summaryTable) record(r *flow.Record, _ []byte) {
	s.records++
	if s.cur != nil {
		*s.cur++
	}
	iface := "-"
	if r.Present.Has(flow.FieldInterfaceID) {
		iface = r.InterfaceID
	}
	is := s.ifaces[iface]
	if is == nil {
		is = &InterfaceSummary{Interface: iface}
		s.ifaces[iface] = is
	}
	is.Records++
	start, end, hasTime := r.Start, r.End, false
	switch {
	case r.Present.Has(flow.FieldStart) && r.Present.Has(flow.FieldEnd):
		hasTime = true
	case r.Present.Has(flow.FieldStart):
		end, hasTime = start, true
	case r.Present.Has(flow.FieldEnd):
		start, hasTime = end, true
	}
	if hasTime {
		if !s.hasTime || start < s.first {
			s.first = start
		}
		if !s.hasTime || end > s.last {
			s.last = end
		}
		s.hasTime = true
		if !is.hasTime || start < is.first {
			is.first = start
		}
		if !is.hasTime || end > is.last {
			is.last = end
		}
		is.hasTime = true
	}
	status := flow.LogStatusOK
	if r.Present.Has(flow.FieldLogStatus) {
		status = r.LogStatus
	}
	switch status {
	case flow.LogStatusNoData:
		s.noData++
		is.NoData++
		if hasTime {
			s.noDataW = append(s.noDataW, Window{Interface: iface, Start: start, End: end, Windows: 1})
		}
		return
	case flow.LogStatusSkipData:
		s.skipData++
		is.SkipData++
		if hasTime {
			s.skipW = append(s.skipW, Window{Interface: iface, Start: start, End: end, Windows: 1})
		}
		return
	}
	s.ok++
	if r.Present.Has(flow.FieldAction) {
		switch r.Action {
		case flow.ActionAccept:
			s.accepted++
		case flow.ActionReject:
			s.rejected++
		}
	}
	if r.Present.Has(flow.FieldPackets) {
		s.packets += r.Packets
	}
	if r.Present.Has(flow.FieldBytes) {
		s.bytes += r.Bytes
	}
}

func (s *summaryTable) merge(o *summaryTable) {
	s.records += o.records
	s.ok += o.ok
	s.noData += o.noData
	s.skipData += o.skipData
	s.accepted += o.accepted
	s.rejected += o.rejected
	s.packets += o.packets
	s.bytes += o.bytes
	if o.hasTime {
		if !s.hasTime || o.first < s.first {
			s.first = o.first
		}
		if !s.hasTime || o.last > s.last {
			s.last = o.last
		}
		s.hasTime = true
	}
	for k, oi := range o.ifaces {
		is := s.ifaces[k]
		if is == nil {
			s.ifaces[k] = oi
			continue
		}
		is.Records += oi.Records
		is.NoData += oi.NoData
		is.SkipData += oi.SkipData
		if oi.hasTime {
			if !is.hasTime || oi.first < is.first {
				is.first = oi.first
			}
			if !is.hasTime || oi.last > is.last {
				is.last = oi.last
			}
			is.hasTime = true
		}
	}
	s.noDataW = append(s.noDataW, o.noDataW...)
	s.skipW = append(s.skipW, o.skipW...)
	for k, n := range o.formats {
		if m := s.formats[k]; m != nil {
			*m += *n
		} else {
			s.formats[k] = n
		}
	}
}

// mergeWindows sorts windows by interface and time and joins those that
// touch (windowGap) into stretches.
func mergeWindows(ws []Window) []Window {
	slices.SortFunc(ws, func(a, b Window) int {
		if c := cmp.Compare(a.Interface, b.Interface); c != 0 {
			return c
		}
		return cmp.Compare(a.Start, b.Start)
	})
	var out []Window
	for _, w := range ws {
		if n := len(out); n > 0 && out[n-1].Interface == w.Interface && w.Start <= out[n-1].End+windowGap {
			out[n-1].End = max(out[n-1].End, w.End)
			out[n-1].Windows += w.Windows
			continue
		}
		out = append(out, w)
	}
	return out
}

// Summarize prints what the inputs hold: records by status, time span,
// interfaces, actions, traffic, formats, the windows without traffic
// (NODATA) and, first and loudly, the windows whose records were lost
// (SKIPDATA): gaps in the evidence.
func Summarize(ctx context.Context, inputs []Input, rc ReadConfig, out Output) (Stats, error) {
	e := newEngine(rc, summaryFields, false)
	vs, st := e.run(ctx, inputs, func() visitor { return newSummaryTable() })
	s := vs[0].(*summaryTable)
	for _, v := range vs[1:] {
		s.merge(v.(*summaryTable))
	}
	skip, noData := mergeWindows(s.skipW), mergeWindows(s.noDataW)
	ifaces := make([]*InterfaceSummary, 0, len(s.ifaces))
	for _, is := range s.ifaces {
		ifaces = append(ifaces, is)
	}
	slices.SortFunc(ifaces, func(a, b *InterfaceSummary) int { return cmp.Compare(a.Interface, b.Interface) })
	if out.mode() == ModeJSON {
		return st, out.writeJSONLines(1, func(int) any { return s.json(&st, ifaces, skip, noData, out) })
	}
	return st, s.text(&st, ifaces, skip, noData, out)
}

func (out Output) unixText(t int64) string { return out.timeText(time.Unix(t, 0), true) }

func (s *summaryTable) json(st *Stats, ifaces []*InterfaceSummary, skip, noData []Window, out Output) any {
	obj := jsonObject{}
	obj.add("evidence_gaps", len(skip) > 0)
	obj.add("inputs", st.Inputs)
	obj.add("bytes_read", st.Bytes)
	obj.add("records", s.records)
	obj.add("ok_records", s.ok)
	obj.add("nodata_records", s.noData)
	obj.add("skipdata_records", s.skipData)
	if s.hasTime {
		obj.add("first", out.unixText(s.first))
		obj.add("last", out.unixText(s.last))
		obj.add("span_seconds", s.last-s.first)
	}
	obj.add("accepted_records", s.accepted)
	obj.add("rejected_records", s.rejected)
	obj.add("packets", s.packets)
	obj.add("bytes", s.bytes)
	ifs := []any{}
	for _, is := range ifaces {
		o := jsonObject{}
		o.add("interface", is.Interface)
		o.add("records", is.Records)
		o.add("nodata_records", is.NoData)
		o.add("skipdata_records", is.SkipData)
		if is.hasTime {
			o.add("first", out.unixText(is.first))
			o.add("last", out.unixText(is.last))
		}
		ifs = append(ifs, o)
	}
	obj.add("interfaces", ifs)
	windows := func(ws []Window) []any {
		list := []any{}
		for _, w := range ws {
			o := jsonObject{}
			o.add("interface", w.Interface)
			o.add("start", out.unixText(w.Start))
			o.add("end", out.unixText(w.End))
			o.add("windows", w.Windows)
			list = append(list, o)
		}
		return list
	}
	obj.add("skipdata_windows", windows(skip))
	obj.add("nodata_windows", windows(noData))
	fs := []any{}
	for _, h := range sortedFormats(s.formats) {
		o := jsonObject{}
		o.add("format", h)
		o.add("records", *s.formats[h])
		fs = append(fs, o)
	}
	obj.add("formats", fs)
	obj.add("skipped_lines", st.SkippedLines)
	return obj
}

// sortedFormats returns the formats that records were read in, most
// records first.
func sortedFormats(m map[string]*int64) []string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if *n > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(*m[b], *m[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return keys
}

func (s *summaryTable) text(st *Stats, ifaces []*InterfaceSummary, skip, noData []Window, out Output) error {
	w := bufio.NewWriter(out.W)
	span := func(a, b int64) string { return out.unixText(a) + " – " + out.unixText(b) }
	if len(skip) > 0 {
		n := 0
		set := map[string]bool{}
		for _, g := range skip {
			n += g.Windows
			set[g.Interface] = true
		}
		fmt.Fprintf(w, "!! EVIDENCE GAP: flow records were lost (SKIPDATA) in %d window(s) on %d interface(s).\n", n, len(set))
		fmt.Fprintf(w, "!! Traffic in these windows is missing from every report: its absence is not evidence.\n")
		for _, g := range skip {
			fmt.Fprintf(w, "!!   %s  %s  (%d window(s))\n", g.Interface, span(g.Start, g.End), g.Windows)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "inputs       %d (%d bytes read)\n", st.Inputs, st.Bytes)
	fmt.Fprintf(w, "records      %d: %d OK, %d NODATA, %d SKIPDATA\n", s.records, s.ok, s.noData, s.skipData)
	if s.hasTime {
		fmt.Fprintf(w, "time span    %s (%s)\n", span(s.first, s.last), time.Duration(s.last-s.first)*time.Second)
	} else {
		fmt.Fprintf(w, "time span    - (no start or end field)\n")
	}
	fmt.Fprintf(w, "actions      %d ACCEPT, %d REJECT\n", s.accepted, s.rejected)
	fmt.Fprintf(w, "traffic      %d packets, %d bytes\n", s.packets, s.bytes)
	fmt.Fprintf(w, "interfaces   %d\n", len(ifaces))
	for _, is := range ifaces {
		t := "-"
		if is.hasTime {
			t = span(is.first, is.last)
		}
		fmt.Fprintf(w, "  %s  %d records (%d NODATA, %d SKIPDATA)  %s\n", is.Interface, is.Records, is.NoData, is.SkipData, t)
	}
	fmt.Fprintf(w, "no traffic (NODATA windows)\n")
	if len(noData) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, g := range noData {
		fmt.Fprintf(w, "  %s  %s  (%d window(s))\n", g.Interface, span(g.Start, g.End), g.Windows)
	}
	fmt.Fprintf(w, "records lost (SKIPDATA windows)\n")
	if len(skip) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, g := range skip {
		fmt.Fprintf(w, "  %s  %s  (%d window(s))\n", g.Interface, span(g.Start, g.End), g.Windows)
	}
	fmt.Fprintf(w, "formats\n")
	for _, h := range sortedFormats(s.formats) {
		fmt.Fprintf(w, "  %d records: %s\n", *s.formats[h], h)
	}
	if st.SkippedLines > 0 {
		fmt.Fprintf(w, "unreadable   %d lines\n", st.SkippedLines)
	}
	return w.Flush()
}
