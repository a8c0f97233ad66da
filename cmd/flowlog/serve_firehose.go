package main

import (
	"context"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/firehose"
	"github.com/flowlog/flowlog/internal/api/iam"
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
		Roles:      firehoseRoles{parts},
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

// firehoseRoles lets the deliverer assume streams' roles with the IAM
// service. That part is built after this one (addIAMParts), so it is
// looked up at each call, once the server serves; without it streams
// write without a role (firehose.ErrNoIAM).
type firehoseRoles struct{ parts *serveParts }

// AssumeRoleForDelivery implements firehose.Roles.
func (r firehoseRoles) AssumeRoleForDelivery(ctx context.Context, roleARN, service string) (iam.Credentials, error) {
	if r.parts.iam == nil {
		return iam.Credentials{}, firehose.ErrNoIAM
	}
	return r.parts.iam.AssumeRoleForDelivery(ctx, roleARN, service)
}

// Lookup implements firehose.Roles.
func (r firehoseRoles) Lookup(ctx context.Context, id, token string) (string, api.Principal, error) {
	if r.parts.iam == nil {
		return "", api.Principal{}, firehose.ErrNoIAM
	}
	return r.parts.iam.Lookup(ctx, id, token)
}

// Authorize implements firehose.Roles.
func (r firehoseRoles) Authorize(ctx context.Context, req api.Request) error {
	if r.parts.iam == nil {
		return firehose.ErrNoIAM
	}
	return r.parts.iam.Authorize(ctx, req)
}
