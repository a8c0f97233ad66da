package agent

import (
	"fmt"
	"slices"

	"github.com/flowlog/flowlog/internal/inventory"
)

// Plan is what an agent started with a configuration would do now: its
// flow logs with their ids, and the host's links with the ids they get and
// the flow logs that cover them.
type Plan struct {
	FlowLogs []PlannedFlowLog
	Links    []PlannedLink
	// Errors are problems found while looking (a namespace that cannot be
	// read); the configuration itself is valid.
	Errors []error
}

// PlannedFlowLog is one flow log of a Plan.
type PlannedFlowLog struct {
	ID  string
	Def FlowLog
}

// PlannedLink is one link of a Plan.
type PlannedLink struct {
	Link     inventory.Link
	Resolved inventory.Resolved
	Selected bool     // passes the interfaces include/exclude patterns
	FlowLogs []string // ids of the flow logs covering it (empty: not attached)
}

// MakePlan resolves cfg (with defaults applied, valid) against the host:
// machine id, inventory, and the links of the agent's namespace and of the
// configured ones. It changes nothing.
func MakePlan(cfg Config, deps Deps) (Plan, error) {
	a, err := New(cfg, deps)
	if err != nil {
		return Plan{}, err
	}
	if a.host, err = inventory.ReadHost(a.deps.HostRoot); err != nil {
		return Plan{}, err
	}
	if a.inv, err = a.inventory(a.cfg); err != nil {
		return Plan{}, err
	}
	var p Plan
	for _, def := range a.cfg.FlowLogs {
		fl := &flowLog{def: def, id: a.flowLogID(def)}
		fl.kind, fl.netns, fl.value = parseResource(def.Resource)
		a.logs = append(a.logs, fl)
		p.FlowLogs = append(p.FlowLogs, PlannedFlowLog{ID: fl.id, Def: def})
	}
	namespaces := []string{""}
	for _, n := range a.cfg.Netns {
		if n != "all" {
			namespaces = append(namespaces, n)
		}
	}
	if a.cfg.Netns.All() {
		names, err := inventory.ListNetns(a.deps.NetnsDir)
		if err != nil {
			p.Errors = append(p.Errors, err)
		}
		namespaces = append(namespaces, names...)
	}
	slices.Sort(namespaces)
	namespaces = slices.Compact(namespaces)
	for _, ns := range namespaces {
		links, err := inventory.ListLinks(ns)
		if err != nil {
			p.Errors = append(p.Errors, fmt.Errorf("netns %q: %w", ns, err))
			continue
		}
		for _, l := range links {
			pl := PlannedLink{Link: l, Resolved: a.inv.ResolveLink(a.host, l), Selected: a.selected(l)}
			if pl.Selected {
				for _, fl := range a.logs {
					if fl.covers(l, pl.Resolved) {
						pl.FlowLogs = append(pl.FlowLogs, fl.id)
					}
				}
			}
			p.Links = append(p.Links, pl)
		}
	}
	return p, nil
}
