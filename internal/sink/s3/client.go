package s3

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/flowlog/flowlog/internal/awsconf"
)

// DefaultEndpointRegion is the region signed for when an endpoint URL is
// given and no region is configured: S3-compatible servers (MinIO,
// versitygw, Ceph) answer to us-east-1 unless set up otherwise.
const DefaultEndpointRegion = "us-east-1"

// ClientConfig says how to reach S3.
type ClientConfig struct {
	// Region of the bucket; "" means the standard configuration
	// (AWS_REGION, AWS_DEFAULT_REGION, the profile's region), and with
	// EndpointURL and none of those, DefaultEndpointRegion.
	Region string
	// EndpointURL is an S3-compatible server (http://127.0.0.1:7070); ""
	// means AWS (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
	EndpointURL string
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key, as most S3-compatible servers need.
	PathStyle bool
	// Credentials overrides the standard chain (environment, shared
	// credentials and config files, SSO, web identity, container and
	// instance roles) when set.
	Credentials aws.CredentialsProvider
}

// Validate reports the first setting of c NewClient cannot use.
func (c ClientConfig) Validate() error {
	return awsconf.CheckEndpoint("s3 endpoint url", c.EndpointURL)
}

// NewClient returns an S3 client configured the standard way (credential
// chain, region, retries from the shared configuration) with cfg's
// overrides.
func NewClient(ctx context.Context, cfg ClientConfig) (*awss3.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	awsCfg, err := awsconf.Load(ctx, awsconf.Overrides{Region: cfg.Region, Credentials: cfg.Credentials})
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		if cfg.EndpointURL == "" && awsCfg.BaseEndpoint == nil {
			return nil, errors.New("s3 region: not set: set AWS_REGION or the region of an AWS profile")
		}
		awsCfg.Region = DefaultEndpointRegion
	}
	return awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
		}
		o.UsePathStyle = cfg.PathStyle
	}), nil
}
