package main

import (
	"context"

	"github.com/flowlog/flowlog/internal/api/logs"
)

// addLogsParts adds the CloudWatch Logs API, and its retention sweeper
// in the background.
func addLogsParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	svc, err := logs.New(ctx, env.db, logs.Options{AccountID: env.cfg.AccountID, Region: env.cfg.Region, Logger: env.log.With("service", "logs")})
	if err != nil {
		return err
	}
	parts.logs = svc
	parts.services = append(parts.services, svc)
	parts.background = append(parts.background, svc.Start)
	return nil
}
