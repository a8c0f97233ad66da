package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
	"github.com/flowlog/flowlog/internal/sink/kafka"
)

// agentOpeners are the destination kinds the agent writes to, one opener
// per kind: local directories (the agent's own), Kafka and CloudWatch
// Logs.
func agentOpeners() map[sink.DestinationKind]agent.Opener {
	m := agent.DefaultOpeners()
	m[sink.DestinationKafka] = openAgentKafka
	m[sink.DestinationCloudWatch] = openAgentCloudWatch
	return m
}

// openAgentKafka opens kafka://host:port[,host:port]/topic: one message
// per record, keyed by interface id.
func openAgentKafka(_ context.Context, fl agent.FlowLog, _ string, format *flow.Format, _ *inventory.Inventory) (agent.Destination, error) {
	_, location, err := sink.ParseDestination(fl.Destination)
	if err != nil {
		return agent.Destination{}, err
	}
	brokers, topic, err := kafka.ParseLocation(location)
	if err != nil {
		return agent.Destination{}, err
	}
	s, err := kafka.New(kafka.Config{Brokers: brokers, Topic: topic, Format: format})
	if err != nil {
		return agent.Destination{}, err
	}
	return agent.Destination{Sink: s}, nil
}

// openAgentCloudWatch opens cloudwatch://GROUP or a log group ARN with the
// standard AWS credential chain (see openCloudWatchDestination).
func openAgentCloudWatch(ctx context.Context, fl agent.FlowLog, _ string, format *flow.Format, _ *inventory.Inventory) (agent.Destination, error) {
	_, location, err := sink.ParseDestination(fl.Destination)
	if err != nil {
		return agent.Destination{}, err
	}
	target, err := cloudwatch.ParseLocation(location)
	if err != nil {
		return agent.Destination{}, err
	}
	var opts []func(*config.LoadOptions) error
	if target.Region != "" {
		opts = append(opts, config.WithRegion(target.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return agent.Destination{}, fmt.Errorf("cloudwatch log group %s: load AWS configuration: %w", target.Group, err)
	}
	if awsCfg.Region == "" {
		return agent.Destination{}, errors.New("cloudwatch log group " + target.Group + ": no AWS region: give the log group's ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME) or set AWS_REGION")
	}
	s, err := cloudwatch.New(cloudwatch.Config{Group: target.Group, Format: format, Client: cloudwatchlogs.NewFromConfig(awsCfg)})
	if err != nil {
		return agent.Destination{}, err
	}
	return agent.Destination{Sink: s}, nil
}
