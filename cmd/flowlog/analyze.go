package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// analyzeOptions are the flags every analyze subcommand takes.
type analyzeOptions struct {
	format        string
	since, until  string
	where         string
	output        string
	workers       int
	progress      string
	endpointURL   string
	region        string
	noSignRequest bool

	now func() time.Time // the clock --since and --until count back from; tests pin it
}

func newAnalyzeCmd(io streams) *cobra.Command {
	o := &analyzeOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Answer questions about flow logs: connections, rejected traffic, top talkers",
		Long: `Read flow logs — written by flowlog or downloaded from AWS — and answer the questions
people open them for: did the TCP handshake complete, who initiated, who sent the RST
or the FIN (connections), what was rejected (rejected), who talks most (top), which
records match a condition (filter), and what the logs cover, including the windows
where records were lost (summary).

Inputs are files (plain text with a header line, .gz, Parquet, CloudWatch Logs
subscription JSON), directories (walked; in the AWS layout only the folders and
objects whose date, hour and name time can hold records in --since/--until are
read), s3://bucket/prefix (same pruning; credentials as the AWS CLI finds them),
CloudWatch Logs log groups (cloudwatch://GROUP[/STREAM-PREFIX] or the group's ARN:
its events in the --since/--until range, one record line each, in the --format or
the default format), Kafka topics (kafka://host:port[,host:port]/topic: the messages
there when the command starts — and, with connections --follow, those produced
later — from the oldest kept or the first produced at --since, one record line
each) and - for standard input. Records may come in any order and split across files and
aggregation windows.

Tables are aligned on a terminal and tab-separated otherwise (RFC 3339 times);
--output json writes one JSON object per line, --output csv CSV.

Exit status: 0 on success, also when nothing matched; 1 when an input could not be
read, no line of the input was a flow log record, or the command was interrupted
(the results of what was read are printed first); 2 for usage errors.`,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.format, "format", "", "log `format` of records without a header line (${field} tokens or bare field names); default: the header, else the default format")
	f.StringVar(&o.since, "since", "", "only records that end at or after this `time`: a duration back from now (2h, 30m, 3d), RFC 3339, a date or Unix seconds")
	f.StringVar(&o.until, "until", "", "only records that start at or before this `time` (same forms as --since)")
	f.StringVar(&o.where, "where", "", "only records matching this `expression`, e.g. 'action = \"REJECT\" and dstport in (22, 3389)'")
	f.StringVarP(&o.output, "output", "o", "", "output `format`: table (aligned on a terminal, TSV otherwise), json (JSON lines) or csv; filter: text, json or csv")
	f.IntVarP(&o.workers, "workers", "j", 0, "inputs read at once (default: one per CPU)")
	f.StringVar(&o.progress, "progress", "auto", "progress bar on standard error: auto (when it is a terminal and the input is large), always or never")
	f.StringVar(&o.endpointURL, "endpoint-url", "", "endpoint `URL` of s3:// inputs (S3-compatible, path-style addressing, e.g. http://127.0.0.1:7070) and of log group inputs (a flowlog serve)")
	f.StringVar(&o.region, "region", "", "AWS region of the bucket or cloudwatch:// log group (default: AWS_REGION, the shared config; buckets: else us-east-1)")
	f.BoolVar(&o.noSignRequest, "no-sign-request", false, "read s3:// inputs without credentials (public buckets)")
	cmd.AddCommand(newConnectionsCmd(io, o), newRejectedCmd(io, o), newTopCmd(io, o), newFilterCmd(io, o), newSummaryCmd(io, o))
	return cmd
}

// analyzeRun is what every subcommand needs once its flags are read.
type analyzeRun struct {
	ctx    context.Context
	stop   func()
	rc     analyze.ReadConfig
	lister *analyze.Lister
	inputs []analyze.Input
	out    analyze.Output
	io     streams
}

