package ebpf

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/internal/capture"
)

// filterPriority is the tc filter priority of flowlog's clsact filters on
// kernels without TCX ("fl" in ASCII); the programs return TC_ACT_UNSPEC,
// so filters after them still run.
const filterPriority = 0x666c

// attachment is one attached interface: its own copy of the TC programs
// (their constants carry the interface id) and how they are hooked in.
type attachment struct {
	id      uint32
	slot    uint32
	link    capture.Link
	ikey    flowlogIfaceKey
	ingress *ebpf.Program
	egress  *ebpf.Program
	links   []link.Link          // TCX
	filters []*netlink.BpfFilter // clsact, kernels before 6.6
	ns      netns.NsHandle       // -1 for the agent's own namespace
}

func (a *attachment) close() error {
	var errs []error
	for _, l := range a.links {
		errs = append(errs, l.Close())
	}
	if len(a.filters) > 0 {
		err := withHandle(a.ns, func(h *netlink.Handle) error {
			var errs []error
			for _, f := range a.filters {
				// The interface may be gone, and its filters with it.
				if err := h.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) {
					errs = append(errs, fmt.Errorf("delete tc filter on ifindex %d: %w", f.LinkIndex, err))
				}
			}
			return errors.Join(errs...)
		})
		errs = append(errs, err)
	}
	errs = append(errs, a.ingress.Close(), a.egress.Close())
	if a.ns != -1 {
		errs = append(errs, a.ns.Close())
	}
	return errors.Join(errs...)
}

// Attach implements capture.Source: it loads a copy of the TC programs
// whose deltas carry id and hooks them into link's ingress and egress.
func (s *Source) Attach(id uint32, l capture.Link) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("attach: source closed")
	}
	if _, ok := s.attached[id]; ok {
		return fmt.Errorf("attach %s (id %d): id already attached", l.Name, id)
	}
	slotIdx := -1
	for i := range s.slots {
		if !s.slots[i].used {
			slotIdx = i
			break
		}
	}
	if slotIdx < 0 {
		return fmt.Errorf("attach %s: max-interfaces (%d) reached", l.Name, len(s.slots))
	}

	a := &attachment{id: id, slot: uint32(slotIdx), link: l, ns: -1}
	if l.Netns != "" {
		ns, err := netns.GetFromName(l.Netns)
		if err != nil {
			return fmt.Errorf("attach %s: open network namespace %s: %w", l.Name, l.Netns, err)
		}
		a.ns = ns
	}
	if err := s.attach(a); err != nil {
		_ = a.close()
		return fmt.Errorf("attach %s (netns %q, ifindex %d): %w", l.Name, l.Netns, l.Index, err)
	}
	s.slots[slotIdx] = slot{id: id, used: true, base: s.slots[slotIdx].base}
	s.attached[id] = a
	return nil
}

func (s *Source) attach(a *attachment) error {
	inode, err := netnsInode(a.ns)
	if err != nil {
		return err
	}
	a.ikey = flowlogIfaceKey{Netns: inode, Ifindex: uint32(a.link.Index)}

	var raw bool
	err = withHandle(a.ns, func(h *netlink.Handle) error {
		nl, err := h.LinkByIndex(a.link.Index)
		if err != nil {
			return fmt.Errorf("look up link: %w", err)
		}
		// Devices without an Ethernet header hand TC the IP header first.
		switch nl.Attrs().EncapType {
		case "ether", "loopback":
		default:
			raw = true
		}
		return nil
	})
	if err != nil {
		return err
	}

	spec := s.spec.Copy()
	for name, v := range map[string]any{"attach_id": a.id, "iface_slot": a.slot, "raw_ip": boolByte(raw)} {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	var progs struct {
		Ingress *ebpf.Program `ebpf:"tc_ingress"`
		Egress  *ebpf.Program `ebpf:"tc_egress"`
	}
	if err := spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: s.mapReplacements()}); err != nil {
		return fmt.Errorf("load TC programs: %w", classify(err))
	}
	a.ingress, a.egress = progs.Ingress, progs.Egress

	// Known to the drop tracepoint before any packet can be dropped.
	if err := s.objs.Ifaces.Put(&a.ikey, &flowlogIfaceValue{AttachId: a.id, Slot: a.slot}); err != nil {
		return fmt.Errorf("register interface: %w", err)
	}
	if err := s.hook(a); err != nil {
		_ = s.objs.Ifaces.Delete(&a.ikey)
		return err
	}
	return nil
}

