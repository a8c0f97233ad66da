package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/flowlog/flowlog/internal/agent"
)

// agentOptions are the flags of `flowlog agent`.
type agentOptions struct {
	config     string
	check      bool
	dumpConfig bool

	// A flow log from flags.
	dest, resource, trafficType, format, flowLogID string
	interval                                       int64
	maxFlows                                       int
	fileFormat, endpointURL                        string
	pathStyle                                      bool

	// Settings that override the file's.
	source, metricsAddress, spoolDir, inventory string
	accountID, region, azID                     string
	netns, include, exclude                     []string
	logLevel, logFormat                         string
}

func newAgentCmd(io streams) *cobra.Command {
	o := agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Capture live traffic and write flow log records continuously",
		Long: `Run the flow log agent: capture the traffic of this host's interfaces (and of
other network namespaces), aggregate it into AWS VPC Flow Logs records, and
deliver them through an on-disk spool to each flow log's destination.

Configure it with a YAML file (--config; see 'flowlog agent --dump-config' for
every key and its default) or with flags alone (--dest and the flow log flags).
Flags given together with --config override the file's settings, and --dest
adds one more flow log.

With a server: section the agent follows a 'flowlog serve' control plane: it
registers the interfaces it discovers there, runs the flow logs created with
'aws ec2 create-flow-logs' for them, and reports their delivery status; while
the server is unreachable it keeps running the flow logs it last received.

Signals: SIGTERM and SIGINT flush every open record (the current window's too)
and exit; SIGHUP reloads the configuration file (flow logs added or removed
without losing the others' records).

Needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN for the eBPF source
(--source ebpf, the default); CAP_NET_RAW for --source afpacket.`,
		Example: `  sudo flowlog agent --dest /var/log/flowlogs --interval 60
  sudo flowlog agent --config /etc/flowlog/agent.yaml
  flowlog agent --config agent.yaml --check
  sudo flowlog agent --source afpacket --netns all --dest ./flowlogs`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd, io, &o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "agent configuration `file` (YAML)")
	f.BoolVar(&o.check, "check", false, "validate the configuration, show the flow logs and interfaces it covers, and exit")
	f.BoolVar(&o.dumpConfig, "dump-config", false, "print the effective configuration (defaults filled in) and exit")
	f.StringVar(&o.dest, "dest", "", "add a flow log writing to this `destination` (directory, file:///path, s3://bucket/prefix)")
	f.StringVar(&o.resource, "resource", "vpc", "with --dest: what the flow log covers: vpc, a vpc-/subnet-/eni- id, or an interface NAME or NETNS/NAME")
	f.StringVar(&o.trafficType, "traffic-type", "ALL", "with --dest: records to keep by action: ACCEPT, REJECT or ALL")
	f.StringVar(&o.format, "format", "default", "with --dest: log `format` (default, or ${field} tokens)")
	f.Int64Var(&o.interval, "interval", 600, "with --dest: maximum aggregation interval in `seconds`: 60 or 600")
	f.IntVar(&o.maxFlows, "max-flows", 0, "with --dest: flow table capacity (default 1048576); flows beyond it are reported as SKIPDATA")
	f.StringVar(&o.flowLogID, "flow-log-id", "", "with --dest: flow log `id` (fl-…); default derived from the flow log and the host")
	f.StringVar(&o.fileFormat, "file-format", "plain-text", "with a directory or s3 --dest: object `format`, plain-text or parquet")
	f.StringVar(&o.endpointURL, "endpoint-url", "", "with an s3 or firehose --dest: `URL` of an S3- or Firehose-compatible server instead of AWS")
	f.BoolVar(&o.pathStyle, "s3-path-style", false, "with an s3 --dest: path-style addressing (endpoint/bucket/key)")
	f.StringVar(&o.source, "source", "", "capture source: ebpf (default) or afpacket")
	f.StringSliceVar(&o.netns, "netns", nil, "also capture in these network `namespaces` (names in /run/netns, paths, or all)")
	f.StringSliceVar(&o.include, "interface", nil, "capture only interfaces whose names match these `patterns`")
	f.StringSliceVar(&o.exclude, "exclude-interface", nil, "never capture interfaces whose names match these `patterns` (default lo)")
	f.StringVar(&o.metricsAddress, "metrics-address", "", "serve /metrics and /healthz on `host:port` (default 127.0.0.1:9791; none to disable)")
	f.StringVar(&o.spoolDir, "spool-dir", "", "spool `directory` (default /var/lib/flowlog/spool; none to disable)")
	f.StringVar(&o.inventory, "inventory", "", "YAML inventory `file` pinning ids and addresses of interfaces")
	f.StringVar(&o.accountID, "account-id", "", "account id of the interfaces (12 digits; default 000000000000)")
	f.StringVar(&o.region, "region", "", "region (default local)")
	f.StringVar(&o.azID, "az-id", "", "availability zone id (default local-az1)")
	f.StringVar(&o.logLevel, "log-level", "", "log level: debug, info, warn, error (default info)")
	f.StringVar(&o.logFormat, "log-format", "", "log format: text or json (default text)")
	return cmd
}

