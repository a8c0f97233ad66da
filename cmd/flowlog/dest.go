package main

import (
	"context"
	"fmt"
	"strconv"

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
