package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/firehose"
	fhsink "github.com/flowlog/flowlog/internal/sink/firehose"
)

// DeliveryStreams are the delivery streams of this server's Firehose
// API, for flow logs that deliver there; *firehose.Service implements it.
type DeliveryStreams interface {
	// Destination says where a stream writes its objects.
	Destination(ctx context.Context, name string) (firehose.Destination, error)
	// Objects reads them; nil when they cannot be read back.
	Objects() firehose.ObjectReader
}

// firehoseSlack bounds how much later than its key's time an object
// holds records: the key names the arrival of the object's oldest record
// at the server; the object also holds what arrived over the stream's
// buffering interval (at most 900 s) and while a failing delivery was
// retried, and an agent's clock may be ahead of the server's by the 15
// minutes SigV4 allows. Objects named more than this before --since are
// not read. Nothing bounds the other side: a replayed capture or an
// agent's backlog delivers old records late, so objects named after
// --until are read too.
const firehoseSlack = 2 * time.Hour

// listFirehose sets rs.inputs to the objects the flow log's delivery
// stream wrote, when it is a stream of this server's Firehose API.
func (h *Handler) listFirehose(ctx context.Context, r *http.Request, s *session, rs *recordSet) error {
	fl := rs.fl
	t, err := fhsink.ParseLocation(fl.Destination)
	if err != nil {
		return apiError(http.StatusBadRequest, "InvalidParameterValue", "flow log %s: %v", fl.ID, err)
	}
	if t.Account != "" && t.Account != h.opts.AccountID || t.Region != "" && t.Region != h.opts.Region {
		return apiError(http.StatusBadRequest, "UnsupportedOperation",
			"flow log %s delivers to delivery stream %s of account %s in region %s: this console reads only the delivery streams of this server's Firehose API (account %s, region %s); read that stream's records where it delivers them (flowlog analyze s3://BUCKET/PREFIX)",
			fl.ID, t.Stream, t.Account, t.Region, h.opts.AccountID, h.opts.Region)
	}
	if h.opts.Firehose == nil {
		return apiError(http.StatusNotImplemented, "UnsupportedOperation", "this server has no Firehose API to read delivery stream %s from", t.Stream)
	}
	objs := h.opts.Firehose.Objects()
	if objs == nil {
		return apiError(http.StatusNotImplemented, "UnsupportedOperation", "the objects of delivery stream %s cannot be read back by this server", t.Stream)
	}
	call := h.newCall(r, s, "firehose", "DescribeDeliveryStream")
	if err := h.authorize(ctx, call, "firehose:DescribeDeliveryStream", h.arn("firehose", "deliverystream/"+t.Stream)); err != nil {
		return err
	}
	dest, err := h.opts.Firehose.Destination(ctx, t.Stream)
	if err != nil {
		if e := api.AsError(err); e.Code == "ResourceNotFoundException" {
			return apiError(http.StatusNotFound, "ResourceNotFoundException", "flow log %s delivers to delivery stream %s, which does not exist on this server (deleted?): there is nothing to read", fl.ID, t.Stream)
		}
		return err
	}
	loc := dest.Bucket + "/" + dest.Prefix
	call = h.newCall(r, s, "s3", "GetObject")
	if err := h.authorize(ctx, call, "s3:ListBucket", "arn:aws:s3:::"+dest.Bucket); err != nil {
		return err
	}
	if err := h.authorize(ctx, call, "s3:GetObject", "arn:aws:s3:::"+loc+"*"); err != nil {
		return err
	}
	f, err := flow.ParseFormat(formatOrDefault(fl.LogFormat))
	if err != nil {
		return err
	}
	// Firehose objects hold record lines without a header line.
	rs.rc.Format = f
	var found []firehose.Object
	since := rs.rc.Range.Since
	for _, prefix := range firehosePrefixes(dest.Prefix, since, h.opts.Now()) {
		err := objs.List(ctx, dest.Bucket, prefix, func(o firehose.Object) error {
			at, ok := firehoseKeyTime(o.Key, dest)
			if ok && (since.IsZero() || !at.Add(firehoseSlack).Before(since)) {
				found = append(found, o)
			}
			return nil
		})
		if err != nil {
			return apiError(http.StatusBadGateway, "DestinationUnreadable", "read delivery stream %s: %v", t.Stream, err)
		}
	}
	rs.notes = append(rs.notes,
		"delivery stream "+t.Stream+" may also hold the records of other flow logs that deliver to it: they are read in this flow log's format (lines of another format count as unreadable)",
		fmt.Sprintf("records reach the objects of s3://%s (read here) up to %d s after the stream receives them (its buffering interval)", loc, dest.IntervalInSeconds))
	if len(found) == 0 {
		rs.notes = append(rs.notes, "delivery stream "+t.Stream+" has delivered no object to s3://"+loc+" in this time range yet")
	}
	rs.inputs = func() []analyze.Input {
		ins := make([]analyze.Input, len(found))
		for i, o := range found {
			ins[i] = analyze.ReaderInput(o.Name, &lazyObject{ctx: ctx, objs: objs, o: o, rs: rs})
		}
		return ins
	}
	return nil
}