// agentConfig builds the configuration from the file and the flags.
func (o *agentOptions) agentConfig(cmd *cobra.Command) (agent.Config, error) {
	var cfg agent.Config
	var data []byte
	if o.config != "" {
		// Validate only after the flags are applied: they may complete it.
		var err error
		if data, err = os.ReadFile(o.config); err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if cfg, err = agent.Decode(o.config, data); err != nil {
			return cfg, err
		}
	}
	changed := cmd.Flags().Changed
	set := func(flag string, dst *string, v string) {
		if changed(flag) {
			*dst = v
		}
	}
	set("source", &cfg.Source, o.source)
	set("metrics-address", &cfg.MetricsAddress, o.metricsAddress)
	set("spool-dir", &cfg.Spool.Dir, o.spoolDir)
	set("inventory", &cfg.Inventory, o.inventory)
	set("account-id", &cfg.AccountID, o.accountID)
	set("region", &cfg.Region, o.region)
	set("az-id", &cfg.AZID, o.azID)
	set("log-level", &cfg.Log.Level, o.logLevel)
	set("log-format", &cfg.Log.Format, o.logFormat)
	if changed("netns") {
		cfg.Netns = o.netns
	}
	if changed("interface") {
		cfg.Interfaces.Include = o.include
	}
	if changed("exclude-interface") {
		cfg.Interfaces.Exclude = o.exclude
	}
	if o.dest != "" {
		cfg.FlowLogs = append(cfg.FlowLogs, agent.FlowLog{
			ID: o.flowLogID, Resource: o.resource, TrafficType: o.trafficType, Format: o.format,
			Interval: o.interval, Destination: o.dest, MaxFlows: o.maxFlows,
			FileFormat: o.fileFormat, EndpointURL: o.endpointURL, S3PathStyle: o.pathStyle,
		})
	} else {
		for _, fl := range []string{"resource", "traffic-type", "format", "interval", "max-flows", "flow-log-id", "file-format", "endpoint-url", "s3-path-style"} {
			if changed(fl) {
				return cfg, usageError{fmt.Errorf("--%s describes the flow log of --dest: add --dest", fl)}
			}
		}
	}
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		if o.config == "" {
			return cfg, usageError{fmt.Errorf("flags: %w", err)}
		}
		return cfg, fmt.Errorf("config %s: %w", o.config, agent.WithLines(data, err))
	}
	if err := cfg.ReadSecrets(o.config); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func runAgent(cmd *cobra.Command, io streams, o *agentOptions) error {
	cfg, err := o.agentConfig(cmd)
	if err != nil {
		return err
	}
	if o.dumpConfig {
		b, err := cfg.Dump()
		if err != nil {
			return err
		}
		_, err = io.out.Write(b)
		return err
	}
	log := newLogger(io, cfg)
	deps := agent.Deps{Logger: log, Openers: agentOpeners(cfg.Server), Version: versionString()}
	if o.check {
		return checkAgent(io, cfg, deps)
	}

	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	a, err := agent.New(cfg, deps)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-a.Done():
			return a.Stop()
		case s := <-sigs:
			if s != syscall.SIGHUP {
				log.Info("signal: stopping", "signal", s.String())
				return a.Stop()
			}
			if o.config == "" {
				log.Warn("SIGHUP: no configuration file to reload (started with flags only)")
				continue
			}
			next, err := o.agentConfig(cmd)
			if err != nil {
				log.Error("SIGHUP: configuration not reloaded", "error", err)
				continue
			}
			if _, err := a.Reload(next); err != nil {
				log.Error("SIGHUP: configuration not reloaded", "error", err)
			}
		}
	}
}

func newLogger(io streams, cfg agent.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(io.err, opts))
	}
	return slog.New(slog.NewTextHandler(io.err, opts))
}

// checkAgent prints what the configuration covers on this host.
func checkAgent(io streams, cfg agent.Config, deps agent.Deps) error {
	plan, err := agent.MakePlan(cfg, deps)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "configuration OK: source %s, %d flow log(s)\n", cfg.Source, len(plan.FlowLogs))
	if cfg.Server != nil {
		fmt.Fprintf(io.out, "flow logs: those the server %s defines for the interfaces below (not checked here)\n", cfg.Server.URL)
	}
	fmt.Fprintln(io.out)
	tw := tabwriter.NewWriter(io.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW LOG\tRESOURCE\tTRAFFIC\tINTERVAL\tDESTINATION")
	for _, fl := range plan.FlowLogs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", fl.ID, fl.Def.Resource, fl.Def.TrafficType, fl.Def.Interval, fl.Def.Destination)
	}
	tw.Flush()
	fmt.Fprintln(io.out)
	tw = tabwriter.NewWriter(io.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NETNS\tINTERFACE\tINTERFACE ID\tSUBNET ID\tPRIMARY IPV4\tFLOW LOGS")
	for _, l := range plan.Links {
		logs := strings.Join(l.FlowLogs, ",")
		switch {
		case !l.Selected:
			logs = "(excluded by interfaces patterns)"
		case logs == "":
			logs = "(not covered)"
		}
		ns, primary := l.Link.Netns, "-"
		if ns == "" {
			ns = "-"
		}
		if l.Resolved.PrimaryIPv4.IsValid() {
			primary = l.Resolved.PrimaryIPv4.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ns, l.Link.Name, l.Resolved.InterfaceID, l.Resolved.SubnetID, primary, logs)
	}
	tw.Flush()
	for _, e := range plan.Errors {
		fmt.Fprintf(io.err, "flowlog: warning: %v\n", e)
	}
	return nil
}
