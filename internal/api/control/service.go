package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// FlowLogs is the store of flow logs and inventory the agent protocol
// serves; *ec2.Service implements it. (An interface rather than the ec2
// type: package ec2 uses this package's wire types, so this package
// cannot import it.)
type FlowLogs interface {
	Register(ctx context.Context, r Registration) error
	FlowLogsFor(ctx context.Context, agentID string) (FlowLogSet, error)
	// Changed is closed at the next change of any agent's set.
	Changed() <-chan struct{}
	ReportStatus(ctx context.Context, r StatusReport) error
}

// DefaultPollWait is the longest a WatchFlowLogs call is held.
const DefaultPollWait = 30 * time.Second

// ServiceOptions configure the server side of the protocol.
type ServiceOptions struct {
	// PollWait caps how long WatchFlowLogs holds a request (0 means
	// DefaultPollWait). Agents set their HTTP timeout above it.
	PollWait time.Duration
	Logger   *slog.Logger
	// DeliveryRoles issues the sessions GetDeliveryCredentials answers;
	// nil means agents deliver with their own keys (AgentKeys).
	DeliveryRoles DeliveryRoles
}

// Service is the server side of the agent protocol: an api.Service
// (REST JSON under PathPrefix, SigV4 service SigningName) whose calls are
// authorized as flowlog:Register, flowlog:WatchFlowLogs,
// flowlog:ReportStatus and flowlog:GetDeliveryCredentials.
type Service struct {
	fl   FlowLogs
	opts ServiceOptions
	log  *slog.Logger
}

// NewService serves the agent protocol from flowLogs.
func NewService(flowLogs FlowLogs, opts ServiceOptions) *Service {
	if opts.PollWait <= 0 {
		opts.PollWait = DefaultPollWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{fl: flowLogs, opts: opts, log: opts.Logger}
}

// Info implements api.Service.
func (s *Service) Info() api.ServiceInfo {
	return api.ServiceInfo{SigningName: SigningName, ActionPrefix: "flowlog", Protocol: api.ProtocolRESTJSON, PathPrefix: PathPrefix}
}

// Resources implements api.Service: agent calls act on no named resource.
func (s *Service) Resources(context.Context, *api.Call) ([]string, error) { return nil, nil }

// decode reads a JSON body. Unknown fields are ignored, so an agent newer
// than the server can still talk to it.
func decode(call *api.Call, v any) error {
	if len(call.Body) == 0 {
		return api.Errorf("MissingParameter", "%s: the request body (JSON) is empty", call.Action)
	}
	if err := json.Unmarshal(call.Body, v); err != nil {
		return api.Errorf("InvalidParameterValue", "%s: decode request body: %v", call.Action, err)
	}
	return nil
}

// Serve implements api.Service.
func (s *Service) Serve(ctx context.Context, call *api.Call) (any, error) {
	switch call.Action {
	case OpRegister:
		var r Registration
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		if err := s.fl.Register(ctx, r); err != nil {
			return nil, err
		}
		return RegisterResult{PollWait: s.opts.PollWait}, nil
	case OpWatchFlowLogs:
		var w WatchRequest
		if err := decode(call, &w); err != nil {
			return nil, err
		}
		if w.AgentID == "" {
			return nil, api.Errorf("MissingParameter", "WatchFlowLogs: agentId is required")
		}
		return s.watch(ctx, w)
	case OpReportStatus:
		var r StatusReport
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		if err := s.fl.ReportStatus(ctx, r); err != nil {
			return nil, err
		}
		return struct{}{}, nil
	case OpGetDeliveryCredentials:
		var r DeliveryCredentialsRequest
		if err := decode(call, &r); err != nil {
			return nil, err
		}
		return s.deliveryCredentials(ctx, r)
	}
	return nil, &api.Error{Status: http.StatusNotFound, Code: "UnknownOperation", Message: "no operation " + call.Action + " under " + PathPrefix}
}

// watch answers at once when the agent's revision is not the current
// one, else waits for a change, for the wait (capped by PollWait), or for
// the request's end, and answers the set as it then is.
func (s *Service) watch(ctx context.Context, w WatchRequest) (FlowLogSet, error) {
	wait := w.Wait
	if wait <= 0 || wait > s.opts.PollWait {
		wait = s.opts.PollWait
	}
	// Take the channel before reading: a change between the read and the
	// wait then still wakes us.
	changed := s.fl.Changed()
	set, err := s.fl.FlowLogsFor(ctx, w.AgentID)
	if err != nil || set.Revision != w.Revision {
		return set, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
		return set, nil
	case <-ctx.Done(): // the client left: the answer goes nowhere
		return set, nil
	case <-api.Draining(ctx): // the server is stopping: answer what we have
		return set, nil
	}
	return s.fl.FlowLogsFor(ctx, w.AgentID)
}
