package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/flowlog/flowlog/internal/sink"
)

// reportTimeout bounds one report over a destination.
const reportTimeout = 2 * time.Minute

// recordSet is what the pages read of one flow log: its destination's
// objects (or events) in a time range, with a filter.
type recordSet struct {
	fl FlowLog
	// inputs returns fresh inputs: each report reads them again.
	inputs func() []analyze.Input
	rc     analyze.ReadConfig
	notes  []string
	// open are the objects reports opened (delivery streams' objects),
	// closed when the request ends.
	open openObjects
	// kafka, for a kafka flow log, is its topic as listed: the records
	// page reads it from where the previous page stopped (kafkaRecords).
	kafka *kafkaPages
}

// withRecords runs report with the records of the flow log the request
// names, opened as the session's principal; the report has reportTimeout.
func (h *Handler) withRecords(report func(ctx context.Context, w http.ResponseWriter, r *http.Request, rs *recordSet)) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
		defer cancel()
		rs, err := h.openRecords(ctx, r, s)
		if err != nil {
			h.writeAPIError(w, err)
			return
		}
		defer rs.close()
		report(ctx, w, r, rs)
	}
}

// openRecords finds the request's flow log, checks that the principal
// may read its destination, and lists what there is to read in the
// query's time range (since, until) with its filter (where).
func (h *Handler) openRecords(ctx context.Context, r *http.Request, s *session) (*recordSet, error) {
	id := r.PathValue("id")
	call := h.newCall(r, s, "ec2", "DescribeFlowLogs")
	flARN := h.arn("ec2", "vpc-flow-log/"+id)
	if err := h.authorize(ctx, call, "ec2:DescribeFlowLogs", flARN); err != nil {
		return nil, err
	}
	all, err := h.allFlowLogs(ctx)
	if err != nil {
		return nil, err
	}
	rs := &recordSet{}
	found := false
	for _, fl := range all {
		if fl.ID == id {
			rs.fl, found = fl, true
		}
	}
	if !found {
		return nil, apiError(http.StatusNotFound, "InvalidFlowLogId.NotFound", "Flow log %s does not exist", id)
	}
	q := r.URL.Query()
	now := h.opts.Now()
	for _, b := range []struct {
		key string
		t   *time.Time
	}{{"since", &rs.rc.Range.Since}, {"until", &rs.rc.Range.Until}} {
		if v := strings.TrimSpace(q.Get(b.key)); v != "" {
			t, err := analyze.ParseTime(v, now)
			if err != nil {
				return nil, apiError(http.StatusBadRequest, "InvalidParameterValue", "%s: %v", b.key, err)
			}
			*b.t = t
		}
	}
	if !rs.rc.Range.Since.IsZero() && !rs.rc.Range.Until.IsZero() && rs.rc.Range.Until.Before(rs.rc.Range.Since) {
		return nil, apiError(http.StatusBadRequest, "InvalidParameterValue", "until (%s) is before since (%s)", rs.rc.Range.Until.UTC().Format(time.RFC3339), rs.rc.Range.Since.UTC().Format(time.RFC3339))
	}
	if where := strings.TrimSpace(q.Get("where")); where != "" {
		e, err := analyze.ParseExpr(where)
		if err != nil {
			return nil, apiError(http.StatusBadRequest, "InvalidFilter", "where: %v", err)
		}
		rs.rc.Where = e
	}
	rs.rc.Workers = 2
	return rs, h.listDestination(ctx, r, s, rs)
}

