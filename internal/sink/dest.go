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
)

// ParseDestination splits a flow log destination into its kind and location:
//
//	/var/log/flows, ./flows      file, the path cleaned
//	file:///var/log/flows        file, "/var/log/flows" (file://localhost/… too; %-escapes decoded)
//	s3://bucket/prefix           s3, "bucket/prefix"
//	arn:aws:s3:::bucket/prefix   s3, "bucket/prefix" (the form AWS's LogDestination takes)
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
	case strings.Contains(s, "://"):
		scheme, _, _ := strings.Cut(s, "://")
		return "", "", fmt.Errorf("parse destination %q: unsupported scheme %q (want a path, file://, s3:// or an S3 ARN)", s, scheme)
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
