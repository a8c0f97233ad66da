package main

import (
	"context"
	"errors"

	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/api/iam"
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
	svc := d.parts.iam
	if svc == nil {
		return control.DeliveryCredentials{AgentKeys: true}, nil
	}
	c, err := svc.AssumeRoleForDelivery(ctx, roleARN, iam.DeliveryService)
	var de *iam.DeliveryError
	if errors.As(err, &de) {
		return control.DeliveryCredentials{}, &control.AccessError{RoleARN: roleARN, Message: de.Error()}
	}
	if err != nil {
		return control.DeliveryCredentials{}, err
	}
	return control.DeliveryCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration}, nil
}