// listDestination sets rs.inputs to the flow log's objects or events.
func (h *Handler) listDestination(ctx context.Context, r *http.Request, s *session, rs *recordSet) error {
	fl := rs.fl
	switch fl.DestinationType {
	case "file":
		kind, root, err := sink.ParseDestination(fl.Destination)
		if err != nil || kind != sink.DestinationFile {
			return apiError(http.StatusBadRequest, "InvalidParameterValue", "flow log %s: destination %q is not a local path", fl.ID, fl.Destination)
		}
		if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
			rs.inputs = func() []analyze.Input { return nil }
			rs.notes = append(rs.notes, "nothing was delivered to "+root+" yet")
			return nil
		}
		return h.listObjects(ctx, rs, &analyze.Lister{Range: rs.rc.Range}, root)
	case "s3":
		kind, loc, err := sink.ParseDestination(fl.Destination)
		if err != nil || kind != sink.DestinationS3 {
			return apiError(http.StatusBadRequest, "InvalidParameterValue", "flow log %s: destination %q is not an S3 location", fl.ID, fl.Destination)
		}
		bucket, _, _ := strings.Cut(loc, "/")
		call := h.newCall(r, s, "s3", "GetObject")
		if err := h.authorize(ctx, call, "s3:ListBucket", "arn:aws:s3:::"+bucket); err != nil {
			return err
		}
		if err := h.authorize(ctx, call, "s3:GetObject", "arn:aws:s3:::"+loc+"/*"); err != nil {
			return err
		}
		s3, err := h.s3Reader(ctx)
		if err != nil {
			return apiError(http.StatusBadGateway, "S3Unavailable", "read s3://%s: %v", loc, err)
		}
		return h.listObjects(ctx, rs, &analyze.Lister{Range: rs.rc.Range, S3: s3}, "s3://"+loc+"/")
	case "cloud-watch-logs":
		group := fl.LogGroupName
		if group == "" {
			group = logGroupOfARN(fl.Destination)
		}
		if h.opts.Logs == nil {
			return apiError(http.StatusNotImplemented, "UnsupportedOperation", "this server has no CloudWatch Logs service to read log group %s from", group)
		}
		call := h.newCall(r, s, "logs", "FilterLogEvents")
		if err := h.authorize(ctx, call, "logs:FilterLogEvents", h.arn("logs", "log-group:"+group+":*")); err != nil {
			return err
		}
		msgs, truncated, err := h.opts.Logs.Messages(ctx, group, rs.rc.Range.Since, rs.rc.Range.Until, h.opts.MaxEvents)
		if err != nil {
			return err
		}
		if truncated {
			rs.notes = append(rs.notes, fmt.Sprintf("only the first %d events of log group %s are read: narrow the time range", h.opts.MaxEvents, group))
		}
		rs.notes = append(rs.notes, "log group "+group+" may also hold the records of other flow logs that deliver to it (AWS shares one stream per interface)")
		f, err := flow.ParseFormat(formatOrDefault(fl.LogFormat))
		if err != nil {
			return err
		}
		rs.rc.Format = f
		var buf bytes.Buffer
		for _, m := range msgs {
			buf.WriteString(strings.TrimRight(m, "\n"))
			buf.WriteByte('\n')
		}
		data := buf.Bytes()
		rs.inputs = func() []analyze.Input {
			return []analyze.Input{analyze.ReaderInput("log group "+group, bytes.NewReader(data))}
		}
		return nil
	case "kinesis-data-firehose":
		return h.listFirehose(ctx, r, s, rs)
	case "kafka":
		return h.listKafka(ctx, r, rs)
	}
	return apiError(http.StatusBadRequest, "UnsupportedOperation", "records of a %s destination cannot be read back here; read them where they are delivered", fl.DestinationType)
}

// listObjects lists the flow log's own objects under root: a destination
// may hold the objects of several flow logs, told apart by the flow log
// id in their names.
func (h *Handler) listObjects(ctx context.Context, rs *recordSet, l *analyze.Lister, root string) error {
	var ins []analyze.Input
	mark := "_" + rs.fl.ID + "_"
	err := l.List(ctx, root, func(in analyze.Input) error {
		if strings.Contains(path.Base(in.Name), mark) {
			ins = append(ins, in)
		}
		return nil
	})
	if err != nil {
		return apiError(http.StatusBadGateway, "DestinationUnreadable", "list %s: %v", root, err)
	}
	rs.inputs = func() []analyze.Input { return ins }
	return nil
}

