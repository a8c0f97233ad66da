//go:build !linux

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newAgentCmd(streams) *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "Capture live traffic and write flow log records continuously (Linux only)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("flowlog agent captures with eBPF or AF_PACKET and needs Linux")
		},
	}
}
