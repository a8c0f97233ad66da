package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

const (
	readPathBegin = "<!-- read-path report: begin (bench/run-read.sh) -->"
	readPathEnd   = "<!-- read-path report: end -->"
	// notesFile is hand-written analysis of a recorded run, included as is.
	notesFile = "bench/peers/notes.md"
	// liveFile is the live agent benchmark's report (bench/agent/run.sh),
	// included as its third part.
	liveFile = "bench/agent/RESULTS.md"
)

// report renders the Markdown report of a record.
func report(rec Record, o options) (string, error) {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# flowlog benchmarks\n\n")
	p("Written by `%s` from one run that finished %s; every number below was measured in that run. ",
		rec.Command, rec.Finished.Format("2006-01-02 15:04 UTC"))
	p("The first part compares flowlog with the tools users would pick instead, on the same captures; ")
	p("the second part (below the first line) is the read-path report of `bench/run-read.sh`; the third (below the second line) ")
	p("is the live agent benchmark of `bench/agent/run.sh`, with the date of its own run. Rerun `bench/run` to refresh all three.\n\n")

	p("## Side by side with the peers\n\n")
	writeMachine(&b, rec)
	writeTargets(&b, rec)
	writeMemoryPerFlow(&b, rec)
	writeRatios(&b, rec)
	p("### Throughput\n\n![packets per second per tool and input](%s)\n\n", chartLink(o))
	p("Packets are the input's IP packets (the same number for every tool). The left panel divides them by the median wall time, ")
	p("the right one by the median CPU time (user + system); log scale.\n\n")
	writeMeasurements(&b, rec)
	writeAgreement(&b, rec)
	writeTools(&b, rec)
	writeInputs(&b, rec)
	if notes, err := os.ReadFile(notesFile); err == nil {
		p("### Notes on this run (written by hand)\n\n%s\n\n", strings.TrimSpace(string(notes)))
	}
	writeQuickHelp(&b)

	readPath, err := readPathReport(o)
	if err != nil {
		return "", err
	}
	p("---\n\n%s\n", readPathBegin)
	if readPath == "" {
		p("\n(No read-path report: run `bench/run-read.sh`, or `bench/run` without `--no-read-path`.)\n")
	} else {
		p("\n%s\n", strings.TrimSpace(readPath))
	}
	p("\n%s\n", readPathEnd)

	p("\n---\n\n")
	if live, err := os.ReadFile(liveFile); err == nil {
		p("%s\n", strings.TrimSpace(demote(string(live))))
	} else {
		p("## Live agent benchmark\n\n(No report: run `bench/agent/run.sh`, or `bench/run` without `--no-live`.)\n")
	}
	return b.String(), nil
}

func chartLink(o options) string {
	// The report sits in bench/, the chart in bench/peers/results/.
	return strings.TrimPrefix(o.chart, "bench/")
}

