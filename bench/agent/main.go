// Command benchagent measures the live agent (bench/agent/run.sh runs it):
// how many of the packets crossing a veth pair the agent accounts for at
// the highest rate a Go sender with sendmmsg reaches on this machine, how
// much CPU the agent spends in user space meanwhile, and how much TCP
// throughput (iperf3) drops while it runs, for each capture source. It
// writes bench/agent/RESULTS.md.
//
//	benchagent run -flowlog ./flowlog [-duration 10s] [-sources afpacket,ebpf]
//	benchagent flood -src A -dst B:PORT -duration D   (inside a namespace)
//	benchagent sink -addr B:PORT                      (inside a namespace)
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchagent run|flood|sink [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "flood":
		err = flood(os.Args[2:])
	case "sink":
		err = sink(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchagent:", err)
		os.Exit(1)
	}
}
