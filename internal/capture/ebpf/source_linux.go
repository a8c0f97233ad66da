package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture"
)

// drainBatch is how many flow map entries one batch syscall moves.
const drainBatch = 4096

// Source is the eBPF capture source. It implements capture.Source.
type Source struct {
	cfg  Config
	spec *ebpf.CollectionSpec // with the map sizes and constants of cfg
	objs flowlogMaps
	ncpu int

	kfree     *ebpf.Program
	kfreeLink link.Link
	rejectErr error // why REJECT is not recorded, nil when it is

	// mu guards the attachments, the interface slots and closed. Lock
	// order: drainMu, then mu.
	mu       sync.Mutex
	attached map[uint32]*attachment
	slots    []slot
	tcx      attachMode // decided by the first attachment in "auto" mode
	closed   bool

	// drainMu serializes Drain and guards its state; the callback runs
	// under it only, so it may call Attach, Detach, Stats and LastDrain.
	drainMu   sync.Mutex
	gen       uint32
	genOffset [2]int64 // wall clock offset in force while each generation was filled
	ctl       flowlogControl
	keys      []flowlogFlowKey
	vals      []flowlogFlowValue // drainBatch × ncpu
	lostVals  []uint64
	delta     capture.Delta
	noBatch   bool // batch syscalls unsupported: iterate instead

	statMu   sync.Mutex // guards statVals and last
	statVals []uint64
	last     DrainStats
}

type attachMode int

const (
	modeUndecided attachMode = iota
	modeTCX
	modeNetlink
)

// slot is an index into the kernel's lost array. A slot freed by Detach is
// reused only after the next Drain has reported its last losses.
type slot struct {
	id       uint32
	used     bool
	draining bool   // detached; released after the next drain
	base     uint64 // lost count already reported
}

// New loads the flow maps and, unless cfg.Reject is "off", the drop
// tracepoint. Attach then adds interfaces.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", classify(err))
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("count possible CPUs: %w", err)
	}
	spec, err := loadFlowlog()
	if err != nil {
		return nil, fmt.Errorf("parse embedded BPF object: %w", err)
	}
	spec.Maps["flows0"].MaxEntries = uint32(cfg.MaxFlows)
	spec.Maps["flows1"].MaxEntries = uint32(cfg.MaxFlows)
	spec.Maps["frags"].MaxEntries = uint32(cfg.Fragments)
	spec.Maps["ifaces"].MaxEntries = uint32(cfg.MaxInterfaces)
	spec.Maps["lost"].MaxEntries = uint32(cfg.MaxInterfaces)
	if err := spec.Variables["window_ns"].Set(uint64(cfg.Window)); err != nil {
		return nil, fmt.Errorf("set window_ns: %w", err)
	}

	s := &Source{
		cfg:      cfg,
		spec:     spec,
		ncpu:     ncpu,
		attached: make(map[uint32]*attachment),
		slots:    make([]slot, cfg.MaxInterfaces),
		keys:     make([]flowlogFlowKey, drainBatch),
		vals:     make([]flowlogFlowValue, drainBatch*ncpu),
		lostVals: make([]uint64, ncpu),
		statVals: make([]uint64, ncpu),
	}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("create flow maps: %w", classify(err))
	}
	s.genOffset[0] = wallOffset()
	s.ctl = flowlogControl{WallOffsetNs: s.genOffset[0]}
	if err := s.objs.ControlMap.Put(uint32(0), &s.ctl); err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("write control map: %w", err)
	}

	switch cfg.Reject {
	case "off":
		s.rejectErr = errors.New("disabled by configuration (reject: off)")
	default:
		if err := s.loadReject(); err != nil {
			if cfg.Reject == "on" {
				s.objs.Close()
				return nil, fmt.Errorf("reject: on: %w", err)
			}
			s.rejectErr = err
		}
	}
	return s, nil
}

