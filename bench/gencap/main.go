// Command gencap writes a synthetic capture for the read-path benchmarks: a
// classic pcap (Ethernet, microsecond timestamps) of TCP, UDP and ICMP
// conversations over IPv4 and IPv6, deterministic for a seed.
//
//	go run ./bench/gencap -packets 5000000 -flows 200000 -o gen.pcap [-v6 0.3] [-seed N] [-duration 600s]
//
// A summary of what was written goes to standard error, the file's path to
// standard output.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowlog/flowlog/bench/internal/gen"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gencap:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gencap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg   gen.Config
		out   string
		start string
		keep  bool
	)
	fs.IntVar(&cfg.Packets, "packets", 5_000_000, "number of `packets`")
	fs.IntVar(&cfg.Flows, "flows", 200_000, "number of conversations (distinct 5-tuples; most give two unidirectional flows)")
	fs.Float64Var(&cfg.IPv6, "v6", 0.3, "`fraction` of conversations over IPv6")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random `seed`; the same flags give the same file")
	fs.DurationVar(&cfg.Duration, "duration", 600*time.Second, "time span of the packets")
	fs.IntVar(&cfg.SnapLen, "snaplen", gen.DefaultSnapLen, "captured `bytes` per frame (the wire length is kept)")
	fs.StringVar(&start, "start", gen.DefaultStart.Format(time.RFC3339), "`time` of the first possible packet (RFC 3339)")
	fs.StringVar(&out, "o", "", "output `file` (- for standard output; a directory ending in / gets a name from the settings)")
	fs.BoolVar(&keep, "keep", false, "do nothing if the output file exists (it is named by every setting, so it holds the same bytes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" {
		return fmt.Errorf("-o: an output file is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	cfg.Start = t
	if err := cfg.Validate(); err != nil {
		return err
	}

	if strings.HasSuffix(out, "/") {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		out = filepath.Join(out, cfg.FileName())
	}
	if keep && out != "-" {
		if fi, err := os.Stat(out); err == nil {
			fmt.Fprintf(stderr, "gencap: kept %s (%d bytes, written earlier with the same settings: %d packets, %d conversations, IPv6 %g, seed %d, %v)\n",
				out, fi.Size(), cfg.Packets, cfg.Flows, cfg.IPv6, cfg.Seed, cfg.Duration)
			fmt.Println(out)
			return nil
		}
	}

	began := time.Now()
	var st gen.Stats
	if out == "-" {
		st, err = gen.WritePcap(os.Stdout, cfg)
	} else {
		st, err = gen.WriteFile(out, cfg)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(began)
	if out != "-" {
		fmt.Println(out)
	}
	fmt.Fprintf(stderr, "gencap: %d packets, %d conversations, %d unidirectional flows (TCP %d, UDP %d, ICMP %d, IPv6 %d packets); %d wire bytes, %d IP bytes, %d captured; %s to %s; %.1fs (%.1f M packets/s)\n",
		st.Packets, st.Conversations, st.Keys, st.TCP, st.UDP, st.ICMP, st.IPv6,
		st.WireBytes, st.IPBytes, st.CapturedBytes,
		time.Unix(0, st.First).UTC().Format(time.RFC3339Nano), time.Unix(0, st.Last).UTC().Format(time.RFC3339Nano),
		elapsed.Seconds(), float64(st.Packets)/elapsed.Seconds()/1e6)
	return nil
}
