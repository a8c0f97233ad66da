package sink

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// DestinationKind says which sink a destination string selects.
type DestinationKind string

const (
	// DestinationFile is a local directory in the S3 layout (Dir).
	DestinationFile DestinationKind = "file"
	// DestinationS3 is an S3 bucket, optionally with a prefix (sink/s3).
	DestinationS3 DestinationKind = "s3"
	// DestinationKafka is a Kafka topic (sink/kafka).
	DestinationKafka DestinationKind = "kafka"
	// DestinationCloudWatch is a CloudWatch Logs log group (sink/cloudwatch).
	DestinationCloudWatch DestinationKind = "cloudwatch"
	// DestinationFirehose is a Kinesis Data Firehose delivery stream
	// (sink/firehose).
	DestinationFirehose DestinationKind = "firehose"
)

// ParseDestination splits a flow log destination into its kind and location:
//
//	/var/log/flows, ./flows      file, the path cleaned
//	file:///var/log/flows        file, "/var/log/flows" (file://localhost/… too; %-escapes decoded)
//	s3://bucket/prefix           s3, "bucket/prefix"
//	arn:aws:s3:::bucket/prefix   s3, "bucket/prefix" (the form AWS's LogDestination takes)
//	kafka://h1:9092,h2:9092/t    kafka, "h1:9092,h2:9092/t" (kafka.ParseLocation splits it)
//	cloudwatch://group-name      cloudwatch, "group-name"
//	arn:aws:logs:REGION:ACCOUNT:log-group:NAME
//	                             cloudwatch, the ARN unchanged (cloudwatch.ParseLocation reads it)
//	firehose://STREAM?region=R   firehose, "STREAM?region=R" (firehose.ParseLocation reads it)
//	arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME
//	                             firehose, the ARN unchanged
//
// Any other scheme is an error, as is an empty location.
func ParseDestination(s string) (kind DestinationKind, location string, err error) {
	switch {
	case s == "":
		return "", "", errors.New("parse destination: empty")
	case strings.HasPrefix(s, "arn:aws:s3:::"):
		return parseS3Location(s, strings.TrimPrefix(s, "arn:aws:s3:::"))
	case strings.HasPrefix(s, "s3://"):
		return parseS3Location(s, strings.TrimPrefix(s, "s3://"))
	case strings.HasPrefix(s, "file:"):
		u, err := url.Parse(s)
		if err != nil {
			return "", "", fmt.Errorf("parse destination %q: %w", s, err)
		}
		if u.Opaque != "" || u.Host != "" && u.Host != "localhost" || u.Path == "" || u.RawQuery != "" || u.Fragment != "" {
			return "", "", fmt.Errorf("parse destination %q: want file:///absolute/path", s)
		}
		return DestinationFile, filepath.Clean(filepath.FromSlash(u.Path)), nil
	case strings.HasPrefix(s, "kafka://"):
		return parseKafkaLocation(s, strings.TrimPrefix(s, "kafka://"))
	case strings.HasPrefix(s, "cloudwatch://"):
		if group := strings.TrimPrefix(s, "cloudwatch://"); group != "" {
			return DestinationCloudWatch, group, nil
		}
		return "", "", fmt.Errorf("parse destination %q: no log group", s)
	case isLogsARN(s):
		return DestinationCloudWatch, s, nil
	case strings.HasPrefix(s, "firehose://"):
		stream := strings.TrimPrefix(s, "firehose://")
		if name, _, _ := strings.Cut(stream, "?"); name == "" || strings.Contains(name, "/") {
			return "", "", fmt.Errorf("parse destination %q: want firehose://STREAM-NAME[?region=REGION]", s)
		}
		return DestinationFirehose, stream, nil
	case isARN(s, "firehose"):
		return DestinationFirehose, s, nil
	case strings.Contains(s, "://"):
		scheme, _, _ := strings.Cut(s, "://")
		return "", "", fmt.Errorf("parse destination %q: unsupported scheme %q (want a path, file://, s3://, kafka://, cloudwatch://, firehose://, or an S3, CloudWatch Logs or Firehose ARN)", s, scheme)
	}
	return DestinationFile, filepath.Clean(s), nil
}

func parseS3Location(s, rest string) (DestinationKind, string, error) {
	rest = strings.TrimSuffix(rest, "/")
	bucket, _, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("parse destination %q: no bucket", s)
	}
	return DestinationS3, rest, nil
}

// parseKafkaLocation checks the shape of "host:port[,host:port]/topic";
// sink/kafka checks the parts.
func parseKafkaLocation(s, rest string) (DestinationKind, string, error) {
	hosts, topic, ok := strings.Cut(rest, "/")
	if !ok || hosts == "" || topic == "" || strings.Contains(topic, "/") {
		return "", "", fmt.Errorf("parse destination %q: want kafka://host:port[,host:port]/topic", s)
	}
	return DestinationKafka, rest, nil
}

// isLogsARN reports whether s is a CloudWatch Logs ARN
// (arn:PARTITION:logs:…).
func isLogsARN(s string) bool { return isARN(s, "logs") }

// isARN reports whether s is an ARN of service (arn:PARTITION:SERVICE:…).
func isARN(s, service string) bool {
	rest, ok := strings.CutPrefix(s, "arn:")
	if !ok {
		return false
	}
	partition, rest, ok := strings.Cut(rest, ":")
	return ok && strings.HasPrefix(partition, "aws") && strings.HasPrefix(rest, service+":")
}
