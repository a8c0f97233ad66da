package analyze

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// Metrics Top ranks groups by.
const (
	MetricBytes   = "bytes"
	MetricPackets = "packets"
	MetricRecords = "records"
)

// TopOptions configure Top and Rejected.
type TopOptions struct {
	// By are the fields records are grouped by (default: srcaddr for Top;
	// srcaddr, dstaddr, dstport, protocol for Rejected).
	By []flow.FieldID
	// Metric ranks the groups: bytes (default for Top), packets (default
	// for Rejected) or records.
	Metric string
	// Bucket, when set, also groups by time: records fall in the bucket
	// their start is in (buckets are aligned to the Unix epoch).
	Bucket time.Duration
	// Limit is how many groups to print (per bucket); 0 prints all.
	Limit int
}

// ParseFields reads a comma-separated list of field names (--by).
func ParseFields(s string) ([]flow.FieldID, error) {
	var ids []flow.FieldID
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		id, ok := fieldByWord(name)
		if !ok {
			msg := fmt.Sprintf("unknown field %q", name)
			if s := closestField(name); s != "" {
				msg += "; did you mean " + s + "?"
			}
			return nil, fmt.Errorf("%s (see 'flowlog format fields')", msg)
		}
		if slices.Contains(ids, id) {
			return nil, fmt.Errorf("field %s given twice", name)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no field names in %q", s)
	}
	return ids, nil
}

// group is the totals of one group. It holds no pointers, so a table of
// millions of groups costs the garbage collector nothing.
type group struct {
	bucket                  int64 // start of the time bucket; math.MinInt64 without one
	records, packets, bytes uint64
	first, last             int64
	hasTime                 bool
}

// shortKeyLen is the size of keys kept in the slots of a map: enough for
// an address and a port, or a few numbers.
const shortKeyLen = 32

type shortKey [shortKeyLen]byte

// groupTable groups records by fields.
type groupTable struct {
	noHooks
	by           []flow.FieldID
	bucket       int64 // seconds; 0: none
	onlyRejected bool
	key          []byte
	// Groups by the binary key of their values (appendKey, after the
	// bucket): keys of up to shortKeyLen bytes (numbers, addresses,
	// enums) live in short, stored in the map's slots; longer ones
	// (strings) in long. Both map to an index in groups.
	short       map[shortKey]int32
	long        map[string]int32
	groups      []group
	sawNoAction bool // a format without action (for Rejected)
}

func newGroupTable(opt *TopOptions, onlyRejected bool) *groupTable {
	return &groupTable{by: opt.By, onlyRejected: onlyRejected, short: map[shortKey]int32{}, long: map[string]int32{}, bucket: int64(opt.Bucket / time.Second)}
}

func (t *groupTable) fields() flow.FieldSet {
	s := flow.FieldSet(0).With(flow.FieldPackets).With(flow.FieldBytes).With(flow.FieldStart).With(flow.FieldEnd).With(flow.FieldLogStatus)
	for _, id := range t.by {
		s = s.With(id)
	}
	if t.onlyRejected {
		s = s.With(flow.FieldAction)
	}
	return s
}

func (t *groupTable) format(f *flow.Format) {
	if !f.Has(flow.FieldAction) {
		t.sawNoAction = true
	}
}