func writeMachine(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Machine and run\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n", rec.Machine.CPU)
	p("| cores | %d |\n", rec.Machine.Cores)
	p("| memory | %.1f GiB |\n", rec.Machine.MemGiB)
	p("| kernel | %s |\n", rec.Machine.Kernel)
	p("| Go | %s |\n", rec.Machine.Go)
	if rec.Commit != "" {
		p("| flowlog commit | %s |\n", rec.Commit)
	}
	p("| started / finished | %s / %s |\n", rec.Started.Format(time.RFC3339), rec.Finished.Format(time.RFC3339))
	p("| load average before / after (1, 5, 15 min) | %s / %s |\n", rec.LoadBefore, rec.LoadAfter)
	p("| pinning | %s |\n", rec.Pinning)
	p("| runs | %d per tool and input, interleaved: each round runs every tool once, the order rotated by one each round; the capture is read once before the first round so every tool finds it in the page cache |\n", rec.Runs)
	p("| measured | wall time from start to the exit of the last process of the job; user and system CPU and peak RSS from the kernel (wait4 rusage of the tool's script and of every process it started, orphans included: a fresh launcher process runs each job as child subreaper) |\n")
	p("| flowlog build | `CGO_ENABLED=0 go build ./cmd/flowlog` (static: nothing in flowlog needs cgo, and the C library costs 2.3 MiB of peak RSS), the build the README documents; the binary's cached pages are dropped right after the build (`dd oflag=nocache`), so it is read from disk as an installed binary is (straight from the linker its pages map in larger pieces: +4 MiB) |\n")
	p("| peak RSS | ru_maxrss of the largest single process of the job. It counts file pages mapped into the process, which are the page cache, shared, not memory the process allocated: its own binary's and, for flowlog, the capture's (mapped, populated 256 KiB ahead of the reader and released behind it: under 1 MiB of it counts). flowlog's binary holds every command and their dependencies (AWS SDK, SQLite, Prometheus, protobuf, parquet, eBPF), and all of their package initialisation runs before any command: before `read` starts about 17.5 MiB of the binary is in the page table (code 9.9 MiB: what the runtime and the initialisation of 236 packages run, mapped 64 KiB around each touch by the kernel's fault-around; read-only data 5 MiB: the runtime registers the binary's 2,700 interface tables at start, reading type descriptors spread over all of it; function table 2.5 MiB) besides 2.9 MiB of heap (2.0 MB allocated by package initialisation, 1.5 MB of it the AWS SDK's). Floor about 5 MiB: a new program starts at the peak RSS of the launcher that started it |\n")
	p("| private memory | the largest sum over the job's processes of RssAnon + RssShmem (/proc/PID/status), sampled every 2 ms by the launcher (its own CPU is not the job's): what the job allocated, without mapped files; shared memory mapped by two processes of a job counts twice (pmacctd's core and plugin both map their ring); – when a run was too short to be sampled |\n\n")
	if load := max(firstLoad(rec.LoadBefore), firstLoad(rec.LoadAfter)); load > float64(rec.Machine.Cores)/2 {
		p("**Load**: the 1-minute load average was %s when the run began and %s when it ended, on %d cores; it counts the benchmark's own earlier steps (the build, the read-path and live agent benchmarks just before) as well as any other job on the machine. ",
			strings.Fields(rec.LoadBefore + " ?")[0], strings.Fields(rec.LoadAfter + " ?")[0], rec.Machine.Cores)
		p("Wall times include any waiting for a core and spread more; CPU times (user + system) are steadier and are the fairer comparison. ")
		p("Ratios are given for both.\n\n")
	}
}

func firstLoad(s string) float64 {
	var v float64
	fmt.Sscanf(s, "%g", &v)
	return v
}

// writeTargets checks issue 8's targets.
func writeTargets(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Targets (issue 8)\n\n| target | input | measured | verdict |\n|---|---|---|---|\n")
	for _, ir := range rec.Inputs {
		fl, ok := ir.find("flowlog")
		if !ok {
			continue
		}
		fs := fl.stats(ir.Input.Truth.Packets)
		wallPeer, wallName := bestPeer(ir, func(s toolStats) float64 { return s.Wall.Median })
		if wallName == "" {
			continue
		}
		cpuPeer, cpuName := bestPeer(ir, func(s toolStats) float64 { return s.CPU.Median })
		p("| flowlog fastest (wall) | %s | flowlog %s, fastest peer %s %s (%s) | %s |\n", ir.Input.Name,
			secs(fs.Wall.Median), wallName, secs(wallPeer), ratio(wallPeer, fs.Wall.Median), verdict(fs.Wall.Median < wallPeer))
		p("| flowlog fastest (CPU) | %s | flowlog %s, least CPU peer %s %s (%s) | %s |\n", ir.Input.Name,
			secs(fs.CPU.Median), cpuName, secs(cpuPeer), ratio(cpuPeer, fs.CPU.Median), verdict(fs.CPU.Median < cpuPeer))
		if isLargeGenerated(rec, ir) {
			p("| ≥ 3× the fastest peer (wall) | %s | %s against %s | %s |\n", ir.Input.Name, ratio(wallPeer, fs.Wall.Median), wallName, verdict(wallPeer >= 3*fs.Wall.Median))
			p("| ≥ 3× the fastest peer (CPU) | %s | %s against %s | %s |\n", ir.Input.Name, ratio(cpuPeer, fs.CPU.Median), cpuName, verdict(cpuPeer >= 3*fs.CPU.Median))
		}
		rssPeer, rssName := bestPeer(ir, func(s toolStats) float64 { return s.RSS.Median })
		p("| peak RSS ≤ the leanest peer | %s | flowlog %s, leanest %s %s | %s |\n", ir.Input.Name,
			mib(fs.RSS.Median), rssName, mib(rssPeer), verdict(fs.RSS.Median <= rssPeer))
		privPeer, privName := bestPeer(ir, func(s toolStats) float64 {
			if !s.Private.ok() {
				return math.Inf(1)
			}
			return s.Private.Median
		})
		if fs.Private.ok() && privName != "" && !math.IsInf(privPeer, 1) {
			p("| private memory ≤ the leanest peer | %s | flowlog %s, leanest %s %s | %s |\n", ir.Input.Name,
				mib(fs.Private.Median), privName, mib(privPeer), verdict(fs.Private.Median <= privPeer))
		}
		if v := flowlogVerdict(ir); v != "exact" {
			p("| flowlog agrees with the truth exactly | %s | %s | **missed** |\n", ir.Input.Name, v)
		} else {
			p("| flowlog agrees with the truth exactly | %s | packets, bytes, flows, records, NODATA all equal | met |\n", ir.Input.Name)
		}
	}
	writeMemoryTargets(b, rec)
	p("\n")
}

