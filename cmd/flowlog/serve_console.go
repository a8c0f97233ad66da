package main

import (
	"cmp"
	"context"
	"os"

	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/flowlog/flowlog/internal/api/firehose"
	"github.com/flowlog/flowlog/internal/console"
)

// addConsoleParts adds the web console at /: it logs people in with the
// same credentials as the APIs and acts as them under the same
// authorizer, on the flow-log, logs and Firehose services built before it.
func addConsoleParts(_ context.Context, env serveEnv, parts *serveParts) error {
	if parts.flowLogs == nil {
		env.log.Warn("no flow-log service: the web console is off")
		return nil
	}
	opts := console.Options{
		Credentials: parts.credentials,
		Authorizer:  parts.authorizer,
		Audit:       parts.audit,
		FlowLogs:    parts.flowLogs,
		AccountID:   env.cfg.AccountID,
		Region:      env.cfg.Region,
		Logger:      env.log.With("part", "console"),
	}
	if parts.logs != nil {
		opts.Logs = parts.logs
	}
	// Records of kinesis-data-firehose flow logs are read from the
	// objects the server's own Firehose API delivered (its buckets
	// directory or S3), through that service.
	for _, svc := range parts.services {
		if fh, ok := svc.(*firehose.Service); ok {
			opts.Firehose = fh
		}
	}
	// Records of s3 flow logs are read with the usual AWS configuration
	// (environment, shared files); an S3-compatible server is named by
	// the SDK's own variable, and then addressed path-style.
	if ep := cmp.Or(os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL")); ep != "" {
		opts.S3 = &analyze.S3Config{EndpointURL: ep}
	}
	h, err := console.New(opts)
	if err != nil {
		return err
	}
	parts.console = h
	return nil
}
