package agent

import (
	"context"
	"fmt"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/parquet"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink"
)

// Destination is what a flow log's destination opener returns: the sink,
// and whether its Advance leaves the current 5-minute period's object open
// (an object destination that publishes by period), which the spool must
// know to acknowledge only what is durable.
type Destination struct {
	Sink        pipeline.Sink
	HoldsPeriod bool
}

// Opener opens the destination of one flow log: fl with its id, records
// rendered in format, the account and region of the object layout from
// inv.
type Opener func(ctx context.Context, fl FlowLog, id string, format *flow.Format, inv *inventory.Inventory) (Destination, error)

// DefaultOpeners returns the openers of the destination kinds the agent
// writes to by itself: local directories. cmd/flowlog adds the others.
func DefaultOpeners() map[sink.DestinationKind]Opener {
	return map[sink.DestinationKind]Opener{sink.DestinationFile: OpenDir}
}

// Layout is the S3 object layout of a flow log.
func Layout(fl FlowLog, id string, inv *inventory.Inventory) sink.Layout {
	return sink.Layout{AccountID: inv.AccountID(), Region: inv.Region(), FlowLogID: id, Hive: fl.HivePartitions,
		PerHour: fl.PerHourPartition, Parquet: fl.FileFormat == FileFormatParquet}
}

// ParquetCodec is the compression of a flow log's Parquet objects.
func ParquetCodec(fl FlowLog) parquet.Codec {
	c, err := parquet.ParseCodec(fl.ParquetCompression)
	if err != nil { // validated; "" for text objects
		return parquet.Gzip
	}
	return c
}

// OpenDir opens a local directory destination. Its objects are published
// as each window closes (not only when their 5-minute period is complete),
// so records are there within seconds of their window's end (spec §4).
func OpenDir(_ context.Context, fl FlowLog, id string, format *flow.Format, inv *inventory.Inventory) (Destination, error) {
	d, err := sink.NewDir(sink.DirConfig{
		Root:               fl.Destination,
		Layout:             Layout(fl, id, inv),
		Format:             format,
		MaxObjectBytes:     fl.MaxObjectBytes,
		ParquetCompression: ParquetCodec(fl),
		PublishOnAdvance:   true,
	})
	if err != nil {
		return Destination{}, fmt.Errorf("destination %s: %w", fl.Destination, err)
	}
	return Destination{Sink: d}, nil
}