func (h *Handler) s3Reader(ctx context.Context) (*analyze.S3, error) {
	h.s3once.Do(func() {
		cfg := analyze.S3Config{}
		if h.opts.S3 != nil {
			cfg = *h.opts.S3
		}
		h.s3, h.s3err = analyze.NewS3(context.WithoutCancel(ctx), cfg)
	})
	return h.s3, h.s3err
}

// logGroupOfARN returns the group of arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*].
func logGroupOfARN(arn string) string {
	_, rest, ok := strings.Cut(arn, ":log-group:")
	if !ok {
		return arn
	}
	return strings.TrimSuffix(rest, ":*")
}

func formatOrDefault(f string) string {
	if strings.TrimSpace(f) == "" {
		return flow.DefaultFormatText
	}
	return f
}

// statsJSON is what a report read, for the page's notes.
type statsJSON struct {
	Inputs     int      `json:"inputs"`
	Records    int64    `json:"records"`
	Matched    int64    `json:"matched"`
	Skipped    int64    `json:"skippedLines"`
	LineErrors []string `json:"lineErrors,omitempty"`
	Failed     []string `json:"failed,omitempty"`
	SkipData   int64    `json:"skipdataRecords"`
	Notes      []string `json:"notes"`
}

func (rs *recordSet) stats(st analyze.Stats) statsJSON {
	notes := append(append([]string{}, rs.notes...), st.Notes...)
	return statsJSON{Inputs: st.Inputs, Records: st.Records, Matched: st.Matched, Skipped: st.SkippedLines,
		LineErrors: st.LineErrors, Failed: st.Failed, SkipData: st.SkipData, Notes: notes}
}

// errEnough stops a report once a page is full.
var errEnough = errors.New("page full")

// pageWriter keeps the JSON lines [from, from+n) of a report's output
// and stops it (errEnough) at the line after.
type pageWriter struct {
	from, n int
	seen    int
	partial []byte
	lines   [][]byte
	more    bool
}

func (p *pageWriter) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			break
		}
		line := b[:i]
		if len(p.partial) > 0 {
			line = append(p.partial, line...)
			p.partial = nil
		}
		b = b[i+1:]
		if p.seen >= p.from+p.n {
			p.more = true
			return total, errEnough
		}
		if p.seen >= p.from {
			p.lines = append(p.lines, bytes.Clone(line))
		}
		p.seen++
	}
	return total, nil
}