// loadReject loads and attaches the skb:kfree_skb program.
func (s *Source) loadReject() error {
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("load kernel BTF (needed for REJECT from drop reasons): %w", errors.Join(ErrUnsupported, err))
	}
	reason, err := netfilterDropReason(kernel)
	if err != nil {
		return err
	}
	spec := s.spec.Copy()
	if err := spec.Variables["netfilter_drop_reason"].Set(reason); err != nil {
		return fmt.Errorf("set netfilter_drop_reason: %w", err)
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"on_kfree_skb"`
	}
	opts := &ebpf.CollectionOptions{
		MapReplacements: s.mapReplacements(),
		Programs:        ebpf.ProgramOptions{KernelTypes: kernel},
	}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return fmt.Errorf("load skb:kfree_skb program: %w", classify(err))
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: objs.Prog})
	if err != nil {
		objs.Prog.Close()
		return fmt.Errorf("attach skb:kfree_skb program: %w", classify(err))
	}
	s.kfree, s.kfreeLink = objs.Prog, l
	// Only now do the ingress programs start remembering skbs.
	if err := s.spec.Variables["track_reject"].Set(uint8(1)); err != nil {
		return fmt.Errorf("set track_reject: %w", err)
	}
	return nil
}

// netfilterDropReason reads SKB_DROP_REASON_NETFILTER_DROP from the kernel's
// BTF: the enum's values are not ABI.
func netfilterDropReason(kernel *btf.Spec) (uint32, error) {
	var e *btf.Enum
	if err := kernel.TypeByName("skb_drop_reason", &e); err != nil {
		return 0, fmt.Errorf("find enum skb_drop_reason in kernel BTF (kernel before 5.17?): %w", errors.Join(ErrUnsupported, err))
	}
	for _, v := range e.Values {
		if v.Name == "SKB_DROP_REASON_NETFILTER_DROP" {
			return uint32(v.Value), nil
		}
	}
	return 0, fmt.Errorf("find SKB_DROP_REASON_NETFILTER_DROP in kernel BTF: %w", ErrUnsupported)
}

func (s *Source) mapReplacements() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		"flows0":         s.objs.Flows0,
		"flows1":         s.objs.Flows1,
		"control_map":    s.objs.ControlMap,
		"frags":          s.objs.Frags,
		"inflight_cache": s.objs.InflightCache,
		"ifaces":         s.objs.Ifaces,
		"lost":           s.objs.Lost,
		"stats":          s.objs.Stats,
	}
}

// RejectError is nil when packets dropped by netfilter are recorded as
// REJECT, else the reason they are not (all traffic is then ACCEPT).
func (s *Source) RejectError() error { return s.rejectErr }

// AttachMode reports how interfaces are attached: "tcx", "netlink", or ""
// before the first Attach in "auto" mode.
func (s *Source) AttachMode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.tcx {
	case modeTCX:
		return "tcx"
	case modeNetlink:
		return "netlink"
	}
	return ""
}

// Stats sums the kernel counters over all CPUs.
func (s *Source) Stats() (Stats, error) {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	var out [7]uint64
	for i := range out {
		if err := s.objs.Stats.Lookup(uint32(i), s.statVals); err != nil {
			return Stats{}, fmt.Errorf("read stats[%d]: %w", i, err)
		}
		for _, v := range s.statVals {
			out[i] += v
		}
	}
	return Stats{
		Packets: out[flowlogStatIndexSTAT_PACKETS], NotIP: out[flowlogStatIndexSTAT_NOT_IP],
		Truncated: out[flowlogStatIndexSTAT_TRUNCATED], MapFull: out[flowlogStatIndexSTAT_MAP_FULL],
		RejectMoved: out[flowlogStatIndexSTAT_REJECT_MOVED], RejectEgress: out[flowlogStatIndexSTAT_REJECT_EGRESS],
		RejectUnmatched: out[flowlogStatIndexSTAT_REJECT_UNMATCHED],
	}, nil
}

// LastDrain describes the most recent Drain.
func (s *Source) LastDrain() DrainStats {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	return s.last
}

// MaxFlows is the flow map capacity in force, for a map fill metric
// (LastDrain().Entries / MaxFlows()).
func (s *Source) MaxFlows() int { return s.cfg.MaxFlows }

// Drain implements capture.Source. It switches the programs to the other
// flow map, waits until no program can still write the previous one, and
// empties it. fn must not call Drain or Close.
func (s *Source) Drain(fn func(*capture.Delta)) (map[uint32]uint64, error) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errors.New("drain: source closed")
	}
	start := time.Now()
	old := s.gen
	s.gen ^= 1
	s.genOffset[s.gen] = wallOffset()
	s.ctl = flowlogControl{WallOffsetNs: s.genOffset[s.gen], Gen: s.gen}
	if err := s.objs.ControlMap.Put(uint32(0), &s.ctl); err != nil {
		s.gen = old
		return nil, fmt.Errorf("switch flow map generation: %w", err)
	}
	graceStart := time.Now()
	waitGrace()
	grace := time.Since(graceStart)

	m := s.objs.Flows0
	if old == 1 {
		m = s.objs.Flows1
	}
	entries, deltas, err := s.drainMap(m, s.genOffset[old], fn)
	lost, lerr := s.readLost()
	s.statMu.Lock()
	s.last = DrainStats{Entries: entries, Deltas: deltas, Duration: time.Since(start), Grace: grace}
	s.statMu.Unlock()
	return lost, errors.Join(err, lerr)
}

// drainMap empties m, calling fn for every entry with packets left.
func (s *Source) drainMap(m *ebpf.Map, offset int64, fn func(*capture.Delta)) (entries, deltas int, err error) {
	if !s.noBatch {
		var cursor ebpf.MapBatchCursor
		for {
			n, err := m.BatchLookupAndDelete(&cursor, s.keys, s.vals, nil)
			for i := range n {
				if s.emit(&s.keys[i], s.vals[i*s.ncpu:(i+1)*s.ncpu], offset, fn) {
					deltas++
				}
			}
			entries += n
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return entries, deltas, nil
			}
			if errors.Is(err, ebpf.ErrNotSupported) && entries == 0 {
				s.noBatch = true // remembered: the kernel will not learn it
				break
			}
			if err != nil {
				return entries, deltas, fmt.Errorf("drain flow map: %w", err)
			}
		}
	}
	// Kernels before 5.6: collect the keys, then take them one by one. No
	// program writes this generation any more, so the walk is stable.
	keys := s.keys[:0]
	it := m.Iterate()
	var k flowlogFlowKey
	vals := s.vals[:s.ncpu]
	for it.Next(&k, &vals) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return entries, deltas, fmt.Errorf("iterate flow map: %w", err)
	}
	for i := range keys {
		if err := m.LookupAndDelete(&keys[i], vals); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return entries, deltas, fmt.Errorf("take flow map entry: %w", err)
		}
		entries++
		if s.emit(&keys[i], vals, offset, fn) {
			deltas++
		}
	}
	s.keys = keys[:cap(keys)]
	return entries, deltas, nil
}

// emit merges the per-CPU shares of one entry into s.delta and hands it to
// fn. Entries whose packets all moved to REJECT are skipped.
func (s *Source) emit(k *flowlogFlowKey, vals []flowlogFlowValue, offset int64, fn func(*capture.Delta)) bool {
	d := &s.delta
	*d = capture.Delta{}
	var first, last uint64
	var fin, syn, rst, synack bool
	for i := range vals {
		v := &vals[i]
		if v.Packets == 0 {
			continue // this CPU's share was moved to REJECT entirely
		}
		d.Packets += v.Packets
		d.Bytes += v.Bytes
		if first == 0 || v.FirstNs < first {
			first = v.FirstNs
		}
		if v.LastNs > last {
			last = v.LastNs
		}
		fin = fin || v.Fin > 0
		syn = syn || v.Syn > 0
		rst = rst || v.Rst > 0
		synack = synack || v.Synack > 0
	}
	if d.Packets == 0 {
		return false
	}
	if fin {
		d.TCPFlags |= flow.TCPFlagFIN
	}
	if syn {
		d.TCPFlags |= flow.TCPFlagSYN
	}
	if rst {
		d.TCPFlags |= flow.TCPFlagRST
	}
	if synack {
		d.TCPFlags |= flow.TCPFlagACK
	}
	d.Key = flow.Key{
		Interface: k.AttachId,
		SrcPort:   k.SrcPort,
		DstPort:   k.DstPort,
		Protocol:  k.Proto,
		Action:    flow.Action(k.Action),
	}
	if k.Ipv6 != 0 {
		d.Key.Src = netip.AddrFrom16(k.Src)
		d.Key.Dst = netip.AddrFrom16(k.Dst)
	} else {
		d.Key.Src = netip.AddrFrom4([4]byte(k.Src[:4]))
		d.Key.Dst = netip.AddrFrom4([4]byte(k.Dst[:4]))
	}
	d.Direction = flow.Direction(k.Direction)
	// The kernel chose the window with this very offset, so the converted
	// times fall inside it; the clamp only guards the arithmetic.
	w := int64(s.cfg.Window)
	lo := int64(k.Window) * w
	hi := lo + w - 1
	d.First = min(max(int64(first)+offset, lo), hi)
	d.Last = min(max(int64(last)+offset, lo), hi)
	fn(d)
	return true
}

// readLost returns the losses per interface id since the previous drain and
// releases the slots of detached interfaces.
func (s *Source) readLost() (map[uint32]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lost map[uint32]uint64
	var errs []error
	for i := range s.slots {
		sl := &s.slots[i]
		if !sl.used {
			continue
		}
		if err := s.objs.Lost.Lookup(uint32(i), s.lostVals); err != nil {
			errs = append(errs, fmt.Errorf("read lost[%d]: %w", i, err))
			continue
		}
		var total uint64
		for _, v := range s.lostVals {
			total += v
		}
		if total > sl.base {
			if lost == nil {
				lost = make(map[uint32]uint64)
			}
			lost[sl.id] += total - sl.base
			sl.base = total
		}
		if sl.draining {
			*sl = slot{base: total}
		}
	}
	return lost, errors.Join(errs...)
}

// Close implements capture.Source.
func (s *Source) Close() error {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for id, a := range s.attached {
		errs = append(errs, a.close())
		delete(s.attached, id)
	}
	if s.kfreeLink != nil {
		errs = append(errs, s.kfreeLink.Close())
	}
	if s.kfree != nil {
		errs = append(errs, s.kfree.Close())
	}
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}

// wallOffset returns CLOCK_REALTIME − CLOCK_BOOTTIME in nanoseconds, the
// offset that turns bpf_ktime_get_boot_ns() into Unix time. Reading boot
// time on both sides of the real time halves the error.
func wallOffset() int64 {
	var b1, r, b2 unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &b1)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r)
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &b2)
	boot := (b1.Nano() + b2.Nano()) / 2
	return r.Nano() - boot
}

// waitGrace waits for an RCU grace period: every TC program run and every
// drop tracepoint run that started before it has finished. The receive path
// from the TC ingress hook to netfilter's verdict runs inside one RCU
// read-side section, so afterwards no packet counted into the previous
// generation can still be moved. membarrier(MEMBARRIER_CMD_GLOBAL) is
// synchronize_rcu(); where it is refused (nohz_full CPUs) a pause far longer
// than a softirq has to do.
func waitGrace() {
	const memberCmdGlobal = 1
	if _, _, errno := unix.Syscall(unix.SYS_MEMBARRIER, memberCmdGlobal, 0, 0); errno != 0 {
		time.Sleep(50 * time.Millisecond)
	}
}

// classify wraps permission and feature errors with the package's
// sentinels so that callers can fall back to another source.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES), errors.Is(err, os.ErrPermission):
		return errors.Join(ErrPermission, err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return errors.Join(ErrUnsupported, err)
	}
	return err
}
