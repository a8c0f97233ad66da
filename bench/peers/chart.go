package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// toolColors are fixed per tool so charts of different runs read alike.
var toolColors = map[string]string{
	"flowlog": "#d62728", "softflowd": "#1f77b4", "nfpcapd": "#2ca02c",
	"pmacctd": "#9467bd", "argus": "#ff7f0e", "tshark": "#7f7f7f",
}

// chartSVG draws packets per second of every tool on every input, per
// second of wall time (left) and of CPU time (right), as horizontal bars
// on a log scale, whiskers from the slowest to the fastest run. It is
// plain SVG written by hand: no plotting dependency.
func chartSVG(rec Record) string {
	type bar struct {
		tool           string
		pps, lo, hi    float64 // wall: median, slowest, fastest run
		cpu, clo, chi  float64 // CPU
		failed, absent bool
	}
	type group struct {
		name string
		bars []bar
	}
	var groups []group
	minV, maxV := math.Inf(1), 0.0
	for _, ir := range rec.Inputs {
		g := group{name: ir.Input.Name}
		packets := float64(ir.Input.Truth.Packets)
		for _, t := range rec.Tools {
			tr, ok := ir.find(t.Name)
			b := bar{tool: t.Name, absent: !ok, failed: ok && len(tr.Runs) == 0}
			if ok && len(tr.Runs) > 0 {
				s := tr.stats(ir.Input.Truth.Packets)
				b.pps, b.lo, b.hi = s.PPS, packets/s.Wall.Max, packets/s.Wall.Min
				b.cpu, b.clo, b.chi = s.PPSCPU, packets/s.CPU.Max, packets/s.CPU.Min
				for _, v := range []float64{b.lo, b.hi, b.clo, b.chi} {
					if v > 0 && !math.IsInf(v, 0) {
						minV, maxV = min(minV, v), max(maxV, v)
					}
				}
			}
			g.bars = append(g.bars, b)
		}
		groups = append(groups, g)
	}
	if maxV == 0 {
		minV, maxV = 1e4, 1e7
	}
	lo := math.Pow(10, math.Floor(math.Log10(minV)))
	hi := math.Pow(10, math.Ceil(math.Log10(maxV)))
	if hi <= lo {
		hi = lo * 10
	}

	const (
		left, panelW, gap, top, barH, groupGap, bottom = 175.0, 400.0, 60.0, 78.0, 13.0, 14.0, 46.0
	)
	nTools := len(rec.Tools)
	height := top + float64(len(groups))*(float64(nTools)*barH+groupGap) + bottom
	width := left + 2*panelW + gap + 70
	x := func(panel int, v float64) float64 {
		x0 := left + float64(panel)*(panelW+gap)
		if v <= 0 {
			return x0
		}
		return x0 + panelW*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}

	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	title := fmt.Sprintf("IP packets per second, median of %d runs (whiskers: slowest and fastest run); log scale", rec.Runs)
	p(`<text x="%.0f" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	p(`<text x="%.0f" y="34" fill="#555">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("%s, %d cores; load average %s at the start; %s",
		rec.Machine.CPU, rec.Machine.Cores, rec.LoadBefore, rec.Finished.Format("2006-01-02"))))
	// Legend.
	lx := left
	for _, t := range rec.Tools {
		p(`<rect x="%.0f" y="42" width="10" height="10" fill="%s"/><text x="%.0f" y="51">%s</text>`+"\n", lx, toolColors[t.Name], lx+14, t.Name)
		lx += 14 + 7*float64(len(t.Name)) + 16
	}
	for panel, name := range []string{"per second of wall time", "per second of CPU time (user + system)"} {
		x0 := x(panel, lo)
		p(`<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", x0, top-8, name)
		// Decade grid lines and labels.
		for v := lo; v <= hi*1.0001; v *= 10 {
			gx := x(panel, v)
			p(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", gx, top-2, gx, height-bottom+4)
			p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`+"\n", gx, height-bottom+18, axisLabel(v))
		}
		p(`<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555">packets/s</text>`+"\n", x0+panelW/2, height-bottom+34)
	}
	y := top
	for _, g := range groups {
		p(`<text x="%.0f" y="%.1f" text-anchor="end" font-weight="bold">%s</text>`+"\n", left-8, y+float64(nTools)*barH/2+4, html.EscapeString(g.name))
		for _, b := range g.bars {
			for panel := 0; panel < 2; panel++ {
				v, vlo, vhi := b.pps, b.lo, b.hi
				if panel == 1 {
					v, vlo, vhi = b.cpu, b.clo, b.chi
				}
				x0 := x(panel, lo)
				if b.absent || b.failed || v <= 0 {
					label := "not run"
					if b.failed {
						label = "failed"
					}
					p(`<text x="%.1f" y="%.1f" fill="#999">%s %s</text>`+"\n", x0+3, y+barH-3, b.tool, label)
					continue
				}
				p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s packets/s</title></rect>`+"\n",
					x0, y+1, max(1, x(panel, v)-x0), barH-2, toolColors[b.tool], b.tool, mpps(v))
				wy := y + barH/2
				p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-width="1"/>`+"\n", x(panel, vlo), wy, x(panel, vhi), wy)
				p(`<text x="%.1f" y="%.1f" font-size="9">%s</text>`+"\n", max(x(panel, v), x(panel, vhi))+3, y+barH-3, mpps(v))
			}
			y += barH
		}
		y += groupGap
	}
	p("</svg>\n")
	return s.String()
}

func axisLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}
