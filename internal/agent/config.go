// Package agent runs flowlog on a live Linux host: it reads the agent's
// configuration, discovers the host's interfaces (and those of other
// network namespaces) and follows them over netlink, attaches the capture
// source to every interface a flow log covers, drains the source about
// once a second into one flow table per flow log, closes windows on the
// wall clock, and hands records through a spool to each destination. It
// serves /metrics and /healthz, reloads its configuration on request, and
// flushes every open record when stopped.
package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	"github.com/flowlog/flowlog/internal/capture/afpacket"
	"github.com/flowlog/flowlog/internal/capture/ebpf"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/parquet"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/kafka"
	"github.com/flowlog/flowlog/internal/spool"
)

// Config is the agent's configuration file (agent.yaml). Every key is
// optional: a file with nothing but a destination works, and Defaults
// fills in the rest. Unknown keys are errors naming the key and its line.
type Config struct {
	// Account and location of the interfaces (spec §1); they win over
	// the inventory file's top-level values.
	AccountID  string `yaml:"account-id,omitempty"`
	Region     string `yaml:"region,omitempty"`
	AZID       string `yaml:"az-id,omitempty"`
	VPCID      string `yaml:"vpc-id,omitempty"`
	InstanceID string `yaml:"instance-id,omitempty"`
	// Inventory is a YAML inventory file pinning ids and addresses.
	Inventory string `yaml:"inventory,omitempty"`

	// Source is the capture source: ebpf (default) or afpacket.
	Source string `yaml:"source"`
	// Netns lists network namespaces to capture in besides the agent's
	// own: names in /run/netns or paths (/proc/PID/ns/net), or "all" for
	// every namespace in /run/netns, also those created later. A single
	// name may be given as a string.
	Netns Netns `yaml:"netns,omitempty"`
	// Interfaces filters links by name (shell patterns, as in path.Match).
	Interfaces Interfaces `yaml:"interfaces"`

	// MetricsAddress is where /metrics and /healthz are served; "" or
	// "none" serves nothing.
	MetricsAddress string `yaml:"metrics-address"`
	// Spool is where closed records wait for their destination.
	Spool Spool `yaml:"spool"`
	// Exclusions leaves out the traffic AWS does not log (instance
	// metadata, time service, DNS resolver, DHCP).
	Exclusions *bool `yaml:"exclusions"`
	// NAT fills pkt-srcaddr and pkt-dstaddr of connections the host
	// translates, from conntrack.
	NAT *bool `yaml:"nat"`
	// DrainInterval is how often the source's counts are collected and
	// windows are closed.
	DrainInterval time.Duration `yaml:"drain-interval"`
	// ShutdownTimeout bounds how long SIGTERM waits for destinations to
	// take the last records; what they did not take stays in the spool.
	ShutdownTimeout time.Duration `yaml:"shutdown-timeout"`
	Log             Log           `yaml:"log"`

	AFPacket afpacket.Config `yaml:"afpacket"`
	EBPF     ebpf.Config     `yaml:"ebpf"`

	FlowLogs []FlowLog `yaml:"flow-logs"`

	// Server makes the agent follow a `flowlog serve` control plane: it
	// registers the interfaces it discovers there and runs the flow logs
	// the server defines for them (then flow-logs must be empty).
	Server *Server `yaml:"server,omitempty"`
}

// Netns is a list of namespaces that also accepts a single string.
type Netns []string

// UnmarshalYAML accepts a string or a list of strings.
func (n *Netns) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*n = Netns{one}
		return nil
	}
	var list []string
	if err := unmarshal(&list); err != nil {
		return errors.New("netns: want a name, a path, all, or a list of them")
	}
	*n = list
	return nil
}

// All reports whether every namespace is followed.
func (n Netns) All() bool { return slices.Contains(n, "all") }

