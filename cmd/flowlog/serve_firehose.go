package main

import (
	"context"

	"github.com/flowlog/flowlog/internal/api/firehose"
)

// addFirehoseParts adds the Kinesis Data Firehose API and its deliverer
// in the background. The deliverer stops (a closer) before the store
// closes; what it has not delivered stays in the store for the next start.
func addFirehoseParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	opts := firehose.Options{
		AccountID:  env.cfg.AccountID,
		Region:     env.cfg.Region,
		BucketsDir: env.cfg.FirehoseBucketsDir(),
		Logger:     env.log.With("service", "firehose"),
	}
	if u := env.cfg.Firehose.S3EndpointURL; u != "" {
		b, err := firehose.NewS3Buckets(ctx, u, env.cfg.Firehose.S3Region, nil)
		if err != nil {
			return err
		}
		opts.Buckets = b
	}
	svc, err := firehose.New(ctx, env.db, opts)
	if err != nil {
		return err
	}
	parts.services = append(parts.services, svc)
	parts.background = append(parts.background, svc.Start)
	parts.closers = append(parts.closers, svc.Stop)
	return nil
}
