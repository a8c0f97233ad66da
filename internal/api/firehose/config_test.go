package firehose_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/internal/api"
)

// TestConfigKeys: the server configuration's firehose keys, their
// default and their validation.
func TestConfigKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	load := func(yaml string) (api.Config, error) {
		p := filepath.Join(dir, "server.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return api.LoadConfig(p)
	}
	c, err := load("data-dir: /srv/flowlog\n")
	if err != nil || c.FirehoseBucketsDir() != "/srv/flowlog/firehose-buckets" || c.Firehose.S3EndpointURL != "" {
		t.Fatalf("defaults: %+v, %v", c.Firehose, err)
	}
	c, err = load("firehose:\n  buckets-dir: /b\n  s3-endpoint-url: http://127.0.0.1:7070\n  s3-region: eu-west-1\n")
	if err != nil || c.FirehoseBucketsDir() != "/b" || c.Firehose.S3EndpointURL != "http://127.0.0.1:7070" || c.Firehose.S3Region != "eu-west-1" {
		t.Fatalf("keys: %+v, %v", c.Firehose, err)
	}
	if _, err := load("firehose:\n  s3-endpoint-url: aws\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := load("firehose:\n  s3-endpoint-url: ftp://x\n"); err == nil || !strings.Contains(err.Error(), "firehose.s3-endpoint-url") {
		t.Fatalf("bad url: %v", err)
	}
	if _, err := load("firehose:\n  bucket-dir: /typo\n"); err == nil {
		t.Fatal("an unknown key was accepted")
	}
}