// Interfaces selects links by name.
type Interfaces struct {
	// Include, when not empty, limits capture to links matching one of
	// the patterns.
	Include []string `yaml:"include,omitempty"`
	// Exclude leaves out links matching one of the patterns; the default
	// is [lo].
	Exclude []string `yaml:"exclude"`
}

// Spool configures the on-disk spool in front of every destination.
type Spool struct {
	// Dir holds one spool per flow log (Dir/<flow log id>); "none"
	// writes to destinations directly (records a destination cannot take
	// at once are then reported as SKIPDATA).
	Dir      string        `yaml:"dir"`
	MaxBytes int64         `yaml:"max-bytes"`
	Sync     string        `yaml:"sync"`
	Retry    time.Duration `yaml:"retry-max"`
}

// Log configures the agent's own log on standard error.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// FlowLog is one flow log (spec §1): resource, traffic type, format,
// interval and destination.
type FlowLog struct {
	// ID is fl- and 17 hex digits; by default derived from the flow log's
	// definition, so it stays the same across restarts.
	ID string `yaml:"id,omitempty"`
	// Resource is what the flow log covers: vpc (every interface of the
	// host), a vpc-, subnet- or eni- id (as the inventory resolves them),
	// or one link by name: NAME, or NETNS/NAME for a link in a namespace.
	Resource    string `yaml:"resource"`
	TrafficType string `yaml:"traffic-type"`
	// Format is "default" or a list of ${field} tokens.
	Format string `yaml:"format"`
	// Interval is the aggregation interval: 60 or 600 seconds.
	Interval int64 `yaml:"interval"`
	// Destination is a directory (or file:///path), s3://bucket/prefix, or
	// another kind sink.ParseDestination knows.
	Destination string `yaml:"destination"`
	// FileFormat of object destinations (directory, S3): plain-text
	// (gzip'd text with a header line) or parquet (.log.parquet), and the
	// Parquet compression: gzip (as AWS) or zstd.
	FileFormat         string `yaml:"file-format"`
	ParquetCompression string `yaml:"parquet-compression,omitempty"`
	HivePartitions     bool   `yaml:"hive-compatible-partitions,omitempty"`
	PerHourPartition   bool   `yaml:"per-hour-partition,omitempty"`
	MaxObjectBytes     int64  `yaml:"max-object-bytes,omitempty"`
	// EndpointURL and S3PathStyle point an S3 destination at an
	// S3-compatible server (http://host:port, path-style addressing)
	// instead of AWS; EndpointURL also points a Firehose destination at
	// another implementation of the Firehose API (`flowlog serve`).
	EndpointURL string `yaml:"endpoint-url,omitempty"`
	S3PathStyle bool   `yaml:"s3-path-style,omitempty"`
	// MaxFlows is the flow table's capacity; flows beyond it are counted
	// as SKIPDATA.
	MaxFlows int `yaml:"max-flows"`

	// DeliveryRole is the delivery role (DeliverLogsPermissionArn) of a
	// cloud-watch-logs flow log a server defines: its destination is
	// signed with the role's sessions (Credentials). Not configurable.
	DeliveryRole string `yaml:"-"`
	// Credentials, when set, sign the destination's calls instead of the
	// agent's own keys: the agent sets them on the definition it hands
	// to the opener of a flow log with a DeliveryRole (never on the
	// definition it keeps, which reloads compare).
	Credentials aws.CredentialsProvider `yaml:"-"`
}

// File formats of object destinations, as CreateFlowLogs names them
// (DestinationOptions.FileFormat).
const (
	FileFormatText    = "plain-text"
	FileFormatParquet = "parquet"
)

// Defaults of a Config.
const (
	DefaultSource          = "ebpf"
	DefaultMetricsAddress  = "127.0.0.1:9791"
	DefaultSpoolDir        = "/var/lib/flowlog/spool"
	DefaultDrainInterval   = time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultInterval        = 600
	DefaultResource        = "vpc"
)

