package analyze

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/flowlog/flowlog/internal/awsconf"
)

// S3Config says how to reach S3.
type S3Config struct {
	// EndpointURL is an S3-compatible endpoint (http://127.0.0.1:7070 for
	// versitygw or MinIO); addressing is then path-style. Empty: AWS.
	EndpointURL string
	// Region of the bucket; empty: AWS_REGION or the shared config, else
	// us-east-1.
	Region string
	// NoSignRequest reads public buckets without credentials.
	NoSignRequest bool
}

// S3 lists and reads flow log objects in S3 buckets. Credentials come from
// the usual AWS sources (environment, shared files, roles).
type S3 struct {
	client *s3.Client
}

// NewS3 returns an S3 reader for cfg.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	o := awsconf.Overrides{Region: cfg.Region}
	if cfg.NoSignRequest {
		o.Credentials = aws.AnonymousCredentials{}
	}
	awsCfg, err := awsconf.Load(ctx, o)
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
			o.UsePathStyle = true
		}
	})
	return &S3{client: client}, nil
}

// parseS3URL splits s3://bucket/prefix.
func parseS3URL(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%s: not an s3:// URL", u)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%s: no bucket name", u)
	}
	return bucket, key, nil
}

// s3Object is one object to read.
type s3Object struct {
	s      *S3
	bucket string
	key    string
}

func (o s3Object) open(ctx context.Context) (io.ReadCloser, error) {
	out, err := o.s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", o.bucket, o.key, err)
	}
	return out.Body, nil
}

// walk lists the objects under an s3://bucket/prefix URL folder by folder,
// skipping folders and objects that cannot hold records in tr (layoutSpan)
// and other services' log trees. A URL that names an object (it ends in a
// log file suffix) is that object.
func (s *S3) walk(ctx context.Context, u string, tr TimeRange, fn func(Input) error) error {
	bucket, prefix, err := parseS3URL(u)
	if err != nil {
		return err
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		if logFileName(baseName(prefix)) {
			head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix)})
			if err == nil {
				return fn(Input{Name: u, Size: aws.ToInt64(head.ContentLength), src: s3Object{s, bucket, prefix}})
			}
		}
		prefix += "/"
	}
	found := 0
	err = s.walkFolder(ctx, bucket, prefix, tr, func(in Input) error {
		found++
		return fn(in)
	})
	if err == nil && found == 0 && tr.IsZero() {
		// Say so rather than print an empty report: a typo in the
		// prefix is the usual reason.
		return fmt.Errorf("%s: no objects under this prefix", u)
	}
	return err
}

func (s *S3) walkFolder(ctx context.Context, bucket, prefix string, tr TimeRange, fn func(Input) error) error {
	type entry struct {
		key  string
		size int64
		dir  bool
	}
	var entries []entry
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			entries = append(entries, entry{key: aws.ToString(cp.Prefix), dir: true})
		}
		for _, o := range page.Contents {
			entries = append(entries, entry{key: aws.ToString(o.Key), size: aws.ToInt64(o.Size)})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.dir {
			if otherAWSService(e.key) {
				continue
			}
			if span, ok := layoutSpan(e.key, true); ok && !tr.IsZero() && !span.mayMatch(tr) {
				continue
			}
			if err := s.walkFolder(ctx, bucket, e.key, tr, fn); err != nil {
				return err
			}
			continue
		}
		if strings.HasSuffix(e.key, "/") || !logFileName(baseName(e.key)) {
			continue
		}
		if span, ok := layoutSpan(e.key, false); ok && !tr.IsZero() && !span.mayMatch(tr) {
			continue
		}
		in := Input{Name: "s3://" + bucket + "/" + e.key, Size: e.size, src: s3Object{s, bucket, e.key}}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

func baseName(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}