// memoryPair is two generated inputs of the same packet count, with the
// fewest and the most unidirectional flows.
type memoryPair struct{ few, many *InputResult }

func memoryPairs(rec Record) []memoryPair {
	var pairs []memoryPair
	for i := range rec.Inputs {
		in := &rec.Inputs[i]
		if !strings.HasPrefix(in.Input.Source, "generated") {
			continue
		}
		j := slices.IndexFunc(pairs, func(q memoryPair) bool { return q.few.Input.Truth.Packets == in.Input.Truth.Packets })
		switch {
		case j < 0:
			pairs = append(pairs, memoryPair{in, in})
		case in.Input.Truth.Keys < pairs[j].few.Input.Truth.Keys:
			pairs[j].few = in
		case in.Input.Truth.Keys > pairs[j].many.Input.Truth.Keys:
			pairs[j].many = in
		}
	}
	return slices.DeleteFunc(pairs, func(q memoryPair) bool { return q.few == q.many })
}

// name is the pair as the report names it.
func (q memoryPair) name() string { return q.few.Input.Name + " → " + q.many.Input.Name }

// perFlow is the growth of a tool's memory (peak RSS or private, by
// measure) from the pair's few-flow input to its many-flow one, in bytes
// per added flow; ok is false when the tool did not run on both or the
// measure is missing.
func (q memoryPair) perFlow(tool string, measure func(toolStats) stat) (few, many stat, bytes float64, ok bool) {
	a, okA := q.few.find(tool)
	z, okZ := q.many.find(tool)
	if !okA || !okZ || len(a.Runs) == 0 || len(z.Runs) == 0 {
		return stat{}, stat{}, 0, false
	}
	few = measure(a.stats(q.few.Input.Truth.Packets))
	many = measure(z.stats(q.many.Input.Truth.Packets))
	if !few.ok() || !many.ok() {
		return few, many, 0, false
	}
	added := float64(q.many.Input.Truth.Keys) - float64(q.few.Input.Truth.Keys)
	return few, many, (many.Median - few.Median) / added, true
}

func peakRSS(s toolStats) stat { return s.RSS }
func private(s toolStats) stat { return s.Private }

// writeMemoryTargets checks issue 8's memory target per flow, and
// design.md's 128 bytes per active flow, on each pair: what a tool's
// memory grows by with the flows, its start-up cost left out.
func writeMemoryTargets(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	for _, q := range memoryPairs(rec) {
		for _, m := range []struct {
			what    string
			measure func(toolStats) stat
		}{{"peak RSS", peakRSS}, {"private memory", private}} {
			_, _, fl, ok := q.perFlow("flowlog", m.measure)
			if !ok {
				continue
			}
			best, bestName := math.Inf(1), ""
			for _, tr := range q.few.Tools {
				if tr.Tool == "flowlog" {
					continue
				}
				if _, _, v, ok := q.perFlow(tr.Tool, m.measure); ok && v < best {
					best, bestName = v, tr.Tool
				}
			}
			if bestName != "" {
				p("| %s per flow ≤ the leanest peer's | %s | flowlog %.0f B, leanest %s %.0f B | %s |\n", m.what, q.name(), fl, bestName, best, verdict(fl <= best))
			}
			if m.what == "peak RSS" {
				p("| ≤ 128 B per flow (design.md; peak RSS) | %s | flowlog %.0f B | %s |\n", q.name(), fl, verdict(fl <= 128))
			}
		}
	}
}

