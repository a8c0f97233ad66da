package main

import (
	"context"
	"fmt"

	"github.com/flowlog/flowlog/internal/api/audit"
	"github.com/flowlog/flowlog/internal/api/iam"
)

// addIAMParts adds the IAM API and puts IAM's credentials, authorizer and audit trail in front of every API.
func addIAMParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	svc, err := iam.New(ctx, env.db, iam.Config{AccountID: env.cfg.AccountID, DataDir: env.cfg.DataDir})
	if err != nil {
		return err
	}
	parts.iam = svc
	parts.services = append(parts.services, svc)
	// The configuration's keys (the account's root) come first.
	parts.credentials = append(parts.credentials, svc)
	parts.authorizer = svc

	auditCfg := audit.DefaultConfig(env.cfg.DataDir)
	if r := env.cfg.Audit; r.MaxBytes > 0 {
		auditCfg.MaxBytes = r.MaxBytes
	}
	if r := env.cfg.Audit; r.Keep > 0 {
		auditCfg.Keep = r.Keep
	}
	trail, err := audit.New(auditCfg)
	if err != nil {
		return err
	}
	// The flusher outlives the signal: calls finishing during the
	// graceful shutdown are still audited, and Stop (a closer, run after
	// the server returned) writes the last lines.
	trail.Start(context.WithoutCancel(ctx))
	parts.audit = trail
	parts.closers = append(parts.closers, trail.Stop)

	if env.initOut != nil {
		arn, id, secret, created, err := svc.Bootstrap(ctx)
		if err != nil {
			return err
		}
		if !created {
			env.log.Info("--init: the store already has IAM users; nothing created")
			return nil
		}
		fmt.Fprintf(env.initOut, "Created IAM user %s with %s. Its secret key is shown only now; store it:\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
			arn, iam.AdminPolicyARN, id, secret)
	}
	return nil
}
