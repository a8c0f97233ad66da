package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/firehose"
)

// openFirehoseDestination opens --dest firehose://STREAM[?region=R] or
// arn:aws:firehose:REGION:ACCOUNT:deliverystream/STREAM with the standard
// AWS credential chain: one Firehose record per record line, with its
// line end. The region is the ARN's (or ?region=), else the usual
// AWS_REGION, profile and so on; AWS_ENDPOINT_URL_FIREHOSE (or
// AWS_ENDPOINT_URL) points the client at another implementation of the
// API (`flowlog serve`).
func openFirehoseDestination(ctx context.Context, cfg pipeline.ReadConfig, location string) (destination, error) {
	target, err := firehose.ParseLocation(location)
	if err != nil {
		return destination{}, usageError{err}
	}
	client, err := firehose.NewClient(ctx, firehose.ClientConfig{Region: target.Region})
	if err != nil {
		return destination{}, usageError{fmt.Errorf("firehose delivery stream %s: %w", target.Stream, err)}
	}
	s, err := firehose.New(firehose.Config{Stream: target.Stream, Format: cfg.Format, Client: client})
	if err != nil {
		return destination{}, err
	}
	return destination{sink: s}, nil
}

// openAgentFirehose opens a flow log's Firehose destination with the
// standard AWS credential chain, at the flow log's endpoint-url when set
// (see openFirehoseDestination).
func openAgentFirehose(ctx context.Context, fl agent.FlowLog, _ string, format *flow.Format, _ *inventory.Inventory) (agent.Destination, error) {
	_, location, err := sink.ParseDestination(fl.Destination)
	if err != nil {
		return agent.Destination{}, err
	}
	target, err := firehose.ParseLocation(location)
	if err != nil {
		return agent.Destination{}, err
	}
	client, err := firehose.NewClient(ctx, firehose.ClientConfig{Region: target.Region, EndpointURL: fl.EndpointURL, Credentials: fl.Credentials})
	if err != nil {
		return agent.Destination{}, fmt.Errorf("firehose delivery stream %s: %w", target.Stream, err)
	}
	s, err := firehose.New(firehose.Config{Stream: target.Stream, Format: format, Client: client})
	if err != nil {
		return agent.Destination{}, err
	}
	return agent.Destination{Sink: s}, nil
}

// serverFirehoseOpener opens delivery streams at the server's own Firehose
// API (endpoint: the server's URL), in the stream ARN's region (else the
// server's), signed with the agent's keys (which need
// firehose:PutRecordBatch on the stream), or fl.Credentials when set.
func serverFirehoseOpener(srv *agent.Server) agent.Opener {
	return func(_ context.Context, fl agent.FlowLog, _ string, format *flow.Format, _ *inventory.Inventory) (agent.Destination, error) {
		_, location, err := sink.ParseDestination(fl.Destination)
		if err != nil {
			return agent.Destination{}, err
		}
		target, err := firehose.ParseLocation(location)
		if err != nil {
			return agent.Destination{}, err
		}
		api, err := newServerAPI(srv, fl, target.Region)
		if err != nil {
			return agent.Destination{}, err
		}
		client := awsfirehose.New(awsfirehose.Options{
			Region:       api.region,
			BaseEndpoint: aws.String(srv.URL),
			Credentials:  api.creds,
			HTTPClient:   api.http,
		})
		s, err := firehose.New(firehose.Config{Stream: target.Stream, Format: format, Client: client})
		if err != nil {
			return agent.Destination{}, err
		}
		return agent.Destination{Sink: s}, nil
	}
}
