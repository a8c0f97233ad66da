package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

// exitDenied is `flowlog iam simulate`'s answer for a denied request.
const exitDenied = 4

func newIAMCmd(io streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "iam",
		Short: "Inspect the IAM users, roles and policies of a flowlog server",
		Args:  exactArgs(0, "a subcommand"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("want a subcommand: simulate")}
		},
	}
	cmd.AddCommand(newIAMSimulateCmd(io))
	return cmd
}

// iamSimulateOptions are the flags of `flowlog iam simulate`.
type iamSimulateOptions struct {
	configPath, dataDir string
	principal, action   string
	resource            string
	context             []string
	output              string
}

func newIAMSimulateCmd(io streams) *cobra.Command {
	o := iamSimulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate --config server.yaml --principal WHO --action SERVICE:ACTION [--resource ARN]",
		Short: "Explain whether a principal may perform an action, and which statement decides",
		Long: `simulate evaluates a request against the identity policies of a user or role
of the server's store, exactly as the server authorizes API calls (explicit deny
beats allow beats the implicit deny), and explains the decision: the statement
of the policy that allowed or denied it, or that none applied.

--principal is a user name, a role name, a user or role ARN, an assumed-role
session ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) or root.
Condition keys derived from the principal (aws:username, aws:PrincipalArn,
aws:PrincipalType, aws:userid) are set; request keys (aws:SourceIp,
aws:SecureTransport, aws:RequestedRegion, …) only when given with --context.
The server may be running: the store is only read.

Exits 0 when the request is allowed, 4 when it is denied.`,
		Example: `  flowlog iam simulate --config server.yaml --principal agent-1 --action ec2:CreateFlowLogs \
      --resource arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0a1b2c3d --context aws:SourceIp=10.1.2.3
  flowlog iam simulate --config server.yaml --principal arn:aws:iam::123456789012:role/flowlogs-role \
      --action logs:PutLogEvents --resource 'arn:aws:logs:us-east-1:123456789012:log-group:vpc-flow-logs:*' --output json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIAMSimulate(cmd.Context(), o, io)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configPath, "config", "", "server configuration file (YAML): account id and data directory")
	f.StringVar(&o.dataDir, "data-dir", "", "directory of the store, overriding the configuration")
	f.StringVar(&o.principal, "principal", "", "user or role name, or ARN, whose policies decide")
	f.StringVar(&o.action, "action", "", "action to simulate, service:Operation (ec2:CreateFlowLogs)")
	f.StringVar(&o.resource, "resource", "*", "ARN of the resource acted on")
	f.StringArrayVar(&o.context, "context", nil, "condition key=value (repeat; a key given twice has two values)")
	f.StringVar(&o.output, "output", "text", "text or json")
	return cmd
}

func runIAMSimulate(ctx context.Context, o iamSimulateOptions, io streams) error {
	switch {
	case o.configPath == "":
		return usageError{errors.New("--config is required")}
	case o.principal == "":
		return usageError{errors.New("--principal is required")}
	case o.action == "" || !strings.Contains(o.action, ":"):
		return usageError{fmt.Errorf("--action %q: want service:Operation, e.g. ec2:CreateFlowLogs", o.action)}
	case o.output != "text" && o.output != "json":
		return usageError{fmt.Errorf("--output %q: want text or json", o.output)}
	}
	reqCtx := policy.Context{}
	for _, kv := range o.context {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--context %q: want key=value, e.g. aws:SourceIp=10.1.2.3", kv)}
		}
		old, _ := reqCtx.Get(k)
		reqCtx.Set(k, append(old, v)...)
	}
	cfg, err := api.LoadConfig(o.configPath)
	if err != nil {
		return err
	}
	if o.dataDir != "" {
		cfg.DataDir = o.dataDir
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, api.DBFile)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("iam simulate: no store in %s (data-dir): has flowlog serve run there?", cfg.DataDir)
	}
	db, err := api.OpenDB(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := iam.New(ctx, db, iam.Config{AccountID: cfg.AccountID, DataDir: cfg.DataDir, NoSecrets: true})
	if err != nil {
		return err
	}
	ex, err := svc.Simulate(ctx, iam.SimulateRequest{Principal: o.principal, Action: o.action, Resource: o.resource, Context: reqCtx})
	if err != nil {
		return err
	}
	if o.output == "json" {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ex); err != nil {
			return err
		}
	} else {
		writeExplanation(io, ex)
	}
	if !ex.Allowed {
		// The explanation is the output; the error only sets the code.
		return exitCodeError{code: exitDenied, err: fmt.Errorf("%s: %s on %s is denied", ex.Principal, ex.Action, ex.Resource)}
	}
	return nil
}

func writeExplanation(io streams, ex iam.Explanation) {
	w := io.out
	fmt.Fprintf(w, "decision:  %s\n", ex.Decision)
	fmt.Fprintf(w, "reason:    %s\n", ex.Reason)
	fmt.Fprintf(w, "principal: %s\naction:    %s\nresource:  %s\n", ex.Principal, ex.Action, ex.Resource)
	fmt.Fprintf(w, "policies evaluated (%d):\n", len(ex.Policies))
	for _, p := range ex.Policies {
		fmt.Fprintf(w, "  %s\n", p)
	}
	fmt.Fprintf(w, "statements that apply (%d):\n", len(ex.Matched))
	for _, m := range ex.Matched {
		fmt.Fprintf(w, "  %-5s %s\n", m.Effect, m)
	}
	keys := make([]string, 0, len(ex.Context))
	for k := range ex.Context {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintln(w, "context:")
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, strings.Join(ex.Context[k], ", "))
	}
}
