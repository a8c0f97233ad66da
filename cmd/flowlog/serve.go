package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/api/iam"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// serveEnv is what every part of the server is built from.
type serveEnv struct {
	cfg api.Config
	db  *sql.DB
	log *slog.Logger
	// initOut is where --init prints the first administrator's key; nil without --init.
	initOut io.Writer
}

// serveParts are the server's parts: the APIs, and what runs beside them.
type serveParts struct {
	services    []api.Service
	credentials api.CredentialChain
	authorizer  api.Authorizer
	audit       api.Auditor
	console     http.Handler
	// background runs until ctx ends (retention sweeps, …).
	background []func(ctx context.Context)
	closers    []func() error
	// logs is the CloudWatch Logs service, for the console.
	logs *logs.Service
	// flowLogs is the EC2 flow-log service (flow logs and inventory), for the console.
	flowLogs *ec2.Service
	// iam is the IAM service (users, roles, delivery-role sessions).
	iam *iam.Service
}

func newServeCmd(s streams) *cobra.Command {
	var configPath, listen, dataDir string
	var initAdmin bool
	cmd := &cobra.Command{
		Use:   "serve --config server.yaml",
		Short: "Serve the control plane: EC2 flow-log API, CloudWatch Logs API, agent protocol",
		Long: `serve runs flowlog's control plane: the EC2 Query API (create-flow-logs,
describe-flow-logs, delete-flow-logs, describe-vpcs|subnets|network-interfaces),
the CloudWatch Logs API, the Kinesis Data Firehose API, the IAM API, the protocol
agents use to register their inventory and follow flow log definitions, and a web
console at /. Every API request must be signed (SigV4) with an access key of the
configuration or of an IAM user, so the stock AWS CLI works with --endpoint-url:

  aws --endpoint-url http://127.0.0.1:8080 ec2 describe-flow-logs

The configuration holds secret keys and is refused when other users can read it.
The server listens on 127.0.0.1:8080 unless configured otherwise. SIGTERM or
SIGINT stops it after calls in flight end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return usageError{errors.New("--config is required")}
			}
			cfg, err := api.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Listen = listen
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			var initOut io.Writer
			if initAdmin {
				initOut = s.out
			}
			return runServe(ctx, cfg, slog.New(slog.NewTextHandler(s.err, nil)), s, initOut)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "server configuration file (YAML)")
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on, overriding the configuration (host:port; port 0 picks one)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "directory of the store, overriding the configuration")
	cmd.Flags().BoolVar(&initAdmin, "init", false, "when the store has no IAM user, create user admin with AdministratorAccess and print its access key once")
	return cmd
}

func runServe(ctx context.Context, cfg api.Config, log *slog.Logger, s streams, initOut io.Writer) (err error) {
	db, err := api.OpenDB(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	env := serveEnv{cfg: cfg, db: db, log: log, initOut: initOut}
	parts, err := buildServeParts(ctx, env)
	for _, c := range parts.closers {
		defer func() { err = errors.Join(err, c()) }()
	}
	if err != nil {
		return err
	}
	metrics := api.NewMetrics()
	srv, err := api.New(api.Options{
		Credentials:  parts.credentials,
		Authorizer:   parts.authorizer,
		Services:     parts.services,
		Console:      parts.console,
		Audit:        parts.audit,
		Metrics:      metrics,
		MaxClockSkew: cfg.MaxClockSkew,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	}
	bgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, run := range parts.background {
		go run(bgCtx)
	}
	if cfg.MetricsAddress != "none" {
		mln, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics-address %s: %w", cfg.MetricsAddress, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry(), promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", healthz(db))
		go func() {
			if err := api.ListenAndServe(bgCtx, mln, mux, time.Second, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("serve metrics", "err", err)
			}
		}()
		log.Info("serving metrics", "address", "http://"+mln.Addr().String()+"/metrics")
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "data-dir", cfg.DataDir)
	return api.ListenAndServe(ctx, ln, srv, 10*time.Second, cfg.TLS.Cert, cfg.TLS.Key)
}

// healthz answers 200 while the store answers a query, 503 otherwise.
func healthz(db *sql.DB) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"status": "store unavailable", "error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	}
}

// buildServeParts builds every part of the server from env.
func buildServeParts(ctx context.Context, env serveEnv) (serveParts, error) {
	parts := serveParts{
		credentials: api.CredentialChain{api.StaticKeys{AccountID: env.cfg.AccountID, Keys: env.cfg.AccessKeys}},
	}
	if len(env.cfg.AccessKeys) == 0 {
		env.log.Warn("no access-keys in the configuration: only keys the IAM API issues are accepted")
	}
	// Order matters: a part may use what an earlier one built.
	for _, add := range []func(context.Context, serveEnv, *serveParts) error{
		addFlowLogParts, // ec2 + agent protocol
		addLogsParts,    // CloudWatch Logs
		addFirehoseParts,
		addIAMParts,     // IAM: credentials, authorizer, audit
		addConsoleParts, // web console
	} {
		if err := add(ctx, env, &parts); err != nil {
			return parts, err
		}
	}
	return parts, nil
}