// writeMemoryPerFlow separates each tool's memory into what grows with
// the flows and what it costs to start: for generated inputs of the same
// packet count with few and many flows, the difference in memory over the
// difference in unidirectional flows. The targets above compare totals,
// in which a small input measures little but the start.
func writeMemoryPerFlow(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	pairs := memoryPairs(rec)
	if len(pairs) == 0 {
		return
	}
	p("### Memory: start-up and per flow\n\n")
	p("For generated inputs of the same packet count, the growth of each tool's memory from the input with the fewest ")
	p("unidirectional flows to the one with the most, divided by the added flows: bytes per flow, peak RSS and private memory ")
	p("(medians). \"At few flows\" is mostly what the tool costs to start: flowlog's one binary maps about 20 MiB of itself ")
	p("before reading a packet (see the notes).\n\n")
	p("| tool | inputs | peak RSS at few flows | peak RSS at many flows | peak RSS per flow | private per flow |\n|---|---|---|---|---|---|\n")
	for _, q := range pairs {
		for _, tr := range q.few.Tools {
			few, many, rss, ok := q.perFlow(tr.Tool, peakRSS)
			if !few.ok() || !many.ok() {
				continue
			}
			perFlow := func(v float64, ok bool) string {
				if !ok {
					return "–"
				}
				return fmt.Sprintf("%.0f B", v)
			}
			_, _, priv, privOK := q.perFlow(tr.Tool, private)
			p("| %s | %s | %s | %s | %s | %s |\n", tr.Tool, q.name(),
				mib(few.Median), mib(many.Median), perFlow(rss, ok), perFlow(priv, privOK))
		}
	}
	p("\n")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// isLargeGenerated tells the input the 3× target is about: the generated
// capture with the most packets and, among those, the most flows.
func isLargeGenerated(rec Record, ir InputResult) bool {
	var best *InputResult
	for i := range rec.Inputs {
		in := &rec.Inputs[i]
		if !strings.HasPrefix(in.Input.Source, "generated") {
			continue
		}
		if best == nil || in.Input.Truth.Packets > best.Input.Truth.Packets ||
			in.Input.Truth.Packets == best.Input.Truth.Packets && in.Input.Truth.Keys > best.Input.Truth.Keys {
			best = in
		}
	}
	return best != nil && best.Input.Name == ir.Input.Name
}

// bestPeer is the lowest value of a measure among the peers that ran.
func bestPeer(ir InputResult, measure func(toolStats) float64) (float64, string) {
	best, name := math.Inf(1), ""
	for _, tr := range ir.Tools {
		if tr.Tool == "flowlog" || len(tr.Runs) == 0 {
			continue
		}
		if v := measure(tr.stats(ir.Input.Truth.Packets)); v < best {
			best, name = v, tr.Tool
		}
	}
	return best, name
}

func writeRatios(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	peers := peerNames(rec)
	p("### Ratios: peer time / flowlog time\n\n")
	p("Median over the runs; above 1× flowlog is faster. Each cell: wall-time ratio, then CPU-time (user + system) ratio.\n\n")
	p("| input | flowlog wall / CPU |")
	for _, t := range peers {
		p(" %s |", t)
	}
	p("\n|---|---|")
	for range peers {
		p("---|")
	}
	p("\n")
	for _, ir := range rec.Inputs {
		fl, ok := ir.find("flowlog")
		if !ok {
			continue
		}
		fs := fl.stats(ir.Input.Truth.Packets)
		p("| %s | %s / %s |", ir.Input.Name, secs(fs.Wall.Median), secs(fs.CPU.Median))
		for _, t := range peers {
			tr, ok := ir.find(t)
			if !ok || len(tr.Runs) == 0 {
				p(" – |")
				continue
			}
			s := tr.stats(ir.Input.Truth.Packets)
			p(" %s / %s |", ratio(s.Wall.Median, fs.Wall.Median), ratio(s.CPU.Median, fs.CPU.Median))
		}
		p("\n")
	}
	p("\n")
}

func peerNames(rec Record) []string {
	var names []string
	for _, t := range rec.Tools {
		if t.Name != "flowlog" {
			names = append(names, t.Name)
		}
	}
	return names
}

func writeMeasurements(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Measurements\n\nMedian [min – max] and spread (± half the range, relative to the median) over the runs.\n\n")
	for _, ir := range rec.Inputs {
		p("#### %s (%d IP packets, %d unidirectional flows)\n\n", ir.Input.Name, ir.Input.Truth.Packets, ir.Input.Truth.Keys)
		p("| tool | wall | CPU (user + sys) | user | sys | peak RSS | private memory | pkts/s (wall) | pkts/CPU-s | output | runs |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, tr := range ir.Tools {
			if len(tr.Runs) == 0 {
				p("| %s | failed: %s | | | | | | | | | 0 |\n", tr.Tool, oneLine(strings.Join(tr.Failed, "; ")))
				continue
			}
			s := tr.stats(ir.Input.Truth.Packets)
			var user, sys []float64
			for _, u := range tr.Runs {
				user = append(user, u.User.Seconds())
				sys = append(sys, u.Sys.Seconds())
			}
			p("| %s | %s [%s – %s] %s | %s [%s – %s] %s | %s | %s | %s | %s | %s | %s | %s | %d",
				tr.Tool, secs(s.Wall.Median), secs(s.Wall.Min), secs(s.Wall.Max), pct(s.Wall.Spread()),
				secs(s.CPU.Median), secs(s.CPU.Min), secs(s.CPU.Max), pct(s.CPU.Spread()),
				secs(summarize(user).Median), secs(summarize(sys).Median),
				mib(s.RSS.Median), mib(s.Private.Median), mpps(s.PPS), mpps(s.PPSCPU), mib(float64(tr.OutputBytes)), len(tr.Runs))
			if len(tr.Failed) > 0 {
				p(" (+%d failed: %s)", len(tr.Failed), oneLine(tr.Failed[0]))
			}
			p(" |\n")
		}
		p("\n")
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// flowlogVerdict is "exact" when flowlog's output equals the truth, or
// says precisely what differs.
func flowlogVerdict(ir InputResult) string {
	fl, ok := ir.find("flowlog")
	if !ok {
		return "flowlog did not run"
	}
	if len(fl.Runs) == 0 {
		return "flowlog failed: " + oneLine(strings.Join(fl.Failed, "; "))
	}
	if fl.Counts == nil {
		return "output unreadable: " + fl.ParseError
	}
	c, t := fl.Counts, ir.Input.Truth
	var diffs []string
	check := func(what string, got, want uint64) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s %d, truth %d (%s)", what, got, want, delta(got, want)))
		}
	}
	check("packets", c.Packets, t.Packets)
	check("bytes", c.Bytes, t.IPBytes)
	check("unidirectional flows", c.Keys, t.Keys)
	check("records", c.Records, t.Records)
	check("NODATA records", c.NoData, t.NoData)
	check("SKIPDATA records", c.SkipData, 0)
	if len(diffs) == 0 {
		return "exact"
	}
	return "**MISMATCH** on " + ir.Input.Name + ": " + strings.Join(diffs, "; ")
}

func delta(got, want uint64) string {
	if got == want {
		return "="
	}
	d := int64(got) - int64(want)
	if want == 0 {
		return fmt.Sprintf("%+d", d)
	}
	return fmt.Sprintf("%+d, %+.2f%%", d, float64(d)/float64(want)*100)
}

func writeAgreement(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Agreement\n\n")
	p("What each tool wrote (first run), reduced to sums: packets, bytes, and unidirectional flows ")
	p("(distinct source, destination, ports, protocol; ports 0 for all but TCP/UDP/SCTP, so the ICMP type/code the peers ")
	p("store in the port fields is undone; a bidirectional record counts once per direction that saw packets). ")
	p("The truth is the generator's own counts for generated captures, and tshark's per-packet table (`*.packets.tsv`) for corpus captures. ")
	p("Bytes are compared with the truth of the same kind: IP bytes (IP total length, what AWS counts) or frame bytes (link layer included). ")
	p("Records differ by design (windows, timeouts, directions); flows, packets and bytes should not.\n\n")
	for _, ir := range rec.Inputs {
		t := ir.Input.Truth
		p("#### %s\n\n", ir.Input.Name)
		p("Truth (%s): %d packets, %d IP bytes, %d frame bytes, %d unidirectional flows, %d AWS records (600 s windows)", t.From, t.Packets, t.IPBytes, t.FrameBytes, t.Keys, t.Records)
		if t.NoData > 0 {
			p(", %d NODATA records (windows without packets between the first and the last)", t.NoData)
		}
		p(".\n\n")
		fl, _ := ir.find("flowlog")
		p("| tool | records | packets (Δ truth) | bytes counted | bytes (Δ truth) | flows (Δ truth) | flows Δ flowlog | verdict |\n")
		p("|---|---|---|---|---|---|---|---|\n")
		for _, tr := range ir.Tools {
			if tr.Counts == nil {
				why := tr.ParseError
				if why == "" && len(tr.Runs) == 0 {
					why = "no successful run"
				}
				p("| %s | – | – | – | – | – | – | output unreadable: %s |\n", tr.Tool, oneLine(why))
				continue
			}
			c := *tr.Counts
			info := toolInfo(rec, tr.Tool)
			truthBytes := t.IPBytes
			if info.Bytes == "frame" {
				truthBytes = t.FrameBytes
			}
			bytesDelta := delta(c.Bytes, truthBytes)
			if c.BytesRounded {
				bytesDelta = "≈ " + bytesDelta + " (rounded)"
			}
			vsFlowlog := "–"
			if fl.Counts != nil && tr.Tool != "flowlog" {
				vsFlowlog = delta(c.Keys, fl.Counts.Keys)
			}
			v := "exact"
			if tr.Tool == "flowlog" {
				v = flowlogVerdict(ir)
			} else if c.Packets != t.Packets || c.Keys != t.Keys || c.Bytes != truthBytes {
				v = "differs (notes below)"
			}
			records := fmt.Sprint(c.Records)
			if tr.Tool == "flowlog" && (c.NoData > 0 || c.SkipData > 0) {
				records += fmt.Sprintf(" + %d NODATA + %d SKIPDATA", c.NoData, c.SkipData)
			}
			if len(c.Unknown) > 0 {
				v += "; unknown protocol names: " + strings.Join(c.Unknown, ", ")
			}
			p("| %s | %s | %d (%s) | %s | %d (%s) | %d (%s) | %s | %s |\n", tr.Tool, records, c.Packets, delta(c.Packets, t.Packets),
				info.Bytes, c.Bytes, bytesDelta, c.Keys, delta(c.Keys, t.Keys), vsFlowlog, v)
		}
		p("\n")
	}
	p("How each tool's numbers relate to the truth:\n\n")
	for _, t := range rec.Tools {
		p("- **%s**: %s\n", t.Name, t.Notes)
	}
	p("\n")
}

func toolInfo(rec Record, name string) ToolInfo {
	for _, t := range rec.Tools {
		if t.Name == name {
			return t
		}
	}
	return ToolInfo{Name: name}
}

func writeTools(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Tools, versions and exact commands\n\n")
	p("Each tool is configured for the closest equivalent of flowlog's job: read the capture, write its flows to a file, ")
	p("600 s active timeout (and no shorter idle timeout where the tool lets one set it, since AWS keeps one record per flow ")
	p("and window however quiet the flow is), flow tables large enough that no flow is evicted early. ")
	p("Each tool's script, as run (`$in` the capture, `$out` the output directory), with the reason for every option:\n\n")
	for _, t := range rec.Tools {
		p("**%s** — %s", t.Name, t.Version)
		if t.Package != "" {
			p(" (%s)", t.Package)
		}
		p(". Job: %s. Bytes: %s; records: %s.\n\n<details><summary><code>%s</code></summary>\n\n```sh\n%s\n```\n\n</details>\n\n",
			t.Job, t.Bytes, map[string]string{"uni": "one direction each", "bi": "both directions in one"}[t.Directions], t.Script, t.Command)
	}
}

func writeInputs(b *strings.Builder, rec Record) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Inputs\n\n| input | source | file size | IP packets | unidirectional flows | windows (600 s) |\n|---|---|---|---|---|---|\n")
	for _, ir := range rec.Inputs {
		t := ir.Input.Truth
		p("| %s | %s | %s | %d | %d | %d |\n", ir.Input.Name, ir.Input.Source, mib(float64(ir.Input.Size)), t.Packets, t.Keys, (t.LastWindow-t.FirstWindow)/600+1)
	}
	p("\nGenerated captures are Ethernet pcap files of TCP, UDP and ICMP conversations over IPv4 and IPv6, ")
	p("written by `bench/internal/gen` (the generator behind `go run ./bench/gencap`) into `bench/out/` (ignored by git); ")
	p("frames are cut at 128 bytes, with their real length on the wire kept. Corpus captures are the ones in ")
	p("`../shared/corpora/pcap/` with the most packets.\n\n")
}

