package control

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// GetDeliveryCredentials asks for the credentials that deliver one flow
// log of the agent. A refused delivery role is an *Error with Code
// CodeDeliveryAccessError whose Message is the flow log's
// deliverLogsErrorMessage.
func (c *Client) GetDeliveryCredentials(ctx context.Context, r DeliveryCredentialsRequest) (DeliveryCredentials, error) {
	var out DeliveryCredentials
	err := c.call(ctx, OpGetDeliveryCredentials, r, &out)
	return out, err
}

// IsDeliveryAccessError reports whether err is a refused delivery role
// (CodeDeliveryAccessError), and its message.
func IsDeliveryAccessError(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeDeliveryAccessError {
		return e.Message, true
	}
	return "", false
}

// agentKeysFor is how long the agent's own keys stand in for a delivery
// role's session before the server is asked again (it may have gained
// IAM meanwhile).
const agentKeysFor = 15 * time.Minute

// DeliveryCredentialsProvider is an aws.CredentialsProvider of one flow
// log's delivery-role sessions, asked of the server with
// GetDeliveryCredentials. Wrap it in aws.NewCredentialsCache, which asks
// again before Expiration. When the server issues no sessions (AgentKeys,
// or a server older than the operation) it answers the agent's own keys
// for agentKeysFor.
type DeliveryCredentialsProvider struct {
	Client    *Client
	AgentID   string
	FlowLogID string
}

// Retrieve implements aws.CredentialsProvider.
func (p *DeliveryCredentialsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	d, err := p.Client.GetDeliveryCredentials(ctx, DeliveryCredentialsRequest{AgentID: p.AgentID, FlowLogID: p.FlowLogID})
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound && e.Code == "UnknownOperation" {
		d, err = DeliveryCredentials{AgentKeys: true}, nil
	}
	if err != nil {
		return aws.Credentials{}, err
	}
	if d.AgentKeys {
		own := p.Client.creds
		own.CanExpire, own.Expires = true, p.Client.now().Add(agentKeysFor)
		return own, nil
	}
	return aws.Credentials{
		AccessKeyID: d.AccessKeyID, SecretAccessKey: d.SecretAccessKey, SessionToken: d.SessionToken,
		Source: "flowlog delivery role session", CanExpire: true, Expires: d.Expiration,
	}, nil
}
