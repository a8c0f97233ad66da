package sink

import (
	"strings"
	"testing"
)

// TestParseStreamDestinations covers the Kafka and CloudWatch Logs forms.
func TestParseStreamDestinations(t *testing.T) {
	for _, tt := range []struct {
		in       string
		kind     DestinationKind
		location string
	}{
		{"kafka://k1:9092,k2:9092/vpc-flow-logs", DestinationKafka, "k1:9092,k2:9092/vpc-flow-logs"},
		{"kafka://[::1]:9092/flows", DestinationKafka, "[::1]:9092/flows"},
		{"cloudwatch://my-flow-logs", DestinationCloudWatch, "my-flow-logs"},
		{"cloudwatch:///aws/vpc/flows", DestinationCloudWatch, "/aws/vpc/flows"},
		{"arn:aws:logs:us-east-1:123456789012:log-group:my-flow-logs", DestinationCloudWatch, "arn:aws:logs:us-east-1:123456789012:log-group:my-flow-logs"},
		{"arn:aws-cn:logs:cn-north-1:123456789012:log-group:g:*", DestinationCloudWatch, "arn:aws-cn:logs:cn-north-1:123456789012:log-group:g:*"},
	} {
		kind, location, err := ParseDestination(tt.in)
		if err != nil || kind != tt.kind || location != tt.location {
			t.Errorf("ParseDestination(%q) = %s %q %v, want %s %q", tt.in, kind, location, err, tt.kind, tt.location)
		}
	}
	for _, bad := range []string{"kafka://", "kafka://k1:9092", "kafka://k1:9092/", "kafka:///topic", "kafka://k1:9092/a/b", "cloudwatch://"} {
		if kind, location, err := ParseDestination(bad); err == nil {
			t.Errorf("ParseDestination(%q) = %s %q, want an error", bad, kind, location)
		}
	}
}

// TestParseFirehoseDestinations covers the Firehose forms: the URL with an
// optional region and the delivery stream ARN (LogDestination's form).
func TestParseFirehoseDestinations(t *testing.T) {
	for _, tt := range []struct {
		in       string
		location string
	}{
		{"firehose://vpc-flow-logs", "vpc-flow-logs"},
		{"firehose://vpc-flow-logs?region=eu-west-1", "vpc-flow-logs?region=eu-west-1"},
		{"arn:aws:firehose:us-east-1:123456789012:deliverystream/flows", "arn:aws:firehose:us-east-1:123456789012:deliverystream/flows"},
		{"arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/f.1_x", "arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/f.1_x"},
	} {
		kind, location, err := ParseDestination(tt.in)
		if err != nil || kind != DestinationFirehose || location != tt.location {
			t.Errorf("ParseDestination(%q) = %s %q %v, want firehose %q", tt.in, kind, location, err, tt.location)
		}
	}
	for _, bad := range []string{"firehose://", "firehose://?region=x", "firehose://a/b"} {
		if kind, location, err := ParseDestination(bad); err == nil {
			t.Errorf("ParseDestination(%q) = %s %q, want an error", bad, kind, location)
		}
	}
	// An unknown scheme's error lists firehose:// among the known ones.
	if _, _, err := ParseDestination("kinesis://x"); err == nil || !strings.Contains(err.Error(), "firehose://") {
		t.Errorf("ParseDestination(kinesis://x) = %v, want an error listing firehose://", err)
	}
}
