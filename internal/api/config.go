package api

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/goccy/go-yaml"
)

// Config is the server's configuration file (server.yaml). It holds
// secrets (access keys), so LoadConfig refuses a file other users can read.
type Config struct {
	// Listen is the address to serve on; the default binds to loopback
	// only. Serving other hosts is a deliberate choice: set 0.0.0.0:8080.
	Listen string `yaml:"listen"`
	TLS    TLS    `yaml:"tls"`
	// DataDir holds the store (flowlog.db) and anything else the server
	// keeps.
	DataDir   string `yaml:"data-dir"`
	AccountID string `yaml:"account-id"`
	Region    string `yaml:"region"`
	// AccessKeys are the account's administrator keys.
	AccessKeys []AccessKey `yaml:"access-keys"`
	// MaxClockSkew bounds the difference between a request's signing time
	// and the server's clock.
	MaxClockSkew time.Duration `yaml:"max-clock-skew"`
	// Audit sizes the audit trail's rotation (DATA_DIR/audit).
	Audit AuditRotation `yaml:"audit"`
	// MetricsAddress is where /metrics and /healthz are served, apart
	// from the API (e.g. 127.0.0.1:9792, beside the agent's 9791);
	// "none", the default, serves nothing.
	MetricsAddress string `yaml:"metrics-address"`
	// MaxFlowLogs bounds the flow logs the server keeps; 0 means the EC2
	// service's default (10,000).
	MaxFlowLogs int `yaml:"max-flow-logs"`
	// InventoryExpiry is how long an agent may go without calling the
	// server before the server drops it with its VPCs, subnets and
	// interfaces (their flow logs stay): a Go duration of at least 1m
	// (30m, 1h, 24h); "0" or "never" keeps them until the agent registers
	// again. Unset is DefaultInventoryExpiry. InventoryExpiryDuration
	// reads it.
	InventoryExpiry string `yaml:"inventory-expiry"`
	// Firehose says where the Kinesis Data Firehose API delivers objects.
	Firehose FirehoseConfig `yaml:"firehose"`
}

// FirehoseConfig says where delivery streams write their objects: the
// bucket of a stream's BucketARN is a directory under BucketsDir, or,
// with S3EndpointURL, a bucket of that S3 server.
type FirehoseConfig struct {
	// BucketsDir holds bucket B's objects in BucketsDir/B/KEY; ""
	// means DATA_DIR/firehose-buckets (FirehoseBucketsDir).
	BucketsDir string `yaml:"buckets-dir"`
	// S3EndpointURL, when set, sends objects to that S3 server (PUT,
	// path-style) with the standard AWS credential chain of the server's
	// environment, instead of to BucketsDir. "aws" means AWS's own S3.
	S3EndpointURL string `yaml:"s3-endpoint-url"`
	// S3Region is the region signed for; "" means the standard
	// configuration, else us-east-1.
	S3Region string `yaml:"s3-region"`
}

// FirehoseBucketsDir is firehose.buckets-dir, or its default under the
// data directory.
func (c Config) FirehoseBucketsDir() string {
	if c.Firehose.BucketsDir != "" {
		return c.Firehose.BucketsDir
	}
	return filepath.Join(c.DataDir, "firehose-buckets")
}

// AuditRotation bounds the audit trail on disk: the file is rotated when
// it reaches MaxBytes and Keep rotated files are kept. Zero values take
// the audit package's defaults (64 MiB, 10 files).
type AuditRotation struct {
	MaxBytes int64 `yaml:"max-bytes"`
	Keep     int   `yaml:"keep"`
}

// TLS is the server's certificate; both empty serves plain HTTP.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Defaults of a Config.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultDataDir      = "/var/lib/flowlog/server"
	DefaultAccountID    = "123456789012"
	DefaultRegion       = "us-east-1"
	DefaultMaxClockSkew = 5 * time.Minute
	// DefaultMetricsAddress serves no metrics: a fixed port by default
	// would make a second server on the host (or tests) fail to start.
	DefaultMetricsAddress = "none"
	// DefaultInventoryExpiry is how long an agent may go unheard before
	// its interfaces leave the inventory.
	DefaultInventoryExpiry = "1h"
	// MinInventoryExpiry is the shortest inventory-expiry: a working
	// agent calls at least every 30 s (its long poll), and an expiry
	// close to that would drop agents that are only slow.
	MinInventoryExpiry = time.Minute
)