// prepare validates the common flags, lists the inputs and sets up
// Ctrl-C: the first interrupt stops reading and the report prints what was
// read.
func (o *analyzeOptions) prepare(cmd *cobra.Command, io streams, args []string, filter bool, list bool) (*analyzeRun, error) {
	mode := o.output
	if mode == "" {
		mode = analyze.ModeTable
		if filter {
			mode = analyze.ModeText
		}
	}
	if err := analyze.CheckMode(mode, filter); err != nil {
		return nil, usageError{err}
	}
	var rc analyze.ReadConfig
	if o.format != "" {
		f, err := flow.ParseHeader(o.format)
		if err != nil {
			return nil, usageError{fmt.Errorf("--format: %w", err)}
		}
		rc.Format = f
	}
	now := o.now()
	for _, t := range []struct {
		flag, val string
		dst       *time.Time
	}{{"--since", o.since, &rc.Range.Since}, {"--until", o.until, &rc.Range.Until}} {
		if t.val == "" {
			continue
		}
		v, err := analyze.ParseTime(t.val, now)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", t.flag, err)}
		}
		*t.dst = v
	}
	if !rc.Range.Since.IsZero() && !rc.Range.Until.IsZero() && rc.Range.Until.Before(rc.Range.Since) {
		return nil, usageError{fmt.Errorf("--until %s is before --since %s", rc.Range.Until.Format(time.RFC3339), rc.Range.Since.Format(time.RFC3339))}
	}
	if o.where != "" {
		e, err := analyze.ParseExpr(o.where)
		if err != nil {
			var ee *analyze.ExprError
			if errors.As(err, &ee) {
				return nil, usageError{fmt.Errorf("--where: %w\n%s", err, ee.Caret())}
			}
			return nil, usageError{fmt.Errorf("--where: %w", err)}
		}
		rc.Where = e
	}
	if o.workers < 0 {
		return nil, usageError{fmt.Errorf("--workers %d: want 0 (one per CPU) or more", o.workers)}
	}
	rc.Workers = o.workers
	switch o.progress {
	case "auto":
		if isTerminal(io.err) {
			rc.Progress = io.err
		}
	case "always":
		rc.Progress = io.err
		rc.ProgressMinBytes = 1
	case "never":
	default:
		return nil, usageError{fmt.Errorf("--progress %q: want auto, always or never", o.progress)}
	}

	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	r := &analyzeRun{ctx: ctx, stop: stop, rc: rc, io: io}
	r.out = analyze.Output{W: io.out, Mode: mode, Terminal: isTerminal(io.out)}
	r.lister = &analyze.Lister{Stdin: io.in, Range: rc.Range}
	if len(args) == 0 {
		if f, ok := io.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			stop()
			return nil, usageError{errors.New("no input: give files, directories, s3:// prefixes, cloudwatch:// log groups or kafka:// topics (- for standard input)")}
		}
		args = []string{"-"}
	}
	// Log groups and topics have no size for a bar: their count of events
	// shows after a second of reading, at once with --progress always.
	streamDelay := time.Second
	if o.progress == "always" {
		streamDelay = 0
	}
	for _, a := range args {
		if analyze.IsCloudWatch(a) && r.lister.CloudWatch == nil {
			// Only --follow lists as it reads (list is false): its log
			// groups are polled for new events.
			cc := analyze.CloudWatchConfig{EndpointURL: o.endpointURL, Region: o.region, Progress: rc.Progress, ProgressDelay: streamDelay, Follow: !list}
			cw, err := analyze.NewCloudWatch(ctx, cc)
			if err != nil {
				stop()
				return nil, err
			}
			r.lister.CloudWatch = cw
		}
		if strings.HasPrefix(a, analyze.KafkaScheme) && r.lister.Kafka == nil {
			// As log groups: only --follow keeps its topics open.
			r.lister.Kafka = analyze.NewKafka(analyze.KafkaConfig{Progress: rc.Progress, ProgressDelay: streamDelay, Warn: io.err, Follow: !list})
		}
		if strings.HasPrefix(a, "s3://") && r.lister.S3 == nil {
			s3, err := analyze.NewS3(ctx, analyze.S3Config{EndpointURL: o.endpointURL, Region: o.region, NoSignRequest: o.noSignRequest})
			if err != nil {
				stop()
				return nil, err
			}
			r.lister.S3 = s3
		}
	}
	if !list {
		return r, nil
	}
	for _, a := range args {
		err := r.lister.List(ctx, a, func(in analyze.Input) error {
			r.inputs = append(r.inputs, in)
			return nil
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("list %s: %w", a, err)
		}
	}
	return r, nil
}

