package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
)

// openCloudWatchDestination opens --dest cloudwatch://GROUP or
// arn:aws:logs:REGION:ACCOUNT:log-group:GROUP with the standard AWS
// credential chain. The region is the ARN's, else the usual AWS_REGION,
// profile and so on; AWS_ENDPOINT_URL_CLOUDWATCH_LOGS (or AWS_ENDPOINT_URL)
// points the client at another implementation of the API.
func openCloudWatchDestination(ctx context.Context, cfg pipeline.ReadConfig, location string) (destination, error) {
	target, err := cloudwatch.ParseLocation(location)
	if err != nil {
		return destination{}, usageError{err}
	}
	var opts []func(*config.LoadOptions) error
	if target.Region != "" {
		opts = append(opts, config.WithRegion(target.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return destination{}, fmt.Errorf("cloudwatch log group %s: load AWS configuration: %w", target.Group, err)
	}
	if awsCfg.Region == "" {
		return destination{}, usageError{errors.New("cloudwatch log group " + target.Group + ": no AWS region: give the log group's ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME) or set AWS_REGION")}
	}
	s, err := cloudwatch.New(cloudwatch.Config{Group: target.Group, Format: cfg.Format, Client: cloudwatchlogs.NewFromConfig(awsCfg)})
	if err != nil {
		return destination{}, err
	}
	return destination{sink: s}, nil
}
