// Package sink owns the destinations records are delivered to and the parts
// they share: the S3 object layout (Layout: keys exactly as AWS names them,
// spec §5), the assembly of records into 5-minute, size-capped objects, gzip'd
// text or Parquet (package parquet), with content-derived names (ObjectWriter), and the local
// directory destination (Dir), which uses the identical layout.
//
// Remote destinations live in subpackages (sink/s3, sink/cloudwatch,
// sink/kafka, sink/firehose); the S3 sink reuses Layout and ObjectWriter
// with its own Store.
package sink