// Defaults returns c with every unset key set to its default. It does not
// touch c.
func (c Config) Defaults() Config {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Interfaces.Exclude == nil {
		c.Interfaces.Exclude = []string{"lo"}
	}
	if c.MetricsAddress == "" {
		c.MetricsAddress = DefaultMetricsAddress
	}
	if c.Spool.Dir == "" {
		c.Spool.Dir = DefaultSpoolDir
	}
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = spool.DefaultMaxBytes
	}
	if c.Spool.Sync == "" {
		c.Spool.Sync = string(spool.SyncAdvance)
	}
	if c.Spool.Retry == 0 {
		c.Spool.Retry = spool.DefaultRetryMax
	}
	if c.Exclusions == nil {
		c.Exclusions = ptr(true)
	}
	if c.NAT == nil {
		c.NAT = ptr(true)
	}
	if c.DrainInterval == 0 {
		c.DrainInterval = DefaultDrainInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	c.AFPacket = afpacketDefaults(c.AFPacket)
	c.EBPF = ebpfDefaults(c.EBPF)
	logs := make([]FlowLog, len(c.FlowLogs))
	for i, fl := range c.FlowLogs {
		logs[i] = fl.defaults()
	}
	c.FlowLogs = logs
	if c.Server != nil {
		srv := c.Server.defaults(c.Spool.Dir)
		c.Server = &srv
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func afpacketDefaults(a afpacket.Config) afpacket.Config {
	d := afpacket.DefaultConfig()
	if a.BlockSize == 0 {
		a.BlockSize = d.BlockSize
	}
	if a.Blocks == 0 {
		a.Blocks = d.Blocks
	}
	if a.SnapLen == 0 {
		a.SnapLen = d.SnapLen
	}
	if a.BlockTimeout == 0 {
		a.BlockTimeout = d.BlockTimeout
	}
	return a
}

func ebpfDefaults(e ebpf.Config) ebpf.Config {
	d := ebpf.DefaultConfig()
	if e.Window == 0 {
		e.Window = d.Window
	}
	if e.MaxFlows == 0 {
		e.MaxFlows = d.MaxFlows
	}
	if e.MaxInterfaces == 0 {
		e.MaxInterfaces = d.MaxInterfaces
	}
	if e.Fragments == 0 {
		e.Fragments = d.Fragments
	}
	if e.Reject == "" {
		e.Reject = d.Reject
	}
	if e.Attach == "" {
		e.Attach = d.Attach
	}
	return e
}

func (fl FlowLog) defaults() FlowLog {
	if fl.Resource == "" {
		fl.Resource = DefaultResource
	}
	if fl.TrafficType == "" {
		fl.TrafficType = string(pipeline.TrafficAll)
	}
	fl.TrafficType = strings.ToUpper(fl.TrafficType)
	if fl.Format == "" {
		fl.Format = "default"
	}
	if fl.Interval == 0 {
		fl.Interval = DefaultInterval
	}
	if fl.MaxFlows == 0 {
		fl.MaxFlows = aggregate.DefaultMaxFlows
	}
	if fl.MaxObjectBytes == 0 {
		fl.MaxObjectBytes = sink.DefaultMaxObjectBytes
	}
	if fl.FileFormat == "" {
		fl.FileFormat = FileFormatText
	}
	if fl.FileFormat == FileFormatParquet && fl.ParquetCompression == "" {
		fl.ParquetCompression = string(parquet.Gzip)
	}
	return fl
}

// KeyError is a configuration error at one key; Line is its line in the
// file when known.
type KeyError struct {
	Key  string // e.g. flow-logs[0].interval
	Line int
	Err  error
}

func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %v", e.Line, e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// flowLogIDRE and quotedRE are compiled on first use, not at package
// initialisation, which every flowlog command (read included) pays for.
var flowLogIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^fl-[0-9a-f]{17}$`) })

// Validate checks a configuration with defaults applied and returns every
// problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
	}
	for _, f := range []struct{ key, field, id string }{
		{"account-id", "account-id", c.AccountID}, {"vpc-id", "vpc-id", c.VPCID}, {"instance-id", "instance-id", c.InstanceID},
	} {
		if err := inventory.ValidateID(f.field, f.id); err != nil {
			errs = append(errs, &KeyError{Key: f.key, Err: err})
		}
	}
	switch c.Source {
	case "ebpf", "afpacket":
	default:
		bad("source", "%q: want ebpf or afpacket", c.Source)
	}
	for i, n := range c.Netns {
		switch {
		case n == "all":
		case n == "" || n == "." || n == ".." || (!strings.HasPrefix(n, "/") && strings.Contains(n, "/")):
			bad(fmt.Sprintf("netns[%d]", i), "%q: want a name in /run/netns, an absolute path, or all", n)
		}
	}
	for i, p := range slices.Concat(c.Interfaces.Include, c.Interfaces.Exclude) {
		if _, err := filepath.Match(p, ""); err != nil {
			key := fmt.Sprintf("interfaces.include[%d]", i)
			if i >= len(c.Interfaces.Include) {
				key = fmt.Sprintf("interfaces.exclude[%d]", i-len(c.Interfaces.Include))
			}
			bad(key, "%q: %v", p, err)
		}
	}
	if a := c.MetricsAddress; a != "none" {
		if _, port, err := splitHostPort(a); err != nil || port == "" {
			bad("metrics-address", "%q: want host:port (or none)", a)
		}
	}
	if c.Spool.Dir != "none" && !filepath.IsAbs(c.Spool.Dir) && !strings.HasPrefix(c.Spool.Dir, ".") {
		// Relative paths are allowed, but must not be mistaken for a word.
		if strings.ContainsAny(c.Spool.Dir, " \t") {
			bad("spool.dir", "%q: not a path", c.Spool.Dir)
		}
	}
	if c.Spool.MaxBytes < spool.MinMaxBytes {
		bad("spool.max-bytes", "%d: want at least %d", c.Spool.MaxBytes, spool.MinMaxBytes)
	}
	switch spool.SyncPolicy(c.Spool.Sync) {
	case spool.SyncAdvance, spool.SyncAlways, spool.SyncNone:
	default:
		bad("spool.sync", "%q: want advance, always or none", c.Spool.Sync)
	}
	if c.Spool.Retry < spool.DefaultRetryInitial {
		bad("spool.retry-max", "%s: want at least %s", c.Spool.Retry, spool.DefaultRetryInitial)
	}
	if c.DrainInterval < 100*time.Millisecond || c.DrainInterval > 10*time.Second {
		bad("drain-interval", "%s: want 100ms to 10s", c.DrainInterval)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown-timeout", "%s: must not be negative", c.ShutdownTimeout)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q: want text or json", c.Log.Format)
	}
	if err := c.AFPacket.Validate(); err != nil {
		bad("afpacket", "%v", err)
	}
	if err := c.EBPF.Validate(); err != nil {
		bad("ebpf", "%v", err)
	}
	if c.Server != nil {
		errs = append(errs, c.Server.validate()...)
		if len(c.FlowLogs) > 0 {
			bad("flow-logs", "not with server: the agent runs the flow logs the server defines (aws ec2 create-flow-logs); remove flow-logs (and --dest), or server")
		}
	} else if len(c.FlowLogs) == 0 {
		bad("flow-logs", "no flow log: add one (or run with --dest)")
	}
	ids := map[string]int{}
	for i, fl := range c.FlowLogs {
		key := func(k string) string { return fmt.Sprintf("flow-logs[%d].%s", i, k) }
		if fl.ID != "" && !flowLogIDRE().MatchString(fl.ID) {
			bad(key("id"), "%q: want fl- followed by 17 lowercase hex digits", fl.ID)
		}
		if err := validResource(fl.Resource); err != nil {
			bad(key("resource"), "%v", err)
		}
		if _, err := pipeline.ParseTrafficType(fl.TrafficType); err != nil {
			bad(key("traffic-type"), "%v", err)
		}
		if _, err := parseFormat(fl.Format); err != nil {
			bad(key("format"), "%v", err)
		}
		if fl.Interval != 60 && fl.Interval != 600 {
			bad(key("interval"), "%d: want 60 or 600 seconds", fl.Interval)
		}
		var kind sink.DestinationKind
		if fl.Destination == "" {
			bad(key("destination"), "not set: want a directory, file:///path, s3://bucket/prefix, kafka://brokers/topic, cloudwatch://log-group or firehose://stream")
		} else if k, loc, err := sink.ParseDestination(fl.Destination); err != nil {
			bad(key("destination"), "%v", err)
		} else {
			kind = k
			if k == sink.DestinationKafka {
				// Brokers, topic and the TLS/SASL query.
				if _, err := kafka.ParseTarget(loc); err != nil {
					bad(key("destination"), "%v", err)
				}
			}
		}
		objects := kind == sink.DestinationFile || kind == sink.DestinationS3
		switch fl.FileFormat {
		case FileFormatText:
		case FileFormatParquet:
			if kind != "" && !objects {
				bad(key("file-format"), "parquet: only directory and s3 destinations write objects")
			}
		default:
			bad(key("file-format"), "%q: want plain-text or parquet", fl.FileFormat)
		}
		if fl.ParquetCompression != "" {
			if _, err := parquet.ParseCodec(fl.ParquetCompression); err != nil {
				bad(key("parquet-compression"), "%v", err)
			} else if fl.FileFormat != FileFormatParquet {
				bad(key("parquet-compression"), "needs file-format: parquet")
			}
		}
		if fl.EndpointURL != "" && kind != "" && kind != sink.DestinationS3 && kind != sink.DestinationFirehose {
			bad(key("endpoint-url"), "endpoint-url is for s3:// and firehose:// destinations")
		}
		if fl.S3PathStyle && kind != "" && kind != sink.DestinationS3 {
			bad(key("s3-path-style"), "s3-path-style is for s3:// destinations")
		}
		if fl.MaxFlows < 1 || fl.MaxFlows > aggregate.MaxMaxFlows {
			bad(key("max-flows"), "%d: want 1 to %d", fl.MaxFlows, aggregate.MaxMaxFlows)
		}
		if fl.MaxObjectBytes < 1 {
			bad(key("max-object-bytes"), "%d: want at least 1", fl.MaxObjectBytes)
		}
		if fl.ID != "" {
			if j, dup := ids[fl.ID]; dup {
				bad(key("id"), "%s: also the id of flow-logs[%d]", fl.ID, j)
			}
			ids[fl.ID] = i
		}
	}
	return errors.Join(errs...)
}

func splitHostPort(a string) (host, port string, err error) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return "", "", errors.New("no port")
	}
	host, port = a[:i], a[i+1:]
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", err
	}
	return host, port, nil
}

// parseFormat accepts "default" or a custom format.
func parseFormat(s string) (*flow.Format, error) {
	if s == "default" {
		return flow.DefaultFormat(), nil
	}
	return flow.ParseFormat(s)
}

// resourceKind tells what a flow log's resource selects.
type resourceKind int

const (
	resourceAll resourceKind = iota
	resourceVPC
	resourceSubnet
	resourceInterfaceID
	resourceLink
)

// parseResource splits a resource into its kind and value (for a link:
// netns and name).
func parseResource(r string) (kind resourceKind, netns, value string) {
	switch {
	case r == "vpc":
		return resourceAll, "", ""
	case strings.HasPrefix(r, "vpc-"):
		return resourceVPC, "", r
	case strings.HasPrefix(r, "subnet-"):
		return resourceSubnet, "", r
	case strings.HasPrefix(r, "eni-"):
		return resourceInterfaceID, "", r
	}
	if ns, name, ok := strings.Cut(r, "/"); ok {
		return resourceLink, ns, name
	}
	return resourceLink, "", r
}

func validResource(r string) error {
	kind, ns, v := parseResource(r)
	switch kind {
	case resourceVPC:
		return inventory.ValidateID("vpc-id", v)
	case resourceSubnet:
		return inventory.ValidateID("subnet-id", v)
	case resourceInterfaceID:
		return inventory.ValidateID("interface-id", v)
	case resourceLink:
		if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ \t:") || strings.Contains(ns, "/") {
			return fmt.Errorf("%q: want vpc, a vpc-, subnet- or eni- id, or an interface name (NAME or NETNS/NAME)", r)
		}
	}
	return nil
}

// Load reads, parses and validates a configuration file, with defaults
// applied. Errors name the key and its line.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return Config{}, err
	}
	if err := c.ReadSecrets(path); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Parse parses and validates configuration YAML, with defaults applied;
// name is used in errors.
func Parse(name string, data []byte) (Config, error) {
	c, err := Decode(name, data)
	if err != nil {
		return Config{}, err
	}
	c = c.Defaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, WithLines(data, err))
	}
	return c, nil
}

// Decode parses configuration YAML strictly (unknown keys are errors that
// name the key and its line) without applying defaults or validating.
func Decode(name string, data []byte) (c Config, err error) {
	// The YAML decoder panics on some malformed input (a tagged scalar
	// where a list belongs); that is a bad file, not a crash.
	defer func() {
		if p := recover(); p != nil {
			c, err = Config{}, fmt.Errorf("config %s: not a configuration the YAML decoder can read (%v)", name, p)
		}
	}()
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalWithOptions(data, &c, yaml.DisallowUnknownField()); err != nil {
			msg := yaml.FormatError(err, false, true)
			if !strings.HasPrefix(msg, "[") {
				msg = locate(data, msg)
			}
			return Config{}, fmt.Errorf("config %s: %s", name, msg)
		}
	}
	return c, nil
}

// quotedRE finds the value an unpositioned decoding error quotes (as in
// time: invalid duration "2 apples").
var quotedRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"([^"]+)"\s*$`) })