// finish reports on standard error what the reader of the results should
// know, and turns failures into the exit status.
func (r *analyzeRun) finish(st analyze.Stats, err error, follow bool) error {
	r.stop()
	w := r.io.err
	for _, n := range st.Notes {
		fmt.Fprintf(w, "flowlog: note: %s\n", n)
	}
	if st.SkipData > 0 {
		fmt.Fprintf(w, "flowlog: warning: %d SKIPDATA records: flow records were lost in those windows, so these results have gaps (see 'flowlog analyze summary')\n", st.SkipData)
	}
	if st.SkippedLines > 0 {
		fmt.Fprintf(w, "flowlog: warning: skipped %d unreadable lines:\n", st.SkippedLines)
		for _, e := range st.LineErrors {
			fmt.Fprintf(w, "  %s\n", e)
		}
		if st.SkippedLines > int64(len(st.LineErrors)) {
			fmt.Fprintf(w, "  … and %d more\n", st.SkippedLines-int64(len(st.LineErrors)))
		}
	}
	for _, f := range st.Failed {
		fmt.Fprintf(w, "flowlog: cannot read %s\n", f)
	}
	if err != nil {
		return err
	}
	switch {
	case st.Interrupted && !follow:
		return errors.New("interrupted: the results above cover only what was read before")
	case len(st.Failed) > 0:
		return fmt.Errorf("%d of %d inputs could not be read: the results cover the others", len(st.Failed), len(st.Failed)+st.Inputs)
	case st.Records == 0 && st.SkippedLines > 0:
		return errors.New("no flow log records could be read (give the log format with --format if the input has no header line)")
	}
	return nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// inputArgs is the usage line of the inputs.
const inputArgs = "[file | directory | s3://bucket/prefix | cloudwatch://log-group[/stream-prefix] | kafka://host:port/topic | -]..."

func newConnectionsCmd(io streams, o *analyzeOptions) *cobra.Command {
	var (
		hosts    []string
		ports    []string
		protocol string
		follow   bool
		poll     time.Duration
		idle     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "connections " + inputArgs,
		Short: "One line per TCP conversation: who initiated it and what became of it",
		Long: `Pair the two directions of each conversation (on each interface) across files and
aggregation windows, in whatever order the records come, and say who initiated it
and what became of it.

The initiator is decided by tcp-flags: the side that sent SYN without ACK, or the
other side of the one that sent SYN-ACK; never by record order or port numbers.
Where the flags cannot tell (no SYN in the logs), the initiator is a guess from the
ports (a side on a port below 1024, or the only side on a non-ephemeral port), the
only side that sent anything, or the earlier start — and the initiator_by column
says which.

Verdicts: established (SYN and SYN-ACK, not closed), closed by FIN by client|server|both,
reset by client|server|both, answered by RST (SYN, then RST instead of SYN-ACK), no
answer to SYN, rejected (by a security group or network ACL), reply rejected (the
request was accepted, the reply rejected), still open (neither handshake nor close
in the logs). Without tcp-flags in the format, verdicts are guesses from packets and
bytes each way, marked (guess). Non-TCP conversations (--protocol) are answered, no
answer, rejected or reply rejected.

With --follow, the inputs are read and then polled for new objects as they are
published, log groups for new events (each read once, also when it arrives late
with an older timestamp), topics for new messages (the consumer stays open: each
message once, partitions added are read too); each conversation is printed once it
is over (reset, FIN from both sides, or quiet for --idle of record time), and Ctrl-C
prints the ones still open.`,
		Example: `  flowlog analyze connections ./flowlogs --host 10.200.235.55 --port 443
  flowlog analyze connections --since 2h s3://bucket/AWSLogs/123456789012/vpcflowlogs/
  flowlog analyze connections --format '${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}' records.txt
  flowlog analyze connections --follow ./flowlogs
  flowlog analyze connections --follow --since 30m --host 10.0.1.17 cloudwatch:///aws/vpc/flow-logs
  flowlog analyze connections --follow --since 1h kafka://127.0.0.1:9092/vpc-flows ./flowlogs`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := analyze.ConnOptions{Idle: idle}
			var err error
			if opt.Protocol, err = parseProtocol(protocol); err != nil {
				return usageError{err}
			}
			for _, h := range hosts {
				for v := range strings.SplitSeq(h, ",") {
					p, err := parseHost(strings.TrimSpace(v))
					if err != nil {
						return usageError{fmt.Errorf("--host: %w", err)}
					}
					opt.Hosts = append(opt.Hosts, p)
				}
			}
			for _, s := range ports {
				for v := range strings.SplitSeq(s, ",") {
					n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
					if err != nil {
						return usageError{fmt.Errorf("--port %q: want a port number 0…65535", v)}
					}
					opt.Ports = append(opt.Ports, uint16(n))
				}
			}
			if idle < 0 || poll < 0 {
				return usageError{errors.New("--idle and --poll must not be negative")}
			}
			if follow && o.output == analyze.ModeCSV {
				return usageError{errors.New("--follow prints table (TSV) or json")}
			}
			r, err := o.prepare(cmd, io, args, false, !follow)
			if err != nil {
				return err
			}
			if follow {
				if len(args) == 0 {
					r.stop()
					return usageError{errors.New("--follow needs a directory, s3:// prefix, log group or kafka:// topic to follow")}
				}
				st, err := analyze.FollowConnections(r.ctx, r.lister, args, r.rc, opt, analyze.FollowOptions{Poll: poll}, r.out)
				return r.finish(st, err, true)
			}
			st, err := analyze.Connections(r.ctx, r.inputs, r.rc, opt, r.out)
			return r.finish(st, err, false)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&hosts, "host", nil, "only conversations with an endpoint at this `address` or in this CIDR prefix (repeatable, or comma-separated)")
	f.StringArrayVar(&ports, "port", nil, "only conversations with an endpoint on this `port` (repeatable, or comma-separated)")
	f.StringVar(&protocol, "protocol", "tcp", "`protocol` of the conversations: tcp, udp, icmp, icmpv6, a number, or all")
	f.BoolVarP(&follow, "follow", "f", false, "keep polling the directories, prefixes, log groups and topics for new records and print conversations as they end")
	f.DurationVar(&poll, "poll", analyze.DefaultPoll, "with --follow: how often to look for new objects, events and messages (an idle log group backs off to 4 times that)")
	f.DurationVar(&idle, "idle", analyze.DefaultFollowIdle, "with --follow: record time without a record after which an open conversation is printed")
	return cmd
}

func parseProtocol(s string) (int, error) {
	switch strings.ToLower(s) {
	case "tcp", "":
		return 0, nil
	case "all", "any":
		return -1, nil
	case "udp":
		return 17, nil
	case "icmp":
		return 1, nil
	case "icmpv6":
		return 58, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("--protocol %q: want tcp, udp, icmp, icmpv6, all or a protocol number", s)
	}
	if n == 6 {
		return 0, nil
	}
	return int(n), nil
}

func parseHost(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// groupFlags are the flags of top and rejected.
type groupFlags struct {
	by     string
	metric string
	bucket time.Duration
	limit  int
}

func (g *groupFlags) add(cmd *cobra.Command, by, metric string, limit int) {
	f := cmd.Flags()
	f.StringVar(&g.by, "by", by, "comma-separated `fields` to group by (any field of the format, e.g. srcaddr,dstport)")
	f.StringVar(&g.metric, "metric", metric, "rank groups by bytes, packets or records")
	f.DurationVar(&g.bucket, "bucket", 0, "also group by time buckets of this `duration` (e.g. 5m, 1h), by record start")
	f.IntVarP(&g.limit, "limit", "n", limit, "groups to print (per bucket); 0 prints all")
}

func (g *groupFlags) options() (analyze.TopOptions, error) {
	by, err := analyze.ParseFields(g.by)
	if err != nil {
		return analyze.TopOptions{}, usageError{fmt.Errorf("--by: %w", err)}
	}
	if err := analyze.CheckMetric(g.metric); err != nil {
		return analyze.TopOptions{}, usageError{err}
	}
	if g.bucket < 0 || (g.bucket > 0 && g.bucket < time.Second) {
		return analyze.TopOptions{}, usageError{fmt.Errorf("--bucket %s: want at least 1s", g.bucket)}
	}
	if g.limit < 0 {
		return analyze.TopOptions{}, usageError{fmt.Errorf("--limit %d: want 0 (all) or more", g.limit)}
	}
	return analyze.TopOptions{By: by, Metric: g.metric, Bucket: g.bucket, Limit: g.limit}, nil
}

func newTopCmd(io streams, o *analyzeOptions) *cobra.Command {
	var g groupFlags
	cmd := &cobra.Command{
		Use:   "top " + inputArgs,
		Short: "Largest groups of records: top talkers, ports, interfaces, by time bucket",
		Long: `Group the records by any fields (--by) and print the largest groups by bytes,
packets or records, with each group's share of the total (of its time bucket with
--bucket) and its first and last time. NODATA and SKIPDATA records are not traffic
and are left out. Memory grows with the number of groups, not with the input.`,
		Example: `  flowlog analyze top --by srcaddr,dstport --metric bytes ./logs/*.log.gz
  flowlog analyze top --by dstport --metric records --bucket 1h --limit 5 ./flowlogs
  flowlog analyze top --since 2h --region eu-west-1 cloudwatch:///aws/vpc/flow-logs
  flowlog analyze top --by interface-id kafka://127.0.0.1:9092/vpc-flows`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, err := g.options()
			if err != nil {
				return err
			}
			r, err := o.prepare(cmd, io, args, false, true)
			if err != nil {
				return err
			}
			st, err := analyze.Top(r.ctx, r.inputs, r.rc, opt, r.out)
			return r.finish(st, err, false)
		},
	}
	g.add(cmd, "srcaddr", analyze.MetricBytes, 10)
	return cmd
}

func newRejectedCmd(io streams, o *analyzeOptions) *cobra.Command {
	var g groupFlags
	cmd := &cobra.Command{
		Use:   "rejected " + inputArgs,
		Short: "What security groups and network ACLs rejected",
		Long: `Print the rejected traffic (action REJECT), grouped by source, destination,
destination port and protocol (or --by), most packets first, with first and last
time. Replies rejected by a stateless network ACL show up here too; 'connections
--protocol all' pairs them with the request they answer.`,
		Example: `  flowlog analyze rejected s3://bucket/AWSLogs/123456789012/vpcflowlogs/ --since 2h
  flowlog analyze rejected --by dstport --metric records ./flowlogs`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, err := g.options()
			if err != nil {
				return err
			}
			r, err := o.prepare(cmd, io, args, false, true)
			if err != nil {
				return err
			}
			st, err := analyze.Rejected(r.ctx, r.inputs, r.rc, opt, r.out)
			return r.finish(st, err, false)
		},
	}
	g.add(cmd, "srcaddr,dstaddr,dstport,protocol", analyze.MetricPackets, 100)
	return cmd
}

