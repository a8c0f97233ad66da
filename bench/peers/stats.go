package main

import (
	"fmt"
	"math"
	"slices"
)

// stat summarises the runs of one measure.
type stat struct {
	Median, Min, Max float64
	N                int
}

func summarize(xs []float64) stat {
	if len(xs) == 0 {
		return stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Spread is half the range relative to the median, as a fraction.
func (s stat) Spread() float64 {
	if s.N == 0 || s.Median == 0 {
		return math.NaN()
	}
	return (s.Max - s.Min) / 2 / s.Median
}

func (s stat) ok() bool { return s.N > 0 && !math.IsNaN(s.Median) }

// toolStats are the summaries of one tool on one input.
type toolStats struct {
	Wall, CPU, RSS stat // seconds, seconds, bytes
	// Private is the sampled peak of anonymous + shared memory (bytes),
	// from the runs long enough to be sampled.
	Private stat
	// PPS and PPSCPU are IP packets of the input per second of wall time
	// and per second of CPU time, from the medians.
	PPS, PPSCPU float64
}

func (tr ToolResult) stats(packets uint64) toolStats {
	var wall, cpu, rss, private []float64
	for _, u := range tr.Runs {
		wall = append(wall, u.Wall.Seconds())
		cpu = append(cpu, u.CPU().Seconds())
		rss = append(rss, float64(u.MaxRSS))
		// A sample taken while the job had no process yet (or no more)
		// reads 0: such a run was not really sampled.
		if u.Samples > 0 && u.PeakPrivate > 0 {
			private = append(private, float64(u.PeakPrivate))
		}
	}
	st := toolStats{Wall: summarize(wall), CPU: summarize(cpu), RSS: summarize(rss), Private: summarize(private)}
	if st.Wall.ok() && st.Wall.Median > 0 {
		st.PPS = float64(packets) / st.Wall.Median
	}
	if st.CPU.ok() && st.CPU.Median > 0 {
		st.PPSCPU = float64(packets) / st.CPU.Median
	}
	return st
}

// find returns the result of the named tool on an input.
func (ir InputResult) find(tool string) (ToolResult, bool) {
	for _, tr := range ir.Tools {
		if tr.Tool == tool {
			return tr, true
		}
	}
	return ToolResult{}, false
}

// mpps formats packets per second in millions.
func mpps(v float64) string {
	switch {
	case v == 0 || math.IsNaN(v):
		return "–"
	case v >= 10e6:
		return fmt.Sprintf("%.1f M", v/1e6)
	case v >= 0.1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	}
	return fmt.Sprintf("%.3f M", v/1e6)
}

func secs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f s", v)
	case v >= 10:
		return fmt.Sprintf("%.1f s", v)
	}
	return fmt.Sprintf("%.2f s", v)
}

func mib(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v >= 100<<20 {
		return fmt.Sprintf("%.0f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	return fmt.Sprintf("±%.0f%%", f*100)
}

func ratio(peer, flowlog float64) string {
	if flowlog <= 0 || math.IsNaN(peer) || math.IsNaN(flowlog) {
		return "–"
	}
	r := peer / flowlog
	if r >= 10 {
		return fmt.Sprintf("%.0f×", r)
	}
	return fmt.Sprintf("%.1f×", r)
}