// decodeRow reads a JSON object keeping its keys' order.
func decodeRow(line []byte) (keys []string, vals []any, err error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, fmt.Errorf("decode record: want an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals, nil
}

func intParam(q string, def, lo, hi int) int {
	n, err := strconv.Atoi(q)
	if err != nil {
		return def
	}
	return min(max(n, lo), hi)
}

// records serves a page of the records that match: columns in the
// order of the format, values typed as `flowlog analyze --output json`
// writes them.
func (h *Handler) records(ctx context.Context, w http.ResponseWriter, r *http.Request, rs *recordSet) {
	if rs.kafka != nil {
		h.kafkaRecords(ctx, w, r, rs)
		return
	}
	q := r.URL.Query()
	pw := &pageWriter{from: intParam(q.Get("offset"), 0, 0, 1<<30), n: intParam(q.Get("limit"), 100, 1, 1000)}
	st, err := analyze.Filter(ctx, rs.inputs(), rs.rc, analyze.Output{W: pw, Mode: analyze.ModeJSON})
	if err != nil && !errors.Is(err, errEnough) {
		h.writeAPIError(w, err)
		return
	}
	cols, rows, err := pageRows(rs, pw.lines)
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	out := map[string]any{"flowLog": rs.fl, "columns": cols, "rows": rows, "offset": pw.from, "more": pw.more}
	if !pw.more {
		out["total"] = pw.seen
		out["stats"] = rs.stats(st)
	} else {
		out["stats"] = statsJSON{Notes: rs.notes}
	}
	writeJSON(w, http.StatusOK, out)
}

// pageRows lays out the JSON lines of a page of records: columns in the
// order of the format, a row of values per line.
func pageRows(rs *recordSet, lines [][]byte) (cols []string, rows [][]any, err error) {
	rows = [][]any{}
	for _, line := range lines {
		keys, vals, err := decodeRow(line)
		if err != nil {
			return nil, nil, err
		}
		if cols == nil {
			cols = keys
		}
		// Objects of another format (rare: formats are immutable) are
		// laid out by the first one's columns.
		if !equalStrings(keys, cols) {
			m := map[string]any{}
			for i, k := range keys {
				m[k] = vals[i]
			}
			vals = make([]any, len(cols))
			for i, k := range cols {
				vals[i] = m[k]
			}
		}
		rows = append(rows, vals)
	}
	if cols == nil {
		f, err := flow.ParseFormat(formatOrDefault(rs.fl.LogFormat))
		if err == nil {
			for _, id := range f.Fields() {
				cols = append(cols, id.String())
			}
		}
	}
	return cols, rows, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// recordsCSV downloads every matching record as CSV, as `flowlog analyze
// filter --output csv` writes it.
func (h *Handler) recordsCSV(ctx context.Context, w http.ResponseWriter, r *http.Request, rs *recordSet) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rs.fl.ID+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	if _, err := analyze.Filter(ctx, rs.inputs(), rs.rc, analyze.Output{W: w, Mode: analyze.ModeCSV}); err != nil {
		// The header is out: all that can be done is to end the body
		// short and say why in the log.
		h.log.Warn("console csv download cut short", "flow-log", rs.fl.ID, "err", err)
	}
}

// runJSON runs one analyze report in JSON mode and decodes its lines.
func runJSON[T any](report func(out analyze.Output) (analyze.Stats, error)) ([]T, analyze.Stats, error) {
	var buf bytes.Buffer
	st, err := report(analyze.Output{W: &buf, Mode: analyze.ModeJSON})
	if err != nil {
		return nil, st, err
	}
	var out []T
	dec := json.NewDecoder(&buf)
	for {
		var v T
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return nil, st, fmt.Errorf("decode report: %w", err)
		}
		out = append(out, v)
	}
	return out, st, nil
}

// summaryJSON is the part of Summarize's JSON the charts use.
type summaryJSON struct {
	Records        int64        `json:"records"`
	OKRecords      int64        `json:"ok_records"`
	NoDataRecords  int64        `json:"nodata_records"`
	SkipDataRecord int64        `json:"skipdata_records"`
	First          string       `json:"first"`
	Last           string       `json:"last"`
	Accepted       int64        `json:"accepted_records"`
	Rejected       int64        `json:"rejected_records"`
	Packets        uint64       `json:"packets"`
	Bytes          uint64       `json:"bytes"`
	SkipWindows    []windowJSON `json:"skipdata_windows"`
	NoDataWindows  []windowJSON `json:"nodata_windows"`
	Interfaces     []struct {
		Interface string `json:"interface"`
		Records   int64  `json:"records"`
	} `json:"interfaces"`
}

type windowJSON struct {
	Interface string `json:"interface"`
	Start     string `json:"start"`
	End       string `json:"end"`
	Windows   int    `json:"windows"`
}

// groupJSON is a line of Top's or Rejected's JSON.
type groupJSON map[string]any

// point is one time bucket of the traffic charts.
type point struct {
	T              string `json:"t"`
	AcceptBytes    uint64 `json:"acceptBytes"`
	RejectBytes    uint64 `json:"rejectBytes"`
	AcceptPackets  uint64 `json:"acceptPackets"`
	RejectPackets  uint64 `json:"rejectPackets"`
	UnknownBytes   uint64 `json:"otherBytes"`
	UnknownPackets uint64 `json:"otherPackets"`
}

// bucketFor picks a bucket width that gives at most about 150 bars over
// span.
func bucketFor(span time.Duration) time.Duration {
	for _, b := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if span/b <= 150 {
			return b
		}
	}
	return 7 * 24 * time.Hour
}

