package agent

import (
	"context"
	"path/filepath"
	"slices"

	"github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/pipeline"
)

// applyUpdate brings the attachments of one namespace in line with its
// links: new links a flow log covers are attached, links that went away
// (or that no flow log covers any more) are detached, and the flow logs
// of links whose addresses or ids changed are told.
func (a *Agent) applyUpdate(u inventory.Update) {
	if u.Err != nil {
		a.log.Error("follow interfaces", "netns", u.Netns, "error", u.Err)
		return
	}
	now := a.deps.Now().Unix()
	if u.Gone {
		delete(a.known, u.Netns)
	} else {
		a.known[u.Netns] = u.Links
	}
	present := map[linkKey]bool{}
	if !u.Gone {
		for _, l := range u.Links {
			k := linkKey{l.Netns, l.Index}
			present[k] = true
			a.reconcile(k, l, now)
		}
	}
	for k, at := range a.links {
		if k.netns == u.Netns && !present[k] {
			a.detach(k, at, now, "gone")
		}
	}
	if u.Gone {
		a.forgetNetns(u.Netns)
	}
	a.linksChanged()
}

// linksChanged tells whoever registers the links (the follower) to look
// again; it never blocks the loop.
func (a *Agent) linksChanged() {
	select {
	case a.invChanged <- struct{}{}:
	default:
	}
}

// forgetNetns releases what the agent holds in a namespace that went away
// (its conntrack subscription keeps it alive otherwise).
func (a *Agent) forgetNetns(ns string) {
	if f := a.nats[ns]; f != nil {
		f.Stop()
		delete(a.nats, ns)
	}
	delete(a.natErrs, ns)
}

// reconcileAll re-evaluates every known link (after a reload).
func (a *Agent) reconcileAll() {
	now := a.deps.Now().Unix()
	present := map[linkKey]bool{}
	for _, links := range a.known {
		for _, l := range links {
			k := linkKey{l.Netns, l.Index}
			present[k] = true
			a.reconcile(k, l, now)
		}
	}
	for k, at := range a.links {
		if !present[k] {
			a.detach(k, at, now, "namespace no longer followed")
		}
	}
}

// reconcile attaches, updates or detaches one present link.
func (a *Agent) reconcile(k linkKey, l inventory.Link, now int64) {
	res := a.inv.ResolveLink(a.host, l)
	var logs []*flowLog
	if a.selected(l) {
		for _, fl := range a.logs {
			if fl.covers(l, res) {
				logs = append(logs, fl)
			}
		}
	}
	at := a.links[k]
	if at != nil && (at.res.InterfaceID != res.InterfaceID || len(logs) == 0) {
		// A renamed link (or one with a new MAC) is a new interface.
		a.detach(k, at, now, "changed")
		at = nil
	}
	if len(logs) == 0 {
		return
	}
	if at == nil {
		a.nextID++
		at = &attached{id: a.nextID, link: l, res: res}
		err := a.src.Attach(at.id, capture.Link{Index: l.Index, Name: l.Name, Netns: l.Netns, MAC: l.MAC})
		if err != nil {
			a.log.Error("attach", "interface", l.Name, "netns", l.Netns, "error", err)
			a.metrics.attachErrors.Add(1)
			a.retryAttach = true // tried again from tick
			return
		}
		a.links[k] = at
		a.log.Info("attached", "interface", l.Name, "netns", l.Netns, "interface_id", res.InterfaceID,
			"subnet_id", res.SubnetID, "flow_logs", len(logs))
	}
	nat := a.natFor(l.Netns)
	for _, fl := range at.logs {
		if !slices.Contains(logs, fl) {
			fl.live.RemoveInterface(at.id, now)
		}
	}
	for _, fl := range logs {
		switch {
		case !slices.Contains(at.logs, fl):
			fl.live.AddInterface(at.id, res, nat)
		case !resolvedEqual(at.res, res):
			fl.live.UpdateInterface(at.id, res, nat)
		}
	}
	at.link, at.res, at.logs = l, res, logs
}

// detach stops capturing on a link; its last counts come with the next
// drain, and its flow logs keep its records of the open windows.
func (a *Agent) detach(k linkKey, at *attached, now int64, why string) {
	if err := a.src.Detach(at.id); err != nil {
		a.log.Warn("detach", "interface", at.link.Name, "netns", at.link.Netns, "error", err)
	}
	// Its last counts come with the next drain: the flow logs keep
	// taking them for the windows still open.
	for _, fl := range at.logs {
		fl.live.RemoveInterface(at.id, now)
	}
	delete(a.links, k)
	a.metrics.retire(at)
	a.log.Info("detached", "interface", at.link.Name, "netns", at.link.Netns, "reason", why)
}

// selected applies the interfaces include and exclude patterns.
func (a *Agent) selected(l inventory.Link) bool {
	match := func(patterns []string) bool {
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, l.Name); ok {
				return true
			}
		}
		return false
	}
	inc := a.cfg.Interfaces.Include
	return (len(inc) == 0 || match(inc)) && !match(a.cfg.Interfaces.Exclude)
}

// covers reports whether the flow log's resource includes the link.
func (fl *flowLog) covers(l inventory.Link, res inventory.Resolved) bool {
	switch fl.kind {
	case resourceAll:
		return true
	case resourceVPC:
		return res.VPCID == fl.value
	case resourceSubnet:
		return res.SubnetID == fl.value
	case resourceInterfaceID:
		return res.InterfaceID == fl.value
	case resourceLink:
		return l.Name == fl.value && l.Netns == fl.netns
	}
	return false
}

func resolvedEqual(x, y inventory.Resolved) bool {
	return x.AccountID == y.AccountID && x.Region == y.Region && x.AZID == y.AZID &&
		x.InterfaceID == y.InterfaceID && x.SubnetID == y.SubnetID && x.VPCID == y.VPCID &&
		x.InstanceID == y.InstanceID && x.PrimaryIPv4 == y.PrimaryIPv4 &&
		slices.Equal(x.Addresses, y.Addresses) && slices.Equal(x.Excluded, y.Excluded)
}

// natFor returns the NAT follower of a namespace, starting it on first
// use; nil when NAT is off or conntrack cannot be read there.
func (a *Agent) natFor(ns string) pipeline.NATLookup {
	if !*a.cfg.NAT {
		return nil
	}
	if f := a.nats[ns]; f != nil {
		return f
	}
	if a.natErrs[ns] {
		return nil
	}
	f := inventory.NewNATFollower(ns, 0)
	if err := f.Start(context.WithoutCancel(a.ctx)); err != nil {
		a.natErrs[ns] = true
		a.log.Warn("pkt-srcaddr and pkt-dstaddr will not show addresses behind NAT", "netns", ns, "error", err)
		return nil
	}
	a.nats[ns] = f
	return f
}
