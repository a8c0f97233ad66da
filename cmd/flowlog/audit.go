package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/audit"
)

// auditOptions are the flags of `flowlog audit`.
type auditOptions struct {
	configPath, dataDir string
	since, until        string
	filter              audit.Filter
	output              string
}

func newAuditCmd(io streams) *cobra.Command {
	o := auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit --data-dir DIR [--since 1h] [--principal WHO] [--action ACTION] [--result denied]",
		Short: "Read the audit trail of a flowlog server: every API call, allowed or refused",
		Long: `audit prints the calls recorded in the server's audit trail
(DATA_DIR/audit/audit.log and its rotated files audit.log.1, .2, …), oldest
first: time, result (allowed, denied, error), principal, source address, action,
resources and error code. The server writes a call's line within a second, and
every pending line when it stops.

--since and --until take a duration back from now (90m, 24h) or a time
(RFC 3339). --principal matches an ARN, a user, role or session name, or an
access key id; --action "CreateFlowLogs" or "ec2:Create*" (wildcards * and ?).
On a terminal the output is a table; otherwise tab-separated values with RFC 3339
times; --output json prints each call as one JSON object per line. Exits 0 also
when no call matched.`,
		Example: `  flowlog audit --data-dir /var/lib/flowlog/server --since 1h --result denied
  flowlog audit --config server.yaml --principal agent-1 --action 'logs:*' --output json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runAudit(o, io, time.Now()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "", "the server's data directory")
	f.StringVar(&o.configPath, "config", "", "server configuration file, for its data-dir")
	f.StringVar(&o.since, "since", "", "only calls at or after this time or this long ago (1h, 2026-11-26T08:00:00Z)")
	f.StringVar(&o.until, "until", "", "only calls before this time or this long ago")
	f.StringVar(&o.filter.Principal, "principal", "", "only calls of this principal (ARN, user, role or session name, access key id)")
	f.StringVar(&o.filter.Action, "action", "", "only this action (CreateUser, iam:CreateUser, ec2:*)")
	f.StringVar(&o.filter.Result, "result", "", "only allowed, denied or error")
	f.StringVar(&o.output, "output", "text", "text or json")
	return cmd
}

// parseWhen reads a duration back from now or an RFC 3339 time.
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("--%s %q: want a duration (1h) or an RFC 3339 time", flag, v)}
	}
	return t, nil
}

func runAudit(o auditOptions, io streams, now time.Time) error {
	if o.output != "text" && o.output != "json" {
		return usageError{fmt.Errorf("--output %q: want text or json", o.output)}
	}
	if r := o.filter.Result; r != "" && r != audit.ResultAllowed && r != audit.ResultDenied && r != audit.ResultError {
		return usageError{fmt.Errorf("--result %q: want allowed, denied or error", r)}
	}
	var err error
	if o.filter.Since, err = parseWhen("since", o.since, now); err != nil {
		return err
	}
	if o.filter.Until, err = parseWhen("until", o.until, now); err != nil {
		return err
	}
	dir := o.dataDir
	if dir == "" {
		if o.configPath == "" {
			return usageError{errors.New("give --data-dir or --config")}
		}
		cfg, err := api.LoadConfig(o.configPath)
		if err != nil {
			return err
		}
		dir = cfg.DataDir
	}
	auditDir := audit.DefaultConfig(dir).Dir
	if o.output == "json" {
		enc := json.NewEncoder(io.out)
		skipped, err := audit.Read(auditDir, o.filter, func(e audit.Event) error { return enc.Encode(e) })
		return auditDone(io, auditDir, skipped, err)
	}
	term := isTerminal(io.out)
	tw := tabwriter.NewWriter(io.out, 2, 8, 2, ' ', 0)
	write := func(cols ...string) {
		if term {
			fmt.Fprintln(tw, strings.Join(cols, "\t"))
			return
		}
		fmt.Fprintln(io.out, strings.Join(cols, "\t"))
	}
	write("TIME", "RESULT", "PRINCIPAL", "SOURCE", "ACTION", "RESOURCES", "ERROR")
	skipped, err := audit.Read(auditDir, o.filter, func(e audit.Event) error {
		ts := e.Time.UTC().Format(time.RFC3339Nano)
		if term {
			ts = e.Time.Local().Format("2006-01-02 15:04:05")
		}
		write(ts, e.Result, orDash(e.Principal), orDash(e.SourceIP), orDash(actionName(e)), orDash(strings.Join(e.Resources, ",")), orDash(e.ErrorCode))
		return nil
	})
	if term {
		tw.Flush()
	}
	return auditDone(io, auditDir, skipped, err)
}

func auditDone(io streams, dir string, skipped int, err error) error {
	if skipped > 0 {
		fmt.Fprintf(io.err, "flowlog: %d lines of %s are not audit events (torn by a crash?) and were skipped\n", skipped, filepath.Join(dir, audit.FileName))
	}
	return err
}

func actionName(e audit.Event) string {
	if e.Service == "" {
		return e.Action
	}
	return e.Service + ":" + e.Action
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
