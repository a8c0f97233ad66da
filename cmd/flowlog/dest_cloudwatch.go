package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/awsconf"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
)

// openCloudWatchDestination opens --dest cloudwatch://GROUP or
// arn:aws:logs:REGION:ACCOUNT:log-group:GROUP (see newCloudWatchSink).
func openCloudWatchDestination(ctx context.Context, cfg pipeline.ReadConfig, location string) (destination, error) {
	s, err := newCloudWatchSink(ctx, location, cfg.Format)
	if err != nil {
		return destination{}, err
	}
	return destination{sink: s}, nil
}

// newCloudWatchSink opens the log group of location (cloudwatch://GROUP or
// its ARN) with the standard AWS credential chain. The region is the
// ARN's, else the usual AWS_REGION, profile and so on;
// AWS_ENDPOINT_URL_CLOUDWATCH_LOGS (or AWS_ENDPOINT_URL) points the client
// at another implementation of the API. A location or a missing region
// the user must fix is a usageError.
func newCloudWatchSink(ctx context.Context, location string, format *flow.Format) (*cloudwatch.Sink, error) {
	target, err := cloudwatch.ParseLocation(location)
	if err != nil {
		return nil, usageError{err}
	}
	awsCfg, err := awsconf.Load(ctx, awsconf.Overrides{Region: target.Region})
	if err != nil {
		return nil, fmt.Errorf("cloudwatch log group %s: %w", target.Group, err)
	}
	if awsCfg.Region == "" {
		return nil, usageError{errors.New("cloudwatch log group " + target.Group + ": no AWS region: give the log group's ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME) or set AWS_REGION")}
	}
	return cloudwatch.New(cloudwatch.Config{Group: target.Group, Format: format, Client: cloudwatchlogs.NewFromConfig(awsCfg)})
}
