// Command benchreport turns the raw output of the read-path benchmark run
// (run-read.sh) into bench/RESULTS.md: the machine, the median and spread
// of every benchmark metric over the -count runs, the design targets with
// the measured value and a verdict, the test results, and the profiles.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type options struct {
	bench, tests, out, command, pinning, capture, notes string
	loadBefore, loadAfter                               string
	profiles                                            []string // title=path of a pprof -top text
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.bench, "bench", "", "`file` with the go test -bench output")
	fs.StringVar(&o.tests, "tests", "", "`file` with the go test -v output of the allocation and memory tests")
	fs.StringVar(&o.out, "o", "", "output `file` (RESULTS.md)")
	fs.StringVar(&o.command, "command", "", "the benchmark command line, for the record")
	fs.StringVar(&o.pinning, "pinning", "", "how the run was pinned to a core")
	fs.StringVar(&o.capture, "capture", "", "`file` with gencap's summary of the generated capture")
	fs.StringVar(&o.notes, "notes", "", "`file` of analysis to include verbatim")
	fs.StringVar(&o.loadBefore, "load-before", "", "/proc/loadavg before the run (other work on the machine skews results)")
	fs.StringVar(&o.loadAfter, "load-after", "", "/proc/loadavg after the benchmarks (default: now)")
	fs.Func("profile", "`title=file` of a pprof -top listing to include (repeatable)", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want title=file, got %q", s)
		}
		o.profiles = append(o.profiles, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.bench == "" || o.out == "" {
		return fmt.Errorf("-bench and -o are required")
	}
	f, err := os.Open(o.bench)
	if err != nil {
		return err
	}
	defer f.Close()
	results, err := parseBench(f)
	if err != nil {
		return fmt.Errorf("parse %s: %w", o.bench, err)
	}
	if len(results.order) == 0 {
		return fmt.Errorf("parse %s: no benchmark results", o.bench)
	}
	var b strings.Builder
	if err := write(&b, &o, results); err != nil {
		return err
	}
	return os.WriteFile(o.out, []byte(b.String()), 0o644)
}

// results holds every sample of every metric, by benchmark.
type results struct {
	order   []string                        // benchmarks in first-seen order
	samples map[string]map[string][]float64 // benchmark → unit → values
	units   map[string][]string             // benchmark → units in first-seen order
	header  []string                        // goos/goarch/pkg/cpu lines
}

// parseBench reads `go test -bench` output: lines of
// "BenchmarkName[-P] N value unit value unit ...".
func parseBench(r io.Reader) (*results, error) {
	res := &results{samples: map[string]map[string][]float64{}, units: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "cpu:") || strings.HasPrefix(line, "goos:") || strings.HasPrefix(line, "goarch:") {
			if !slices.Contains(res.header, line) {
				res.header = append(res.header, line)
			}
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue
		}
		name := trimProcs(fields[0])
		if res.samples[name] == nil {
			res.samples[name] = map[string][]float64{}
			res.order = append(res.order, name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", name, fields[i], err)
			}
			unit := fields[i+1]
			if res.samples[name][unit] == nil {
				res.units[name] = append(res.units[name], unit)
			}
			res.samples[name][unit] = append(res.samples[name][unit], v)
		}
	}
	return res, sc.Err()
}

// trimProcs drops the -GOMAXPROCS suffix go test adds when it is not 1.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err == nil {
		return name[:i]
	}
	return name
}

type summary struct {
	median, min, max float64
	n                int
}

func summarize(v []float64) summary {
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{median: m, min: s[0], max: s[len(s)-1], n: len(s)}
}

// spread is the range of the samples relative to the median, in percent.
func (s summary) spread() string {
	if s.median == 0 {
		if s.max == s.min {
			return "0%"
		}
		return "n/a"
	}
	return fmt.Sprintf("±%.1f%%", (s.max-s.min)/2/math.Abs(s.median)*100)
}