// Defaults returns c with unset keys set to their defaults.
func (c Config) Defaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.AccountID == "" {
		c.AccountID = DefaultAccountID
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.MetricsAddress == "" {
		c.MetricsAddress = DefaultMetricsAddress
	}
	if c.InventoryExpiry == "" {
		c.InventoryExpiry = DefaultInventoryExpiry
	}
	return c
}

// isAccountID reports whether s is 12 ASCII digits. It and isAccessKeyID are
// loops rather than regexps compiled at package initialisation: every
// flowlog command, `read` included, imports this package, and
// `[A-Z0-9]{16,128}` compiled to 128 copies of its class (92 KB and 1,144
// allocations at every start).
func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isAccessKeyID reports whether s is 16 to 128 upper-case ASCII letters and
// digits.
func isAccessKeyID(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Validate reports the first bad key, by its YAML name.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %w", c.Listen, err)
	}
	if c.MetricsAddress != "none" {
		if _, _, err := net.SplitHostPort(c.MetricsAddress); err != nil {
			return fmt.Errorf("metrics-address: %q is not host:port or none: %w", c.MetricsAddress, err)
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls: give both cert and key, or neither")
	}
	if !isAccountID(c.AccountID) {
		return fmt.Errorf("account-id: %q is not 12 digits", c.AccountID)
	}
	if c.Audit.MaxBytes < 0 || c.Audit.MaxBytes > 0 && c.Audit.MaxBytes < 1<<20 {
		return fmt.Errorf("audit.max-bytes: %d, want at least 1048576 (1 MiB)", c.Audit.MaxBytes)
	}
	if c.Audit.Keep < 0 {
		return fmt.Errorf("audit.keep: %d is negative", c.Audit.Keep)
	}
	if c.MaxClockSkew < 0 {
		return fmt.Errorf("max-clock-skew: %s is negative", c.MaxClockSkew)
	}
	if c.MaxFlowLogs < 0 {
		return fmt.Errorf("max-flow-logs: %d is negative", c.MaxFlowLogs)
	}
	if _, err := parseInventoryExpiry(c.InventoryExpiry); err != nil {
		return fmt.Errorf("inventory-expiry: %w", err)
	}
	if u := c.Firehose.S3EndpointURL; u != "" && u != "aws" {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
			return fmt.Errorf("firehose.s3-endpoint-url: %q: want http://host[:port], https://host[:port] or aws", u)
		}
	}
	seen := map[string]bool{}
	for i, k := range c.AccessKeys {
		if !isAccessKeyID(k.AccessKeyID) {
			return fmt.Errorf("access-keys[%d].access-key-id: %q is not 16 to 128 upper-case letters and digits", i, k.AccessKeyID)
		}
		if len(k.SecretAccessKey) < 16 {
			return fmt.Errorf("access-keys[%d].secret-access-key: shorter than 16 characters", i)
		}
		if seen[k.AccessKeyID] {
			return fmt.Errorf("access-keys[%d].access-key-id: %s is given twice", i, k.AccessKeyID)
		}
		seen[k.AccessKeyID] = true
	}
	return nil
}

// InventoryExpiryDuration is inventory-expiry as a duration; 0 means
// never (and an invalid value, which Validate refuses).
func (c Config) InventoryExpiryDuration() time.Duration {
	d, _ := parseInventoryExpiry(c.InventoryExpiry)
	return d
}

// parseInventoryExpiry reads an inventory-expiry: "" is the default,
// "0" and "never" are 0.
func parseInventoryExpiry(s string) (time.Duration, error) {
	switch s {
	case "":
		s = DefaultInventoryExpiry
	case "0", "never":
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (30m, 1h, 24h), 0 or never", s)
	}
	if d == 0 {
		return 0, nil
	}
	if d < MinInventoryExpiry {
		return 0, fmt.Errorf("%s: want at least %s (agents call every 30 s), or 0/never to keep agents forever", s, MinInventoryExpiry)
	}
	return d, nil
}

// LoadConfig reads and validates the configuration file at path. A file
// with access keys that other users may read is refused: its secrets
// would be anyone's.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load server config: %w", err)
	}
	var c Config
	if err := yaml.UnmarshalWithOptions(bytes.TrimSpace(data), &c, yaml.Strict()); err != nil {
		return Config{}, fmt.Errorf("load server config %s: %s", path, yaml.FormatError(err, false, true))
	}
	if len(c.AccessKeys) > 0 {
		fi, err := os.Stat(path)
		if err != nil {
			return Config{}, fmt.Errorf("load server config: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return Config{}, fmt.Errorf("load server config %s: the file holds secret access keys but its mode is %#o: other users can read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
	}
	c = c.Defaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("load server config %s: %w", path, err)
	}
	return c, nil
}