// charts serves everything the charts page draws, each computed by
// analyze: Summarize (span, NODATA and SKIPDATA windows), Top by action
// in time buckets (traffic over time), Top by source and destination
// (top talkers) and Rejected by destination port (top rejected ports).
func (h *Handler) charts(ctx context.Context, w http.ResponseWriter, r *http.Request, rs *recordSet) {
	sums, st, err := runJSON[summaryJSON](func(out analyze.Output) (analyze.Stats, error) {
		return analyze.Summarize(ctx, rs.inputs(), rs.rc, out)
	})
	if err != nil || len(sums) != 1 {
		h.writeAPIError(w, errors.Join(err, errors.New("summary: no answer")))
		return
	}
	sum := sums[0]
	out := map[string]any{"flowLog": rs.fl, "summary": sum, "stats": rs.stats(st)}
	first, _ := time.Parse(time.RFC3339, sum.First)
	last, _ := time.Parse(time.RFC3339, sum.Last)
	if !rs.rc.Range.Since.IsZero() && rs.rc.Range.Since.After(first) {
		first = rs.rc.Range.Since
	}
	if !rs.rc.Range.Until.IsZero() && rs.rc.Range.Until.Before(last) {
		last = rs.rc.Range.Until
	}
	if sum.First == "" || last.Before(first) {
		out["series"], out["topTalkers"], out["rejectedPorts"] = []point{}, []groupJSON{}, []groupJSON{}
		writeJSON(w, http.StatusOK, out)
		return
	}
	bucket := bucketFor(last.Sub(first))
	opt := analyze.TopOptions{By: []flow.FieldID{flow.FieldAction}, Bucket: bucket, Metric: analyze.MetricBytes}
	groups, _, err := runJSON[groupJSON](func(o analyze.Output) (analyze.Stats, error) {
		return analyze.Top(ctx, rs.inputs(), rs.rc, opt, o)
	})
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	out["series"] = series(groups, first, last, bucket)
	out["bucketSeconds"] = int64(bucket / time.Second)
	out["from"] = bucketStart(first, bucket).Format(time.RFC3339)
	out["to"] = bucketStart(last, bucket).Add(bucket).Format(time.RFC3339)

	talkers, _, err := runJSON[groupJSON](func(o analyze.Output) (analyze.Stats, error) {
		return analyze.Top(ctx, rs.inputs(), rs.rc, analyze.TopOptions{By: []flow.FieldID{flow.FieldSrcAddr, flow.FieldDstAddr}, Metric: analyze.MetricBytes, Limit: 10}, o)
	})
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	ports, _, err := runJSON[groupJSON](func(o analyze.Output) (analyze.Stats, error) {
		return analyze.Rejected(ctx, rs.inputs(), rs.rc, analyze.TopOptions{By: []flow.FieldID{flow.FieldDstPort, flow.FieldProtocol}, Metric: analyze.MetricPackets, Limit: 10}, o)
	})
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	out["topTalkers"], out["rejectedPorts"] = nonNil(talkers), nonNil(ports)
	writeJSON(w, http.StatusOK, out)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// bucketStart is the start of t's bucket, aligned to the Unix epoch as
// analyze.Top aligns them (time.Truncate aligns to year 1).
func bucketStart(t time.Time, bucket time.Duration) time.Time {
	b := int64(bucket / time.Second)
	u := t.Unix()
	return time.Unix(u-((u%b)+b)%b, 0).UTC()
}

// series lays Top's (bucket, action) groups out on every bucket from
// first to last, empty buckets included, so the time axis is even.
func series(groups []groupJSON, first, last time.Time, bucket time.Duration) []point {
	idx := map[int64]int{}
	var pts []point
	for t := bucketStart(first, bucket); !t.After(last); t = t.Add(bucket) {
		idx[t.Unix()] = len(pts)
		pts = append(pts, point{T: t.UTC().Format(time.RFC3339)})
	}
	num := func(v any) uint64 {
		f, _ := v.(float64)
		return uint64(f)
	}
	for _, g := range groups {
		bs, _ := g["bucket"].(string)
		t, err := time.Parse(time.RFC3339, bs)
		if err != nil {
			continue
		}
		i, ok := idx[t.Unix()]
		if !ok {
			continue
		}
		p := &pts[i]
		switch g["action"] {
		case "ACCEPT":
			p.AcceptBytes += num(g["bytes"])
			p.AcceptPackets += num(g["packets"])
		case "REJECT":
			p.RejectBytes += num(g["bytes"])
			p.RejectPackets += num(g["packets"])
		default:
			p.UnknownBytes += num(g["bytes"])
			p.UnknownPackets += num(g["packets"])
		}
	}
	return pts
}

// connectionJSON is a line of Connections' JSON.
type connectionJSON map[string]any

// connections serves the conversations `flowlog analyze connections`
// reports (TCP unless proto says otherwise), at most limit of them.
func (h *Handler) connections(ctx context.Context, w http.ResponseWriter, r *http.Request, rs *recordSet) {
	limit := intParam(r.URL.Query().Get("limit"), 200, 1, 5000)
	convs, st, err := runJSON[connectionJSON](func(o analyze.Output) (analyze.Stats, error) {
		return analyze.Connections(ctx, rs.inputs(), rs.rc, analyze.ConnOptions{}, o)
	})
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	total := len(convs)
	if len(convs) > limit {
		convs = convs[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"flowLog": rs.fl, "connections": nonNil(convs), "total": total, "stats": rs.stats(st)})
}

// conversation serves one TCP conversation: its verdict from
// Connections and the records of both directions from Filter.
func (h *Handler) conversation(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
	defer cancel()
	q := r.URL.Query()
	client, err1 := netip.ParseAddrPort(q.Get("client"))
	server, err2 := netip.ParseAddrPort(q.Get("server"))
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "client and server must be address:port: "+err.Error())
		return
	}
	iface := q.Get("interface")
	rs, err := h.openRecords(ctx, r, s)
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	defer rs.close()
	opt := analyze.ConnOptions{
		Hosts: []netip.Prefix{netip.PrefixFrom(client.Addr(), client.Addr().BitLen()), netip.PrefixFrom(server.Addr(), server.Addr().BitLen())},
		Ports: []uint16{client.Port(), server.Port()},
	}
	convs, st, err := runJSON[connectionJSON](func(o analyze.Output) (analyze.Stats, error) {
		return analyze.Connections(ctx, rs.inputs(), rs.rc, opt, o)
	})
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	var conv connectionJSON
	for _, c := range convs {
		if c["client"] == client.String() && c["server"] == server.String() && (iface == "" || c["interface"] == iface) {
			conv = c
			break
		}
	}
	if conv == nil {
		writeError(w, http.StatusNotFound, "ConversationNotFound", fmt.Sprintf("no TCP conversation from %s to %s in these records", client, server))
		return
	}
	dir := func(a, b netip.AddrPort) string {
		return fmt.Sprintf("(srcaddr = %s and srcport = %d and dstaddr = %s and dstport = %d)", a.Addr(), a.Port(), b.Addr(), b.Port())
	}
	expr := "protocol = tcp and (" + dir(client, server) + " or " + dir(server, client) + ")"
	if iface != "" && iface != "-" {
		expr += " and interface-id = " + strconv.Quote(iface)
	}
	if rs.rc.Where != nil {
		expr = "(" + rs.rc.Where.String() + ") and " + expr
	}
	where, err := analyze.ParseExpr(expr)
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	rc := rs.rc
	rc.Where = where
	recs, _, err := runJSON[map[string]any](func(o analyze.Output) (analyze.Stats, error) {
		return analyze.Filter(ctx, rs.inputs(), rc, o)
	})
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flowLog": rs.fl, "conversation": conv, "records": nonNil(recs), "stats": rs.stats(st)})
}
