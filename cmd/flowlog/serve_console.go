package main

import "context"

// addConsoleParts adds the web console.
func addConsoleParts(ctx context.Context, env serveEnv, parts *serveParts) error {
	return nil
}
