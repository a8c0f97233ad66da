package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/flowlog/flowlog/internal/parquet"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/s3"
)

// objectOptions are the flags of the object destinations (a directory or
// an S3 bucket) beyond --dest and the layout flags.
type objectOptions struct {
	fileFormat         string
	parquetCompression string
	endpointURL        string
	pathStyle          bool
}

// File formats of object destinations, as CreateFlowLogs names them
// (DestinationOptions.FileFormat).
const (
	fileFormatText    = "plain-text"
	fileFormatParquet = "parquet"
)

func addObjectFlags(f *pflag.FlagSet, o *objectOptions) {
	f.StringVar(&o.fileFormat, "file-format", fileFormatText, "with a directory or s3 --dest: object `format`, plain-text (gzip'd text with a header line) or parquet (.log.parquet)")
	f.StringVar(&o.parquetCompression, "parquet-compression", string(parquet.Gzip), "with --file-format parquet: column chunk `compression`, gzip (as AWS) or zstd")
	f.StringVar(&o.endpointURL, "endpoint-url", "", "with an s3 --dest: `URL` of an S3-compatible server (http://host:port) instead of AWS")
	f.BoolVar(&o.pathStyle, "s3-path-style", false, "with an s3 --dest: path-style addressing (endpoint/bucket/key), as most S3-compatible servers need")
}

// validate checks the flags against each other and --dest.
func (o *objectOptions) validate(dest string) error {
	switch o.fileFormat {
	case fileFormatText, fileFormatParquet:
	default:
		return usageError{fmt.Errorf("--file-format %q: want plain-text or parquet", o.fileFormat)}
	}
	codec, err := parquet.ParseCodec(o.parquetCompression)
	if err != nil {
		return usageError{fmt.Errorf("--parquet-compression: %w", err)}
	}
	if codec != parquet.Gzip && o.fileFormat != fileFormatParquet {
		return usageError{errors.New("--parquet-compression needs --file-format parquet")}
	}
	kind, _, _ := sink.ParseDestination(dest) // openDestination reports a bad --dest
	objects := dest != "" && (kind == sink.DestinationFile || kind == sink.DestinationS3)
	if o.fileFormat != fileFormatText && !objects {
		return usageError{errors.New("--file-format needs a directory or s3:// --dest")}
	}
	if (o.endpointURL != "" || o.pathStyle) && (dest == "" || kind != sink.DestinationS3) {
		return usageError{errors.New("--endpoint-url and --s3-path-style need an s3:// --dest")}
	}
	if err := (s3.ClientConfig{EndpointURL: o.endpointURL}).Validate(); err != nil {
		return usageError{fmt.Errorf("--endpoint-url: %w", err)}
	}
	return nil
}

// parquet reports whether objects are Parquet files.
func (o *objectOptions) parquet() bool { return o.fileFormat == fileFormatParquet }

// codec is the compression of Parquet objects.
func (o *objectOptions) codec() parquet.Codec {
	c, _ := parquet.ParseCodec(o.parquetCompression) // checked by validate
	return c
}

// openS3Destination opens --dest s3://bucket/prefix or
// arn:aws:s3:::bucket/prefix with the standard AWS credential chain and
// region (AWS_REGION, profile, …; with --endpoint-url and no region,
// us-east-1), writing the objects the directory destination would write,
// under the prefix.
func openS3Destination(ctx context.Context, o *readOptions, cfg pipeline.ReadConfig, location string) (destination, error) {
	loc, err := s3.ParseLocation(location)
	if err != nil {
		return destination{}, usageError{fmt.Errorf("--dest: %w", err)}
	}
	client, err := s3.NewClient(ctx, s3.ClientConfig{EndpointURL: o.objects.endpointURL, PathStyle: o.objects.pathStyle})
	if err != nil {
		return destination{}, err
	}
	layout := o.layout(cfg)
	layout.Prefix = loc.Prefix
	s, err := s3.New(s3.Config{
		Bucket:             loc.Bucket,
		Layout:             layout,
		Format:             cfg.Format,
		Client:             client,
		MaxObjectBytes:     o.maxObjectBytes,
		ParquetCompression: o.objects.codec(),
	})
	if err != nil {
		return destination{}, usageError{fmt.Errorf("--dest: %w", err)}
	}
	return destination{sink: s, published: s.Published}, nil
}