func newFilterCmd(io streams, o *analyzeOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "filter " + inputArgs,
		Short: "Print the records that match --where",
		Long: `Print the records matching --where (and --since/--until), in input order: as flow
log lines with their header line (the default; the lines as they were read), as JSON
lines (--output json: numbers as numbers, "-" as null) or as CSV with a header row.
A header is written again where the format changes.

The --where language: comparisons field op value with = (==), !=, <, <=, >, >=;
field in (v1, v2, …) and field not in (…); address fields in a CIDR prefix
(srcaddr in 10.0.0.0/8) or a list of addresses and prefixes; and, or, not and
parentheses (and binds tighter than or). Strings are quoted ("REJECT" or 'REJECT');
enum values (ACCEPT, REJECT, OK, NODATA, SKIPDATA, ingress, egress) and protocol
names (tcp, udp, icmp, icmpv6) may go unquoted. A field without a value ("-")
matches no comparison; field = - tests that it has none. start and end also take
RFC 3339 times and dates. Errors name the column.`,
		Example: `  flowlog analyze filter --where 'action = "REJECT" and dstport in (22, 3389)' --output json FILES…
  flowlog analyze filter --where 'srcaddr in 10.0.0.0/8 and not dstaddr in 10.0.0.0/8' ./flowlogs
  flowlog analyze filter --where 'tcp-flags = 4 or log-status = SKIPDATA' logs.gz`,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.prepare(cmd, io, args, true, true)
			if err != nil {
				return err
			}
			st, err := analyze.Filter(r.ctx, r.inputs, r.rc, r.out)
			return r.finish(st, err, false)
		},
	}
	return cmd
}

func newSummaryCmd(io streams, o *analyzeOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "summary " + inputArgs,
		Short: "What the logs cover: records, time span, interfaces, NODATA and SKIPDATA windows",
		Long: `Summarize the inputs: records by log status, time span, actions, packets and
bytes, interfaces, formats, the windows in which an interface had no traffic at all
(NODATA) and — first, and loudly — the windows in which records were lost
(SKIPDATA): gaps in the evidence, where the absence of a record proves nothing.`,
		Example: `  flowlog analyze summary ./flowlogs
  flowlog analyze summary --output json s3://bucket/AWSLogs/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output == analyze.ModeCSV {
				return usageError{errors.New("--output csv: summary prints table or json")}
			}
			r, err := o.prepare(cmd, io, args, false, true)
			if err != nil {
				return err
			}
			st, err := analyze.Summarize(r.ctx, r.inputs, r.rc, r.out)
			return r.finish(st, err, false)
		},
	}
	return cmd
}