func (t *groupTable) record(r *flow.Record, _ []byte) {
	if r.Present&(1<<flow.FieldLogStatus) != 0 && r.LogStatus != flow.LogStatusOK {
		return
	}
	if t.onlyRejected && (r.Present&(1<<flow.FieldAction) == 0 || r.Action != flow.ActionReject) {
		return
	}
	k := t.key[:0]
	bucket := int64(math.MinInt64)
	if t.bucket > 0 {
		ts, ok := r.Start, r.Present.Has(flow.FieldStart)
		if !ok {
			ts, ok = r.End, r.Present.Has(flow.FieldEnd)
		}
		if ok {
			bucket = ts - ts%t.bucket
			if ts < 0 && ts%t.bucket != 0 {
				bucket -= t.bucket
			}
		}
		k = binary.LittleEndian.AppendUint64(k, uint64(bucket))
	}
	for _, id := range t.by {
		k = appendKey(k, r, id)
	}
	t.key = k
	g := &t.groups[t.index(k, bucket)]
	g.records++
	if r.Present&(1<<flow.FieldPackets) != 0 {
		g.packets += r.Packets
	}
	if r.Present&(1<<flow.FieldBytes) != 0 {
		g.bytes += r.Bytes
	}
	if r.Present&(1<<flow.FieldStart|1<<flow.FieldEnd) == 1<<flow.FieldStart|1<<flow.FieldEnd {
		if !g.hasTime || r.Start < g.first {
			g.first = r.Start
		}
		if !g.hasTime || r.End > g.last {
			g.last = r.End
		}
		g.hasTime = true
	}
}

// index returns the index in t.groups of the group with key k, adding
// the group if it is new. The key encoding is prefix-free, so zero
// padding keeps short keys distinct.
func (t *groupTable) index(k []byte, bucket int64) int32 {
	if len(k) <= shortKeyLen {
		var sk shortKey
		copy(sk[:], k)
		i, ok := t.short[sk]
		if !ok {
			i = int32(len(t.groups))
			t.groups = append(t.groups, group{bucket: bucket})
			t.short[sk] = i
		}
		return i
	}
	i, ok := t.long[string(k)]
	if !ok {
		i = int32(len(t.groups))
		t.groups = append(t.groups, group{bucket: bucket})
		t.long[string(k)] = i
	}
	return i
}