func writeQuickHelp(b *strings.Builder) {
	b.WriteString(`### Regression guard: ` + "`bench/run --quick`" + `

` + "`bench/run --quick`" + ` (well under 2 minutes) builds flowlog, generates the 1 M-packet / 10 k-flow capture, and runs flowlog (and
softflowd, when installed, as a yardstick for the machine's speed) 3 times on it and on the largest corpus capture. It prints
one line per input and compares it with ` + "`bench/peers/results/last.json`" + `, the record of the last full run (this
report), when that run was made on the same machine kind (same CPU model and core count):

` + "```" + `
quick gen-1M-10k: flowlog 9.1 M pkts/CPU-s (baseline 9.5 M, -4%), 3.2 M pkts/s wall (baseline 3.0 M, +7%), softflowd/flowlog CPU 3.4× (baseline 3.6×)
WARNING: flowlog throughput on gen-1M-10k fell 35% (pkts/CPU-s 6.2 M against 9.5 M in the baseline of 2026-11-26)
` + "```" + `

- The figure that matters is **pkts/CPU-s** (IP packets per second of flowlog's own CPU time): it hardly moves with the load of
  other jobs. Wall-clock pkts/s is printed too, but on a busy machine it mostly measures waiting for a core.
- A ` + "`WARNING`" + ` line appears when pkts/CPU-s falls by more than 30% against the baseline, or when flowlog's CPU advantage over
  softflowd (both measured in the same minute, so load cancels out) shrinks by more than 30%. It exits 0 either way: a
  warning asks for a rerun on a quiet machine (or ` + "`bench/run`" + `) before anyone concludes.
- ` + "`no comparable baseline`" + ` means the baseline was recorded on another machine kind or lacks the input; the numbers are
  still printed, and ` + "`bench/out/peers/quick.json`" + ` holds them.
- It exits non-zero only when it cannot measure (build failure, flowlog failing or disagreeing with the truth).

`)
}

