// Command peers runs flowlog and the tools users would pick instead
// (softflowd, nfdump's nfpcapd, pmacct's pmacctd, argus, tshark) on the same
// captures, measures each run (wall time, user and system CPU, peak RSS, from
// the kernel's wait4 accounting), checks what each tool wrote against the
// truth (the generator's own counts, or tshark's per-packet tables of the
// corpus), and writes the comparison: a Markdown report, an SVG chart and a
// JSON record that the quick mode compares against.
//
// It is driven by bench/run, which installs the peers and builds flowlog;
// the exact command of every tool is in tools/<tool>.sh beside this file.
//
//	go run ./bench/peers -flowlog bench/out/bin/flowlog -runs 3
//	go run ./bench/peers -quick -flowlog bench/out/bin/flowlog
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == launchFlag {
		os.Exit(launch(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	root        string // repository root (paths below are relative to it)
	flowlog     string
	tools       []string
	gens        []genSpec
	corpusDir   string
	corpusTop   int
	runs        int
	outDir      string
	results     string // Markdown report
	readPath    string // read-path report to include in the Markdown
	record      string // JSON record of this run
	chart       string
	baseline    string // JSON record to compare with (quick mode)
	quick       bool
	warnDrop    float64
	pinning     string
	timeout     time.Duration
	commandLine string
	render      string // record to render instead of running
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var tools, gens string
	fs.StringVar(&o.root, "root", ".", "repository `directory`")
	fs.StringVar(&o.flowlog, "flowlog", "bench/out/bin/flowlog", "flowlog `binary`")
	fs.StringVar(&tools, "tools", "", "comma-separated `tools` to run (default: all; quick: flowlog,softflowd)")
	fs.StringVar(&gens, "gen", "", "generated captures as `packets:flows,…` (default 1000000:10000,10000000:10000,10000000:1000000; quick: 1000000:10000; none for none)")
	fs.StringVar(&o.corpusDir, "corpus", "../shared/corpora/pcap", "corpus `directory` (with MANIFEST.tsv and *.packets.tsv)")
	fs.IntVar(&o.corpusTop, "corpus-top", -1, "use the `n` corpus captures with the most packets (default 3; quick: 1)")
	fs.IntVar(&o.runs, "runs", 0, "runs of each tool on each input (default 3; quick: 3)")
	fs.StringVar(&o.outDir, "out", "bench/out/peers", "`directory` for captures, tool outputs and logs")
	fs.StringVar(&o.results, "results", "", "write the Markdown report to this `file` (default bench/RESULTS.md; quick: none)")
	fs.StringVar(&o.readPath, "read-path", "", "read-path report (`file`) to include in the Markdown report")
	fs.StringVar(&o.record, "record", "", "write the JSON record of this run to this `file` (default bench/peers/results/last.json; quick: bench/out/peers/quick.json)")
	fs.StringVar(&o.chart, "chart", "", "write the SVG chart to this `file` (default bench/peers/results/throughput.svg; quick: none)")
	fs.StringVar(&o.baseline, "baseline", "bench/peers/results/last.json", "JSON record the quick mode compares with")
	fs.BoolVar(&o.quick, "quick", false, "quick mode: small inputs, flowlog (and softflowd if installed), compare with -baseline, warn on a regression")
	fs.Float64Var(&o.warnDrop, "warn-drop", 0.30, "quick mode warns when throughput falls by more than this `fraction`")
	fs.StringVar(&o.pinning, "pinning", "none: no taskset, no CPU affinity; every tool may use both cores", "how the runs are pinned, as recorded in the report")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "longest single run")
	fs.StringVar(&o.commandLine, "command", "bench/run", "the command that ran this, as recorded in the report")
	fs.StringVar(&o.render, "render", "", "run nothing: write the report and chart of this recorded JSON `file` (e.g. after editing bench/peers/notes.md)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	def := func(s *string, full, quick string) {
		if *s == "" {
			*s = full
			if o.quick {
				*s = quick
			}
		}
	}
	def(&tools, strings.Join(toolNames(), ","), "flowlog,softflowd")
	def(&gens, "1000000:10000,1000000:1000000,10000000:10000,10000000:1000000", "1000000:10000")
	if gens == "none" {
		gens = ""
	}
	def(&o.results, "bench/RESULTS.md", "")
	def(&o.record, "bench/peers/results/last.json", "bench/out/peers/quick.json")
	def(&o.chart, "bench/peers/results/throughput.svg", "")
	if o.corpusTop < 0 {
		o.corpusTop = 3
		if o.quick {
			o.corpusTop = 1
		}
	}
	if o.runs == 0 {
		o.runs = 3
	}
	if o.runs < 1 {
		return o, fmt.Errorf("-runs %d: want at least 1", o.runs)
	}
	for _, t := range strings.Split(tools, ",") {
		if _, ok := toolByName(t); !ok {
			return o, fmt.Errorf("-tools: unknown tool %q (known: %s)", t, strings.Join(toolNames(), ", "))
		}
		o.tools = append(o.tools, t)
	}
	if o.tools[0] != "flowlog" {
		return o, fmt.Errorf("-tools: flowlog must come first (ratios are against it)")
	}
	for _, g := range strings.Split(gens, ",") {
		if g == "" {
			continue
		}
		p, f, ok := strings.Cut(g, ":")
		packets, err1 := strconv.Atoi(p)
		flows, err2 := strconv.Atoi(f)
		if !ok || err1 != nil || err2 != nil {
			return o, fmt.Errorf("-gen: %q is not packets:flows", g)
		}
		o.gens = append(o.gens, genSpec{Packets: packets, Flows: flows})
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := os.Chdir(o.root); err != nil {
		return fmt.Errorf("chdir %s: %w", o.root, err)
	}
	if o.flowlog, err = filepath.Abs(o.flowlog); err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if o.render != "" {
		rec, err := readRecord(o.render)
		if err != nil {
			return err
		}
		// The explanations and commands are today's (the scripts are in
		// git beside the record); the measurements and versions are the
		// record's.
		for i, ti := range rec.Tools {
			if t, ok := toolByName(ti.Name); ok {
				rec.Tools[i].Notes, rec.Tools[i].Job, rec.Tools[i].Command = t.Notes, t.Job, scriptCommand(t.script())
			}
		}
		return writeOutputs(rec, o, logf)
	}

	// Peers that are not installed are skipped in quick mode (CI may not
	// have them) but are an error in a full run, which must compare them all.
	var tools []Tool
	for _, name := range o.tools {
		t, _ := toolByName(name)
		if missing := t.missing(); missing != "" {
			if o.quick && name != "flowlog" {
				logf("== %s: not installed (%s), skipped", name, missing)
				continue
			}
			return fmt.Errorf("%s: %s not found (bench/run installs the peers from Debian)", name, missing)
		}
		tools = append(tools, t)
	}

	inputs, err := prepareInputs(o, logf)
	if err != nil {
		return err
	}
	rec := newRecord(o, tools)
	rec.LoadBefore = loadAverage()
	for i := range inputs {
		res, err := measureInput(ctx, o, tools, &inputs[i], logf)
		if err != nil {
			return err
		}
		rec.Inputs = append(rec.Inputs, res)
	}
	rec.LoadAfter = loadAverage()
	rec.Finished = time.Now().UTC()

	if err := writeJSON(o.record, rec); err != nil {
		return err
	}
	logf("== wrote %s", o.record)
	if err := writeOutputs(rec, o, logf); err != nil {
		return err
	}
	fmt.Fprint(stdout, summary(rec))
	if o.quick {
		// In quick mode (CI) flowlog failing or disagreeing with the truth
		// is an error; a slower flowlog only warns.
		for _, ir := range rec.Inputs {
			if v := flowlogVerdict(ir); v != "exact" {
				return fmt.Errorf("%s: %s", ir.Input.Name, v)
			}
		}
		base, err := readRecord(o.baseline)
		switch {
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stdout, "no baseline at %s: nothing to compare with\n", o.baseline)
		case err != nil:
			return err
		default:
			fmt.Fprint(stdout, compare(rec, base, o.warnDrop))
		}
	}
	return nil
}

// writeOutputs writes the chart and the Markdown report of a record.
func writeOutputs(rec Record, o options, logf func(string, ...any)) error {
	if o.chart != "" {
		if err := os.WriteFile(o.chart, []byte(chartSVG(rec)), 0o644); err != nil {
			return err
		}
		logf("== wrote %s", o.chart)
	}
	if o.results != "" {
		md, err := report(rec, o)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.results, []byte(md), 0o644); err != nil {
			return err
		}
		logf("== wrote %s", o.results)
	}
	return nil
}
