// Package awsconf loads the AWS SDK configuration every flowlog client of an
// AWS API starts from (S3, CloudWatch Logs and Firehose sinks, the
// analyzer's inputs, the server's Firehose delivery): the standard chain of
// credentials, region and shared files, with the overrides a flowlog
// setting gives, and one way of checking an endpoint URL setting.
package awsconf

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Overrides replace parts of the standard configuration; zero values keep
// the standard chain's.
type Overrides struct {
	// Region is the region to sign for and send to.
	Region string
	// Credentials replace the chain (environment, shared files, SSO, web
	// identity, container and instance roles).
	Credentials aws.CredentialsProvider
}

// Load returns the standard configuration with o's overrides. Its Region
// may be empty: each caller says in its own terms how to give one.
func Load(ctx context.Context, o Overrides) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// CheckEndpoint reports whether endpoint ("" for the service's own) is a
// URL an SDK client can be pointed at; setting names it in the error.
func CheckEndpoint(setting, endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%s %q: want http://host[:port] or https://host[:port]", setting, endpoint)
	}
	return nil
}
