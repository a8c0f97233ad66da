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

// Group keys are kept in the slots of maps by size: up to 8 bytes (an
// IPv4 address and a port) in k8, 16 (two IPv4 addresses and a port) in
// k16, 32 (an IPv6 address and a port) in k32, and longer ones (strings)
// as strings. The key encoding is prefix-free, so zero padding keeps keys
// distinct.
type (
	key16 [2]uint64
	key32 [4]uint64
)

// groupTable groups records by fields.
type groupTable struct {
	noHooks
	by           []flow.FieldID
	bucket       int64 // seconds; 0: none
	onlyRejected bool
	key          []byte
	// Groups by the binary key of their values (the bucket, then
	// appendKey for each field), to an index in groups.
	k8          map[uint64]int32
	k16         map[key16]int32
	k32         map[key32]int32
	long        map[string]int32
	groups      []group
	sawNoAction bool // a format without action (for Rejected)
}

func newGroupTable(opt *TopOptions, onlyRejected bool) *groupTable {
	return &groupTable{by: opt.By, onlyRejected: onlyRejected, bucket: int64(opt.Bucket / time.Second),
		k8: map[uint64]int32{}, k16: map[key16]int32{}, k32: map[key32]int32{}, long: map[string]int32{}}
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
	switch {
	case len(k) <= 8:
		var pad [8]byte
		copy(pad[:], k)
		return lookup(t, t.k8, binary.LittleEndian.Uint64(pad[:]), bucket)
	case len(k) <= 16:
		var pad [16]byte
		copy(pad[:], k)
		return lookup(t, t.k16, key16{binary.LittleEndian.Uint64(pad[:]), binary.LittleEndian.Uint64(pad[8:])}, bucket)
	case len(k) <= 32:
		var pad [32]byte
		copy(pad[:], k)
		return lookup(t, t.k32, key32{binary.LittleEndian.Uint64(pad[:]), binary.LittleEndian.Uint64(pad[8:]),
			binary.LittleEndian.Uint64(pad[16:]), binary.LittleEndian.Uint64(pad[24:])}, bucket)
	}
	i, ok := t.long[string(k)]
	if !ok {
		i = t.newGroup(bucket)
		t.long[string(k)] = i
	}
	return i
}

func lookup[K comparable](t *groupTable, m map[K]int32, k K, bucket int64) int32 {
	i, ok := m[k]
	if !ok {
		i = t.newGroup(bucket)
		m[k] = i
	}
	return i
}

func (t *groupTable) newGroup(bucket int64) int32 {
	t.groups = append(t.groups, group{bucket: bucket})
	return int32(len(t.groups) - 1)
}

// keys calls fn with every key (padded keys with their padding) and its
// group index.
func (t *groupTable) keys(fn func(k []byte, i int32)) {
	var b [32]byte
	for k, i := range t.k8 {
		binary.LittleEndian.PutUint64(b[:], k)
		fn(b[:8], i)
	}
	for k, i := range t.k16 {
		binary.LittleEndian.PutUint64(b[:], k[0])
		binary.LittleEndian.PutUint64(b[8:], k[1])
		fn(b[:16], i)
	}
	for k, i := range t.k32 {
		for j := range k {
			binary.LittleEndian.PutUint64(b[8*j:], k[j])
		}
		fn(b[:32], i)
	}
	for k, i := range t.long {
		fn([]byte(k), i)
	}
}