// readPathReport is the read-path report to include: the file named by
// -read-path, or else the read-path part of the current report (between
// the markers), or else the current report itself when it is the one
// run-read.sh writes on its own.
func readPathReport(o options) (string, error) {
	if o.readPath != "" {
		b, err := os.ReadFile(o.readPath)
		if err != nil {
			return "", err
		}
		return demote(string(b)), nil
	}
	b, err := os.ReadFile(o.results)
	if err != nil {
		return "", nil
	}
	s := string(b)
	if i := strings.Index(s, readPathBegin); i >= 0 {
		s = s[i+len(readPathBegin):]
		if j := strings.Index(s, readPathEnd); j >= 0 {
			s = s[:j]
		}
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "(No read-path report") {
			return "", nil
		}
		return s, nil
	}
	if strings.HasPrefix(s, "# Read-path benchmark results") {
		return demote(s), nil
	}
	return "", nil
}

// demote turns every Markdown heading outside code blocks one level down,
// so a report can sit inside another.
func demote(s string) string {
	lines := strings.Split(s, "\n")
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			continue
		}
		if !fenced && strings.HasPrefix(l, "#") {
			lines[i] = "#" + l
		}
	}
	return strings.Join(lines, "\n")
}

// summary is the short text printed at the end of a run.
func summary(rec Record) string {
	var b strings.Builder
	for _, ir := range rec.Inputs {
		fl, ok := ir.find("flowlog")
		if !ok {
			continue
		}
		fs := fl.stats(ir.Input.Truth.Packets)
		fmt.Fprintf(&b, "%-22s flowlog wall %s cpu %s (%s pkts/s, %s pkts/CPU-s)", ir.Input.Name, secs(fs.Wall.Median), secs(fs.CPU.Median), mpps(fs.PPS), mpps(fs.PPSCPU))
		for _, tr := range ir.Tools {
			if tr.Tool == "flowlog" || len(tr.Runs) == 0 {
				continue
			}
			s := tr.stats(ir.Input.Truth.Packets)
			fmt.Fprintf(&b, "; %s %s/%s", tr.Tool, ratio(s.Wall.Median, fs.Wall.Median), ratio(s.CPU.Median, fs.CPU.Median))
		}
		if v := flowlogVerdict(ir); v != "exact" {
			fmt.Fprintf(&b, "\n  %s", v)
		}
		b.WriteString("\n")
	}
	return b.String()
}
