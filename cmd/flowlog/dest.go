package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink"
)

// destination is where `flowlog read` sends records.
type destination struct {
	sink pipeline.Sink
	// published lists the objects written, for destinations that write
	// objects (nil for streams).
	published func() []string
}

// openDestination opens --dest by its kind; each kind's opener lives in a
// file of its own (dest_<kind>.go).
func openDestination(o *readOptions, cfg pipeline.ReadConfig) (destination, error) {
	kind, location, err := sink.ParseDestination(o.dest)
	if err != nil {
		return destination{}, usageError{fmt.Errorf("--dest: %w", err)}
	}
	switch kind {
	case sink.DestinationFile:
		return openDirDestination(o, cfg, location)
	case sink.DestinationS3:
		return openS3Destination(context.Background(), o, cfg, location)
	case sink.DestinationKafka:
		return openKafkaDestination(cfg, location)
	case sink.DestinationCloudWatch:
		return openCloudWatchDestination(context.Background(), cfg, location)
	case sink.DestinationFirehose:
		return openFirehoseDestination(context.Background(), cfg, location)
	}
	return destination{}, usageError{fmt.Errorf("--dest %s: flowlog read does not write to %s destinations yet", o.dest, kind)}
}

// layout is the S3 object layout of the flow log `flowlog read` writes.
func (o *readOptions) layout(cfg pipeline.ReadConfig) sink.Layout {
	id := o.flowLogID
	if id == "" {
		id = inventory.DeriveID("fl", nil, cfg.Format.String(), strconv.FormatInt(o.interval, 10), string(cfg.TrafficType), cfg.Inventory.AccountID())
	}
	return sink.Layout{AccountID: cfg.Inventory.AccountID(), Region: cfg.Inventory.Region(), FlowLogID: id, Hive: o.hive, PerHour: o.perHour, Parquet: o.objects.parquet()}
}

func openDirDestination(o *readOptions, cfg pipeline.ReadConfig, root string) (destination, error) {
	dir, err := sink.NewDir(sink.DirConfig{
		Root:               root,
		Layout:             o.layout(cfg),
		Format:             cfg.Format,
		MaxObjectBytes:     o.maxObjectBytes,
		ParquetCompression: o.objects.codec(),
	})
	if err != nil {
		return destination{}, err
	}
	return destination{sink: dir, published: dir.Published}, nil
}

// defaultObjectsWarning is how many objects `flowlog read` writes to a
// directory or bucket before it warns (the hidden --objects-warning
// flag; 0 never warns). A day of capture time is 288 objects at most, so
// 10,000 is over a month: a capture that long is most often a merge of
// captures years apart, whose NODATA records fill every window between.
const defaultObjectsWarning = 10_000

// objectWatch passes the records of `flowlog read` on to an object
// destination (a directory or a bucket), unchanged, and warns once on
// errw when they fall into more than limit 5-minute periods: each period
// with a record is an object, and NODATA records fill every aggregation
// window between a capture's first and last packet, so a capture whose
// timestamps span years silently turns into millions of objects.
type objectWatch struct {
	pipeline.Sink
	errw     io.Writer
	limit    int
	interval int64

	periods    int   // distinct periods seen: the objects written, at least
	lastPeriod int64 // start of the latest period seen
	// first and last are the Start and End of the earliest and latest
	// OK record: the times of the first and last recorded packet (0: none
	// yet); NODATA records span whole windows.
	first, last int64
	warned      bool
}

func newObjectWatch(inner pipeline.Sink, errw io.Writer, limit int, interval int64) *objectWatch {
	return &objectWatch{Sink: inner, errw: errw, limit: limit, interval: interval}
}

// Write counts the periods and packet times of recs, warns the first
// time the periods exceed the limit, then passes recs on.
func (w *objectWatch) Write(recs []flow.Record) error {
	for i := range recs {
		r := &recs[i]
		// Records come window by window in time order; a late packet's
		// extra record for an earlier window goes to a period already
		// counted.
		if p := sink.PeriodOf(r.End); w.periods == 0 || p > w.lastPeriod {
			w.periods++
			w.lastPeriod = p
		}
		if r.LogStatus == flow.LogStatusOK {
			if w.first == 0 || r.Start < w.first {
				w.first = r.Start
			}
			w.last = max(w.last, r.End)
		}
	}
	if !w.warned && w.limit > 0 && w.periods > w.limit {
		w.warned = true
		fmt.Fprintf(w.errw, "flowlog: warning: this capture makes more than %d objects: --dest writes one object per 5-minute period of capture time that has a record, "+
			"and NODATA records fill every %d-second window between the first packet (%s) and the last; the records have reached %s so far. "+
			"Interrupt (Ctrl-C) to stop at the next window: the objects then hold every record before it\n",
			w.limit, w.interval, unixUTC(w.first), unixUTC(w.lastPeriod+sink.PeriodSeconds))
	}
	return w.Sink.Write(recs)
}

// finish names, after a read that warned, the time span that made its
// objects.
func (w *objectWatch) finish(objects int) {
	if !w.warned {
		return
	}
	fmt.Fprintf(w.errw, "flowlog: warning: %d objects for packets from %s to %s (%s): one per 5-minute period with a record, NODATA records included\n",
		objects, unixUTC(w.first), unixUTC(w.last), span(time.Duration(w.last-w.first)*time.Second))
}

// unixUTC formats Unix seconds as RFC 3339 UTC; 0 (no packet recorded) is
// "-".
func unixUTC(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}

// span says how long d is in the unit a reader grasps at once.
func span(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d >= 2*365*day:
		return fmt.Sprintf("%.1f years", d.Hours()/24/365.25)
	case d >= 2*day:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.String()
}
