package main

import (
	"github.com/flowlog/flowlog/internal/agent"
	"github.com/flowlog/flowlog/internal/sink"
)

// agentOpeners are the destination kinds the agent writes to, one opener
// per kind.
func agentOpeners() map[sink.DestinationKind]agent.Opener {
	return agent.DefaultOpeners()
}