// format prints a value with the precision its size needs.
func format(v float64, unit string) string {
	switch {
	case unit == "pkts/s" || unit == "pkts/cpu-s":
		return fmt.Sprintf("%.2f M", v/1e6)
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e6:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// target is one of design.md's performance targets, read off a benchmark.
type target struct {
	what, bench, unit string
	want              float64
	atLeast           bool
}

var targets = []target{
	{"≥ 10 M packets/s on one core, whole read path (generated capture, records discarded)", "BenchmarkReadGenerated/sink=discard", "pkts/s", 10e6, true},
	{"… the same per second of CPU time", "BenchmarkReadGenerated/sink=discard", "pkts/cpu-s", 10e6, true},
	{"≥ 10 M packets/s on one core, whole read path rendering text (generated capture)", "BenchmarkReadGenerated/sink=text", "pkts/s", 10e6, true},
	{"… the same per second of CPU time", "BenchmarkReadGenerated/sink=text", "pkts/cpu-s", 10e6, true},
	{"≥ 10 M packets/s on one core, whole read path (largest corpus capture)", "BenchmarkReadLargestCorpus", "pkts/s", 10e6, true},
	{"… the same per second of CPU time", "BenchmarkReadLargestCorpus", "pkts/cpu-s", 10e6, true},
	{"0 allocations per packet, whole read path (generated capture)", "BenchmarkReadGenerated/sink=discard", "allocs/pkt", 0.001, false},
	{"0 allocations per packet, decode + flow table", "BenchmarkDecodeAggregate/stage=decode+aggregate", "allocs/pkt", 0.001, false},
	{"≤ 128 bytes per active flow, 100 k flows", "BenchmarkFlowTableMemory/flows=100000", "B/flow", 128, false},
	{"≤ 128 bytes per active flow, 1 M flows", "BenchmarkFlowTableMemory/flows=1000000", "B/flow", 128, false},
}

func write(w *strings.Builder, o *options, res *results) error {
	now := time.Now().UTC()
	finished := now
	if fi, err := os.Stat(o.bench); err == nil {
		finished = fi.ModTime().UTC()
	}
	fmt.Fprintf(w, "# Read-path benchmark results\n\n")
	fmt.Fprintf(w, "Written by `bench/run-read.sh` from one run whose benchmarks finished at %s;\n", finished.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "every number below was measured in that run. Rerun the script to refresh this file.\n\n")

	fmt.Fprintf(w, "## Machine\n\n")
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| CPU | %s |\n", cpuModel())
	fmt.Fprintf(w, "| cores (nproc) | %d |\n", runtime.NumCPU())
	fmt.Fprintf(w, "| kernel | %s |\n", kernel())
	fmt.Fprintf(w, "| Go | %s |\n", goVersion())
	fmt.Fprintf(w, "| date (benchmarks finished) | %s |\n", finished.Format(time.RFC3339))
	if o.loadBefore != "" {
		fmt.Fprintf(w, "| load average before the run (1, 5, 15 min) | %s |\n", o.loadBefore)
	}
	if o.loadAfter == "" {
		o.loadAfter = loadAvg()
	}
	fmt.Fprintf(w, "| load average after the benchmarks | %s |\n", o.loadAfter)
	if o.pinning != "" {
		fmt.Fprintf(w, "| pinning | %s |\n", o.pinning)
	}
	if o.command != "" {
		fmt.Fprintf(w, "| command | `%s` |\n", o.command)
	}
	if o.capture != "" {
		if b, err := os.ReadFile(o.capture); err == nil {
			fmt.Fprintf(w, "| generated capture | %s |\n", strings.TrimSpace(strings.ReplaceAll(string(b), "\n", " ")))
		}
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "## Targets (design.md)\n\n")
	fmt.Fprintf(w, "| target | benchmark | median | verdict |\n|---|---|---|---|\n")
	for _, t := range targets {
		v, ok := res.samples[t.bench][t.unit]
		if !ok {
			fmt.Fprintf(w, "| %s | %s | not measured | — |\n", t.what, t.bench)
			continue
		}
		s := summarize(v)
		met := s.median >= t.want
		if !t.atLeast {
			met = s.median <= t.want
		}
		verdict := "met"
		if !met {
			verdict = "**missed**"
		}
		fmt.Fprintf(w, "| %s | %s | %s %s | %s |\n", t.what, t.bench, format(s.median, t.unit), t.unit, verdict)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "## Benchmarks\n\n")
	fmt.Fprintf(w, "Median over the runs (n), range as ± half of (max − min) relative to the median.\n\n")
	if len(res.header) > 0 {
		fmt.Fprintf(w, "```\n%s\n```\n\n", strings.Join(res.header, "\n"))
	}
	fmt.Fprintf(w, "| benchmark | metric | median | min | max | spread | n |\n|---|---|---|---|---|---|---|\n")
	for _, name := range res.order {
		for _, unit := range res.units[name] {
			s := summarize(res.samples[name][unit])
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d |\n", name, unit,
				format(s.median, unit), format(s.min, unit), format(s.max, unit), s.spread(), s.n)
		}
	}
	fmt.Fprintln(w)

	if o.tests != "" {
		b, err := os.ReadFile(o.tests)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "## Allocation and memory tests\n\n```\n%s\n```\n\n", strings.TrimSpace(testLines(string(b))))
	}
	for _, p := range o.profiles {
		title, path, _ := strings.Cut(p, "=")
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "## %s\n\n```\n%s\n```\n\n", title, strings.TrimSpace(string(b)))
	}
	if o.notes != "" {
		b, err := os.ReadFile(o.notes)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(string(b)))
	}
	return nil
}

// testLines keeps the verdict and log lines of go test -v output.
func testLines(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "=== RUN") || strings.HasPrefix(t, "=== PAUSE") || strings.HasPrefix(t, "=== CONT") {
			continue
		}
		if t != "" {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	var model, mhz, flags string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		case "cpu MHz":
			if mhz == "" {
				mhz = strings.TrimSpace(v)
			}
		case "flags":
			if flags == "" {
				flags = v
			}
		}
	}
	if mhz != "" {
		model += ", " + mhz + " MHz"
	}
	for _, f := range []string{"avx2", "avx512f"} {
		if slices.Contains(strings.Fields(flags), f) {
			model += ", " + f
		}
	}
	return model
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// goVersion is the toolchain that ran the benchmarks (go on PATH), not
// necessarily the one that built this program.
func goVersion() string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