// appendKey appends a binary form of field id of r that is equal for
// equal values (and differs for "-"), as short as the field allows: a tag
// (0 for no value; for addresses 4 or 6), then the value in its field's
// width. Strings carry their length. Every field's encoding says its own
// length, so a key of several fields is prefix-free.
func appendKey(b []byte, r *flow.Record, id flow.FieldID) []byte {
	switch kindOf(id) {
	case kindAddr:
		if !r.Present.Has(id) {
			return append(b, 0)
		}
		a := addrOf(r, id)
		if a.Is4() {
			s := a.As4()
			return append(append(b, 4), s[:]...)
		}
		s := a.As16()
		return append(append(b, 6), s[:]...)
	case kindNumber:
		if !r.Present.Has(id) {
			return append(b, 0)
		}
		n := numField(r, id)
		b = append(b, 1)
		switch numWidth(id) {
		case 1:
			return append(b, byte(n))
		case 2:
			return binary.LittleEndian.AppendUint16(b, uint16(n))
		}
		return binary.LittleEndian.AppendUint64(b, n)
	}
	if !r.Present.Has(id) {
		return append(b, 0)
	}
	// Enums are their value: 0 is "-" with a value or without.
	switch id {
	case flow.FieldAction:
		return append(b, byte(r.Action))
	case flow.FieldLogStatus:
		return append(b, byte(r.LogStatus))
	case flow.FieldFlowDirection:
		return append(b, byte(r.FlowDirection))
	}
	s := r.StringValue(id)
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// numWidth is how many bytes a numeric field's values take in a key.
func numWidth(id flow.FieldID) int {
	switch id {
	case flow.FieldVersion, flow.FieldProtocol, flow.FieldTCPFlags, flow.FieldTrafficPath:
		return 1
	case flow.FieldSrcPort, flow.FieldDstPort:
		return 2
	}
	return 8
}

// keyLen returns the length of the encoding of field id at the start of
// k.
func keyLen(k []byte, id flow.FieldID) int {
	switch kindOf(id) {
	case kindAddr:
		switch k[0] {
		case 4:
			return 5
		case 6:
			return 17
		}
		return 1
	case kindNumber:
		if k[0] == 0 {
			return 1
		}
		return 1 + numWidth(id)
	}
	switch id {
	case flow.FieldAction, flow.FieldLogStatus, flow.FieldFlowDirection:
		return 1
	}
	if k[0] == 0 {
		return 1
	}
	n, w := binary.Uvarint(k[1:])
	return 1 + w + int(n)
}

func (t *groupTable) merge(o *groupTable) {
	o.keys(func(k []byte, oi int32) {
		og := &o.groups[oi]
		t.groups[t.index(trimPadding(k, t.by, t.bucket > 0), og.bucket)].add(og)
	})
	t.sawNoAction = t.sawNoAction || o.sawNoAction
}

// trimPadding returns a padded key without its padding: its encoded
// length, read field by field.
func trimPadding(k []byte, by []flow.FieldID, bucketed bool) []byte {
	n := 0
	if bucketed {
		n = 8
	}
	for _, id := range by {
		n += keyLen(k[n:], id)
	}
	return k[:n]
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
	t.keys(func(k []byte, i int32) {
		all = append(all, rankedGroup{group: &t.groups[i], key: append([]byte(nil), k...)})
	})
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
		n := keyLen(k, id)
		v := k[:n]
		k = k[n:]
		switch kindOf(id) {
		case kindAddr:
			switch v[0] {
			case 4:
				vals[i] = netip.AddrFrom4([4]byte(v[1:5])).String()
			case 6:
				vals[i] = netip.AddrFrom16([16]byte(v[1:17])).String()
			default:
				vals[i] = "-"
			}
			continue
		case kindNumber:
			var x uint64
			switch {
			case v[0] == 0:
				vals[i] = "-"
				continue
			case n == 2:
				x = uint64(v[1])
			case n == 3:
				x = uint64(binary.LittleEndian.Uint16(v[1:]))
			default:
				x = binary.LittleEndian.Uint64(v[1:])
			}
			if id == flow.FieldStart || id == flow.FieldEnd {
				vals[i] = strconv.FormatInt(int64(x), 10)
			} else {
				vals[i] = strconv.FormatUint(x, 10)
			}
			continue
		}
		switch id {
		case flow.FieldAction:
			vals[i] = flow.Action(v[0]).String()
			continue
		case flow.FieldLogStatus:
			vals[i] = flow.LogStatus(v[0]).String()
			continue
		case flow.FieldFlowDirection:
			vals[i] = flow.Direction(v[0]).String()
			continue
		}
		if v[0] == 0 {
			vals[i] = "-"
			continue
		}
		_, w := binary.Uvarint(v[1:])
		s := string(v[1+w:])
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