// hook attaches the programs with TCX where the kernel has it.
func (s *Source) hook(a *attachment) error {
	mode := s.tcx
	switch s.cfg.Attach {
	case "tcx":
		mode = modeTCX
	case "netlink":
		mode = modeNetlink
	}
	if mode != modeNetlink {
		err := inNetns(a.ns, func() error {
			for _, p := range []struct {
				prog *ebpf.Program
				typ  ebpf.AttachType
			}{{a.ingress, ebpf.AttachTCXIngress}, {a.egress, ebpf.AttachTCXEgress}} {
				l, err := link.AttachTCX(link.TCXOptions{Interface: a.link.Index, Program: p.prog, Attach: p.typ})
				if err != nil {
					return err
				}
				a.links = append(a.links, l)
			}
			return nil
		})
		switch {
		case err == nil:
			s.tcx = modeTCX
			return nil
		case mode == modeUndecided && errors.Is(err, ebpf.ErrNotSupported):
			s.tcx = modeNetlink // before 6.6
		default:
			return fmt.Errorf("attach TCX: %w", classify(err))
		}
	}
	return withHandle(a.ns, func(h *netlink.Handle) error {
		q := &netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: a.link.Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
			QdiscType:  "clsact",
		}
		if err := h.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add clsact qdisc: %w", classify(err))
		}
		for _, p := range []struct {
			prog   *ebpf.Program
			parent uint32
			name   string
		}{{a.ingress, netlink.HANDLE_MIN_INGRESS, "flowlog_ingress"}, {a.egress, netlink.HANDLE_MIN_EGRESS, "flowlog_egress"}} {
			f := &netlink.BpfFilter{
				FilterAttrs: netlink.FilterAttrs{
					LinkIndex: a.link.Index, Parent: p.parent, Handle: 1,
					Protocol: unix.ETH_P_ALL, Priority: filterPriority,
				},
				Fd: p.prog.FD(), Name: p.name, DirectAction: true,
			}
			if err := h.FilterReplace(f); err != nil {
				return fmt.Errorf("add tc filter %s: %w", p.name, classify(err))
			}
			a.filters = append(a.filters, f)
		}
		s.tcx = modeNetlink
		return nil
	})
}

// Detach implements capture.Source. What the interface counted so far is
// returned by the next Drain; its losses too, after which its slot is free.
func (s *Source) Detach(id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.attached[id]
	if !ok {
		return fmt.Errorf("detach id %d: not attached", id)
	}
	delete(s.attached, id)
	s.slots[a.slot].draining = true
	err := a.close()
	if derr := s.objs.Ifaces.Delete(&a.ikey); derr != nil && !errors.Is(derr, ebpf.ErrKeyNotExist) {
		err = errors.Join(err, fmt.Errorf("unregister interface: %w", derr))
	}
	if err != nil {
		return fmt.Errorf("detach %s (id %d): %w", a.link.Name, id, err)
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// netnsInode returns the inode number of a network namespace, which the
// kernel also calls its inum (struct ns_common); -1 is the agent's own.
func netnsInode(ns netns.NsHandle) (uint32, error) {
	var st unix.Stat_t
	if ns == -1 {
		if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
			return 0, fmt.Errorf("stat /proc/self/ns/net: %w", err)
		}
	} else if err := unix.Fstat(int(ns), &st); err != nil {
		return 0, fmt.Errorf("stat network namespace: %w", err)
	}
	return uint32(st.Ino), nil
}

// withHandle runs fn with a netlink handle in namespace ns (-1: the
// agent's own).
func withHandle(ns netns.NsHandle, fn func(*netlink.Handle) error) error {
	var h *netlink.Handle
	var err error
	if ns == -1 {
		h, err = netlink.NewHandle()
	} else {
		h, err = netlink.NewHandleAt(ns)
	}
	if err != nil {
		return fmt.Errorf("open netlink socket: %w", err)
	}
	defer h.Close()
	return fn(h)
}

// inNetns runs fn on an OS thread that has entered namespace ns (-1: run
// it here), for kernel calls that resolve an ifindex in the caller's
// namespace (TCX link creation). The thread is thrown away if it cannot
// return to its namespace.
func inNetns(ns netns.NsHandle, fn func() error) error {
	if ns == -1 {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			done <- errors.Join(ferr, fmt.Errorf("return to own network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