// locate prefixes an error the YAML decoder gave without a position (a
// value its type rejected) with the line and key of the value it quotes.
func locate(data []byte, msg string) string {
	m := quotedRE().FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	for i, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if ok && strings.Trim(strings.TrimSpace(val), `"'`) == m[1] {
			key = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(key), "- "))
			return fmt.Sprintf("line %d: %s: %s", i+1, key, msg)
		}
	}
	return msg
}

// WithLines adds to each KeyError in err the line of its key in data (the
// file the configuration came from).
func WithLines(data []byte, err error) error {
	if err == nil {
		return nil
	}
	file, perr := parser.ParseBytes(data, 0)
	var errs []error
	for _, e := range unjoin(err) {
		var ke *KeyError
		if perr == nil && errors.As(e, &ke) && ke.Line == 0 {
			if p, err := yaml.PathString("$." + yamlPath(ke.Key)); err == nil {
				if n, err := p.FilterFile(file); err == nil && n != nil {
					ke.Line = n.GetToken().Position.Line
				}
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// yamlPath quotes the keys of a dotted key that contain dashes.
func yamlPath(key string) string {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		name, index, _ := strings.Cut(p, "[")
		if strings.Contains(name, "-") {
			name = "'" + name + "'"
		}
		if index != "" {
			name += "[" + index
		}
		parts[i] = name
	}
	return strings.Join(parts, ".")
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Dump renders the configuration as YAML.
func (c Config) Dump() ([]byte, error) {
	return yaml.MarshalWithOptions(c, yaml.Indent(2), yaml.IndentSequence(true))
}