// appendKey appends a binary form of field id of r that is equal for
// equal values (and differs for "-").
func appendKey(b []byte, r *flow.Record, id flow.FieldID) []byte {
	if !r.Present.Has(id) {
		return append(b, 0)
	}
	b = append(b, 1)
	switch kindOf(id) {
	case kindNumber:
		return binary.LittleEndian.AppendUint64(b, numField(r, id))
	case kindAddr:
		a := addrOf(r, id)
		s := a.As16()
		if a.Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
		return append(b, s[:]...)
	}
	switch id {
	case flow.FieldAction:
		return append(b, byte(r.Action))
	case flow.FieldLogStatus:
		return append(b, byte(r.LogStatus))
	case flow.FieldFlowDirection:
		return append(b, byte(r.FlowDirection))
	}
	s := stringOf(r, id)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (t *groupTable) merge(o *groupTable) {
	for k, oi := range o.short {
		og := &o.groups[oi]
		t.groups[t.index(k[:], og.bucket)].add(og)
	}
	for k, oi := range o.long {
		og := &o.groups[oi]
		t.groups[t.index([]byte(k), og.bucket)].add(og)
	}
	t.sawNoAction = t.sawNoAction || o.sawNoAction
}

// add adds the totals of og to g.
func (g *group) add(og *group) {
	g.records += og.records
	g.packets += og.packets
	g.bytes += og.bytes
	if og.hasTime {
		if !g.hasTime || og.first < g.first {
			g.first = og.first
		}
		if !g.hasTime || og.last > g.last {
			g.last = og.last
		}
		g.hasTime = true
	}
}

func metricOf(g *group, metric string) uint64 {
	switch metric {
	case MetricPackets:
		return g.packets
	case MetricRecords:
		return g.records
	}
	return g.bytes
}

// rankedGroup is a group to print, with its values.
type rankedGroup struct {
	*group
	key   []byte
	vals  []string
	share float64 // of its bucket's total of the metric
}

// ranked returns the groups to print: per bucket, by metric (largest
// first, ties by key), at most limit; and how many were left out.
func (t *groupTable) ranked(metric string, limit int) (gs []rankedGroup, omitted int) {
	all := make([]rankedGroup, 0, len(t.groups))
	totals := map[int64]uint64{}
	for k, i := range t.short {
		all = append(all, rankedGroup{group: &t.groups[i], key: append([]byte(nil), k[:]...)})
	}
	for k, i := range t.long {
		all = append(all, rankedGroup{group: &t.groups[i], key: []byte(k)})
	}
	for _, g := range all {
		totals[g.bucket] += metricOf(g.group, metric)
	}
	slices.SortFunc(all, func(a, b rankedGroup) int {
		if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		if c := cmp.Compare(metricOf(b.group, metric), metricOf(a.group, metric)); c != 0 {
			return c
		}
		return bytes.Compare(a.key, b.key)
	})
	n := 0
	for i, g := range all {
		if i > 0 && g.bucket != all[i-1].bucket {
			n = 0
		}
		n++
		if limit > 0 && n > limit {
			omitted++
			continue
		}
		g.vals = decodeKey(g.key, t.by, t.bucket > 0)
		if tot := totals[g.bucket]; tot > 0 {
			g.share = float64(metricOf(g.group, metric)) / float64(tot)
		}
		gs = append(gs, g)
	}
	return gs, omitted
}

// decodeKey renders the values of a group key as Format.Append writes
// them.
func decodeKey(k []byte, by []flow.FieldID, bucketed bool) []string {
	if bucketed {
		k = k[8:]
	}
	vals := make([]string, len(by))
	for i, id := range by {
		present := k[0]
		k = k[1:]
		if present == 0 {
			vals[i] = "-"
			continue
		}
		switch kindOf(id) {
		case kindNumber:
			n := binary.LittleEndian.Uint64(k)
			k = k[8:]
			if id == flow.FieldStart || id == flow.FieldEnd {
				vals[i] = strconv.FormatInt(int64(n), 10)
			} else {
				vals[i] = strconv.FormatUint(n, 10)
			}
			continue
		case kindAddr:
			a := netip.AddrFrom16([16]byte(k[1:17]))
			if k[0] == 4 {
				a = a.Unmap()
			}
			k = k[17:]
			vals[i] = a.String()
			continue
		}
		switch id {
		case flow.FieldAction:
			vals[i] = flow.Action(k[0]).String()
			k = k[1:]
		case flow.FieldLogStatus:
			vals[i] = flow.LogStatus(k[0]).String()
			k = k[1:]
		case flow.FieldFlowDirection:
			vals[i] = flow.Direction(k[0]).String()
			k = k[1:]
		default:
			n, w := binary.Uvarint(k)
			s := string(k[w : w+int(n)])
			k = k[w+int(n):]
			if s == "" {
				s = "-"
			}
			vals[i] = strings.Map(func(r rune) rune {
				if r < 0x80 && isSpace(byte(r)) {
					return '_'
				}
				return r
			}, s)
		}
	}
	return vals
}

// Top groups the records by fields (and time buckets) and prints the
// largest groups by a metric: who talks most, to which ports, when.
func Top(ctx context.Context, inputs []Input, rc ReadConfig, opt TopOptions, out Output) (Stats, error) {
	if len(opt.By) == 0 {
		opt.By = []flow.FieldID{flow.FieldSrcAddr}
	}
	if opt.Metric == "" {
		opt.Metric = MetricBytes
	}
	return runGroups(ctx, inputs, rc, opt, out, false)
}

// Rejected prints what the packet filters rejected, grouped by fields
// (by default source, destination, destination port and protocol), most
// packets first.
func Rejected(ctx context.Context, inputs []Input, rc ReadConfig, opt TopOptions, out Output) (Stats, error) {
	if len(opt.By) == 0 {
		opt.By = []flow.FieldID{flow.FieldSrcAddr, flow.FieldDstAddr, flow.FieldDstPort, flow.FieldProtocol}
	}
	if opt.Metric == "" {
		opt.Metric = MetricPackets
	}
	return runGroups(ctx, inputs, rc, opt, out, true)
}

// CheckMetric validates a --metric value.
func CheckMetric(m string) error {
	switch m {
	case MetricBytes, MetricPackets, MetricRecords:
		return nil
	}
	return fmt.Errorf("--metric %q: want bytes, packets or records", m)
}

func runGroups(ctx context.Context, inputs []Input, rc ReadConfig, opt TopOptions, out Output, onlyRejected bool) (Stats, error) {
	if err := CheckMetric(opt.Metric); err != nil {
		return Stats{}, err
	}
	proto := newGroupTable(&opt, onlyRejected)
	e := newEngine(rc, proto.fields(), false)
	vs, st := e.run(ctx, inputs, func() visitor { return newGroupTable(&opt, onlyRejected) })
	t := vs[0].(*groupTable)
	for _, v := range vs[1:] {
		t.merge(v.(*groupTable))
	}
	if onlyRejected && t.sawNoAction {
		st.Notes = append(st.Notes, "some records are in a format without the action field: they cannot show what was rejected")
	}
	gs, omitted := t.ranked(opt.Metric, opt.Limit)
	if omitted > 0 {
		st.Notes = append(st.Notes, fmt.Sprintf("%d more groups not shown (--limit %d; --limit 0 shows all)", omitted, opt.Limit))
	}
	return st, out.writeGroups(&opt, gs)
}

func (out Output) writeGroups(opt *TopOptions, gs []rankedGroup) error {
	var head []string
	var right []bool
	if opt.Bucket > 0 {
		head, right = append(head, "bucket"), append(right, false)
	}
	for _, id := range opt.By {
		head = append(head, strings.ReplaceAll(id.String(), "-", "_"))
		right = append(right, kindOf(id) == kindNumber)
	}
	head = append(head, "records", "packets", "bytes", "share", "first", "last")
	right = append(right, true, true, true, true, false, false)

	if out.mode() == ModeJSON {
		return out.writeJSONLines(len(gs), func(i int) any {
			g := gs[i]
			obj := jsonObject{}
			if opt.Bucket > 0 {
				obj.add("bucket", out.bucketValue(g.bucket))
			}
			for j, id := range opt.By {
				obj.add(id.String(), typedValue(id, g.vals[j]))
			}
			obj.add("records", g.records)
			obj.add("packets", g.packets)
			obj.add("bytes", g.bytes)
			obj.add("share", math.Round(g.share*1e6)/1e6)
			if g.hasTime {
				obj.add("first", time.Unix(g.first, 0).UTC().Format(time.RFC3339))
				obj.add("last", time.Unix(g.last, 0).UTC().Format(time.RFC3339))
			}
			return obj
		})
	}
	t := &table{head: head, right: right}
	for _, g := range gs {
		var row []string
		if opt.Bucket > 0 {
			if g.bucket == math.MinInt64 {
				row = append(row, "-")
			} else {
				row = append(row, out.timeText(time.Unix(g.bucket, 0), true))
			}
		}
		row = append(row, g.vals...)
		row = append(row, strconv.FormatUint(g.records, 10), strconv.FormatUint(g.packets, 10), strconv.FormatUint(g.bytes, 10),
			strconv.FormatFloat(g.share*100, 'f', 1, 64)+"%",
			out.timeText(time.Unix(g.first, 0), g.hasTime), out.timeText(time.Unix(g.last, 0), g.hasTime))
		t.rows = append(t.rows, row)
	}
	return out.writeTable(t)
}

func (out Output) bucketValue(b int64) any {
	if b == math.MinInt64 {
		return nil
	}
	return time.Unix(b, 0).UTC().Format(time.RFC3339)
}

// typedValue is a rendered field value as JSON: numbers as numbers, "-"
// as null, the rest as strings.
func typedValue(id flow.FieldID, s string) any {
	if s == "-" {
		return nil
	}
	if kindOf(id) == kindNumber {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n
		}
	}
	return s
}
