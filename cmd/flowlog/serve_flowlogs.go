package main

import "context"

// addFlowLogParts adds the EC2 flow-log API and the agent protocol.
func addFlowLogParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	return nil
}
