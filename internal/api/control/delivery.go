package control

import (
	"context"
	"errors"
	"net/http"

	"github.com/flowlog/flowlog/internal/api"
)

// DeliveryRoles issues sessions of delivery roles (the IAM service, as
// `flowlog serve` adapts it): temporary credentials of roleARN for the
// flow-log delivery service. A role that may not be used is an
// *AccessError. (An interface so that this package does not depend on
// the IAM service.)
type DeliveryRoles interface {
	AssumeDeliveryRole(ctx context.Context, roleARN string) (DeliveryCredentials, error)
}

// AccessError is a delivery role that may not be used: Message is what
// the flow log's deliverLogsErrorMessage shows ("Access error: …").
type AccessError struct {
	RoleARN string
	Message string
}

func (e *AccessError) Error() string { return e.Message }

// deliveryCredentials answers GetDeliveryCredentials: only for a flow log
// covering the agent; the session of its delivery role, or AgentKeys when
// the server has no DeliveryRoles or the flow log no role. A refused role
// makes the flow log FAILED at once (as the agent's report would) and is
// answered with CodeDeliveryAccessError.
func (s *Service) deliveryCredentials(ctx context.Context, r DeliveryCredentialsRequest) (DeliveryCredentials, error) {
	if r.AgentID == "" || r.FlowLogID == "" {
		return DeliveryCredentials{}, api.Errorf("MissingParameter", "GetDeliveryCredentials: agentId and flowLogId are required")
	}
	set, err := s.fl.FlowLogsFor(ctx, r.AgentID)
	if err != nil {
		return DeliveryCredentials{}, err
	}
	var fl *FlowLog
	for i := range set.FlowLogs {
		if set.FlowLogs[i].FlowLogID == r.FlowLogID {
			fl = &set.FlowLogs[i]
		}
	}
	if fl == nil {
		return DeliveryCredentials{}, &api.Error{Status: http.StatusNotFound, Code: "InvalidFlowLogId.NotFound",
			Message: "GetDeliveryCredentials: flow log " + r.FlowLogID + " does not exist or does not cover agent " + r.AgentID}
	}
	if s.opts.DeliveryRoles == nil || fl.DeliverLogsPermissionArn == "" || fl.LogDestinationType != "cloud-watch-logs" {
		return DeliveryCredentials{AgentKeys: true}, nil
	}
	creds, err := s.opts.DeliveryRoles.AssumeDeliveryRole(ctx, fl.DeliverLogsPermissionArn)
	var ae *AccessError
	if errors.As(err, &ae) {
		s.log.Warn("delivery role refused", "flow_log", fl.FlowLogID, "agent", r.AgentID, "role", fl.DeliverLogsPermissionArn, "error", ae.Message)
		// The agent reports the same; recording it now makes
		// describe-flow-logs say so even before the agent does.
		if rerr := s.fl.ReportStatus(ctx, StatusReport{AgentID: r.AgentID, FlowLogs: []FlowLogStatus{{
			FlowLogID: fl.FlowLogID, Status: "FAILED", Message: ae.Message,
		}}}); rerr != nil {
			s.log.Error("record delivery status", "flow_log", fl.FlowLogID, "error", rerr)
		}
		return DeliveryCredentials{}, &api.Error{Status: http.StatusForbidden, Code: CodeDeliveryAccessError, Message: ae.Message}
	}
	if err != nil {
		return DeliveryCredentials{}, err
	}
	return creds, nil
}
