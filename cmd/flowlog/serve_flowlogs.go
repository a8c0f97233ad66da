package main

import (
	"context"

	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// addFlowLogParts adds the EC2 flow-log API and the agent protocol.
func addFlowLogParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	flowLogs, err := ec2.New(ctx, env.db, ec2.Options{
		AccountID:   env.cfg.AccountID,
		Region:      env.cfg.Region,
		MaxFlowLogs: env.cfg.MaxFlowLogs,
		Logger:      env.log.With("service", "ec2"),
	})
	if err != nil {
		return err
	}
	parts.flowLogs = flowLogs
	parts.services = append(parts.services, flowLogs,
		control.NewService(flowLogs, control.ServiceOptions{Logger: env.log.With("service", "agents")}))
	return nil
}
