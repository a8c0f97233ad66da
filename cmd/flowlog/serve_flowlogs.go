package main

import (
	"context"

	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// addFlowLogParts adds the EC2 flow-log API and the agent protocol, and
// the inventory's sweeper in the background (it drops agents not heard
// from within inventory-expiry; stopping writes the agents' last-seen
// times before the store closes).
func addFlowLogParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	flowLogs, err := ec2.New(ctx, env.db, ec2.Options{
		AccountID:       env.cfg.AccountID,
		Region:          env.cfg.Region,
		MaxFlowLogs:     env.cfg.MaxFlowLogs,
		InventoryExpiry: env.cfg.InventoryExpiryDuration(),
		Logger:          env.log.With("service", "ec2"),
	})
	if err != nil {
		return err
	}
	parts.flowLogs = flowLogs
	parts.background = append(parts.background, flowLogs.Start)
	parts.closers = append(parts.closers, flowLogs.Stop)
	parts.services = append(parts.services, flowLogs,
		control.NewService(flowLogs, control.ServiceOptions{
			Logger:        env.log.With("service", "agents"),
			DeliveryRoles: deliveryRoles{parts},
		}))
	return nil
}

// deliveryRoles issues delivery-role sessions with the IAM service. That
// part is built after this one (addIAMParts), so it is looked up at each
// call, once the server serves; without it agents deliver with their own
// keys.
type deliveryRoles struct{ parts *serveParts }

// AssumeDeliveryRole implements control.DeliveryRoles.
func (d deliveryRoles) AssumeDeliveryRole(ctx context.Context, roleARN string) (control.DeliveryCredentials, error) {
	if d.parts.iam == nil {
		return control.DeliveryCredentials{AgentKeys: true}, nil
	}
	return d.parts.iam.AssumeDeliveryRole(ctx, roleARN)
}
