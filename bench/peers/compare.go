package main

import (
	"fmt"
	"strings"
)

// compare sets a quick run against a recorded baseline: flowlog's packets
// per CPU-second on each input both measured, and, when softflowd ran in
// both, flowlog's CPU advantage over it (measured in the same minute, so
// the machine's load cancels out). A fall of more than warnDrop gives a
// WARNING line; nothing here fails.
func compare(rec, base Record, warnDrop float64) string {
	var b strings.Builder
	if rec.Machine.Kind() != base.Machine.Kind() {
		fmt.Fprintf(&b, "no comparable baseline: %s was recorded on %s, this machine is %s\n",
			"the baseline", base.Machine.Kind(), rec.Machine.Kind())
		return b.String()
	}
	var warnings []string
	compared := 0
	for _, ir := range rec.Inputs {
		var bir *InputResult
		for i := range base.Inputs {
			if base.Inputs[i].Input.Name == ir.Input.Name {
				bir = &base.Inputs[i]
			}
		}
		fl, ok1 := ir.find("flowlog")
		if bir == nil || !ok1 || len(fl.Runs) == 0 {
			fmt.Fprintf(&b, "quick %s: no comparable baseline (the baseline has no %s)\n", ir.Input.Name, ir.Input.Name)
			continue
		}
		bfl, ok := bir.find("flowlog")
		if !ok || len(bfl.Runs) == 0 {
			fmt.Fprintf(&b, "quick %s: no comparable baseline (flowlog did not run there)\n", ir.Input.Name)
			continue
		}
		compared++
		now, then := fl.stats(ir.Input.Truth.Packets), bfl.stats(bir.Input.Truth.Packets)
		fmt.Fprintf(&b, "quick %s: flowlog %s pkts/CPU-s (baseline %s, %s), %s pkts/s wall (baseline %s, %s)",
			ir.Input.Name, mpps(now.PPSCPU), mpps(then.PPSCPU), change(now.PPSCPU, then.PPSCPU),
			mpps(now.PPS), mpps(then.PPS), change(now.PPS, then.PPS))
		if now.PPSCPU < (1-warnDrop)*then.PPSCPU {
			warnings = append(warnings, fmt.Sprintf("WARNING: flowlog throughput on %s fell %.0f%% (pkts/CPU-s %s against %s in the baseline of %s)",
				ir.Input.Name, (1-now.PPSCPU/then.PPSCPU)*100, mpps(now.PPSCPU), mpps(then.PPSCPU), base.Finished.Format("2006-01-02")))
		}
		sf, ok1 := ir.find("softflowd")
		bsf, ok2 := bir.find("softflowd")
		if ok1 && ok2 && len(sf.Runs) > 0 && len(bsf.Runs) > 0 {
			rNow := sf.stats(ir.Input.Truth.Packets).CPU.Median / now.CPU.Median
			rThen := bsf.stats(bir.Input.Truth.Packets).CPU.Median / then.CPU.Median
			fmt.Fprintf(&b, ", softflowd/flowlog CPU %.1f× (baseline %.1f×)", rNow, rThen)
			if rNow < (1-warnDrop)*rThen {
				warnings = append(warnings, fmt.Sprintf("WARNING: flowlog's CPU advantage over softflowd on %s fell from %.1f× to %.1f× (%.0f%%)",
					ir.Input.Name, rThen, rNow, (1-rNow/rThen)*100))
			}
		}
		b.WriteString("\n")
	}
	for _, w := range warnings {
		b.WriteString(w + "\n")
	}
	if compared > 0 && len(warnings) == 0 {
		fmt.Fprintf(&b, "quick: no throughput regression beyond %.0f%% against the baseline of %s\n", warnDrop*100, base.Finished.Format("2006-01-02 15:04 UTC"))
	}
	return b.String()
}

func change(now, then float64) string {
	if then == 0 {
		return "–"
	}
	return fmt.Sprintf("%+.0f%%", (now/then-1)*100)
}
