// Command flowlog produces AWS VPC Flow Logs records from any Linux
// network: from capture files today (flowlog read), and from live
// interfaces, with an EC2-compatible API and an analyzer, as they land.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes, documented in `flowlog help exit-codes`.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitTruncated = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCodeError carries a specific exit code with its error.
type exitCodeError struct {
	code int
	err  error
}

func (e exitCodeError) Error() string { return e.err.Error() }
func (e exitCodeError) Unwrap() error { return e.err }

// streams are the process's standard streams, injectable for tests.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	io := streams{in: stdin, out: stdout, err: stderr}
	root := newRootCmd(io)
	root.SetArgs(args)
	// ExecuteC returns the subcommand that ran (or whose flags were wrong),
	// so the usage hint points at the help that lists the offending flag.
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "flowlog: %v\n", err)
	var ue usageError
	var ce exitCodeError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ue):
		path := "flowlog"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		return exitUsage
	}
	return exitError
}

func newRootCmd(io streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "flowlog",
		Short: "AWS VPC Flow Logs for any Linux network",
		Long: `flowlog produces flow log records identical to AWS VPC Flow Logs (every field
version, default and custom formats, the S3 object layout) from packet captures,
and reads them back.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(io.in)
	root.SetOut(io.out)
	root.SetErr(io.err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newReadCmd(io), newFormatCmd(io), newVersionCmd(io), newExitCodesTopic(), newAnalyzeCmd(io), newAgentCmd(io), newServeCmd(io), newIAMCmd(io), newAuditCmd(io))
	return root
}

func newExitCodesTopic() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "Exit codes of flowlog commands",
		Long: `flowlog exits with:
  0  success (also when there were no records to write, or nothing matched)
  1  error: unreadable input, bad configuration, a destination that cannot be written;
     for analyze also: an input held no flow log record, or Ctrl-C interrupted it
     (the results of what was read are printed)
  2  usage error: unknown flag or command, bad flag value, wrong number of arguments
  3  the capture was cut off in the middle of a packet; records of everything read
     before the cut were written (use --allow-truncated to exit 0)
  4  iam simulate: the simulated request is denied (explicitly or implicitly);
     the explanation was printed`,
	}
}

// argsError wraps cobra's argument validators as usage errors.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("want %s, got %d arguments", what, len(args))}
		}
		return nil
	}
}