// firehosePrefixes are the key prefixes to list for objects that may
// hold records since since: the hour folders from since−firehoseSlack to
// now when they are few, the day folders when those are, else the whole
// prefix (whose keys firehoseKeyTime then sorts out).
func firehosePrefixes(prefix string, since, now time.Time) []string {
	if since.IsZero() {
		return []string{prefix}
	}
	from, to := since.Add(-firehoseSlack).UTC().Truncate(time.Hour), now.UTC()
	if to.Before(from) {
		to = from
	}
	var out []string
	switch hours := to.Sub(from) / time.Hour; {
	case hours < 48:
		for t := from; !t.After(to); t = t.Add(time.Hour) {
			out = append(out, prefix+t.Format("2006/01/02/15/"))
		}
	case hours < 92*24:
		for t := from.Truncate(24 * time.Hour); !t.After(to); t = t.AddDate(0, 0, 1) {
			out = append(out, prefix+t.Format("2006/01/02/"))
		}
	default:
		out = []string{prefix}
	}
	return out
}

// firehoseKeyTime reads the time in a key the stream dest wrote
// (firehose.ObjectKey): PREFIX YYYY/MM/DD/HH/ STREAM-1-YYYY-MM-DD-HH-MM-SS-UUID[.gz];
// ok is false for a key of another stream or layout.
func firehoseKeyTime(key string, dest firehose.Destination) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, dest.Prefix)
	if !ok || len(rest) < len("2006/01/02/15/") {
		return time.Time{}, false
	}
	name, ok := strings.CutPrefix(rest[len("2006/01/02/15/"):], dest.Stream+"-1-")
	const layout = "2006-01-02-15-04-05"
	if !ok || len(name) < len(layout)+1+36 || name[len(layout)] != '-' {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, name[:len(layout)])
	if err != nil || rest[:len("2006/01/02/15/")] != t.Format("2006/01/02/15/") {
		return time.Time{}, false
	}
	return t, true
}

// lazyObject opens a delivered object at its first read, so that a
// report holds open only the objects it is reading; the record set
// closes whatever a report left open (a full page stops it early).
type lazyObject struct {
	ctx  context.Context
	objs firehose.ObjectReader
	o    firehose.Object
	rs   *recordSet
	rc   io.ReadCloser
}

func (l *lazyObject) Read(p []byte) (int, error) {
	if l.rc == nil {
		rc, err := l.objs.Open(l.ctx, l.o.Bucket, l.o.Key)
		if err != nil {
			return 0, err
		}
		l.rc = rc
		l.rs.track(rc)
	}
	return l.rc.Read(p)
}

// openObjects are the objects a record set's reports opened.
type openObjects struct {
	mu     sync.Mutex
	cs     []io.Closer
	closed bool
}

// track keeps c to close with the record set; an object opened after
// that (a report's reader still running) is closed at once.
func (rs *recordSet) track(c io.Closer) {
	rs.open.mu.Lock()
	defer rs.open.mu.Unlock()
	if rs.open.closed {
		c.Close()
		return
	}
	rs.open.cs = append(rs.open.cs, c)
}

// close closes what the record set's reports opened.
func (rs *recordSet) close() {
	rs.open.mu.Lock()
	defer rs.open.mu.Unlock()
	for _, c := range rs.open.cs {
		c.Close()
	}
	rs.open.cs, rs.open.closed = nil, true
}
