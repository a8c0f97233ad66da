package ebpf

import (
	"errors"
	"fmt"
	"time"
)

// Errors New and Attach wrap, for callers that pick another source.
var (
	// ErrPermission: the process may not load BPF programs or attach them.
	ErrPermission = errors.New("ebpf: not permitted (needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; --source afpacket works with CAP_NET_RAW)")
	// ErrUnsupported: the kernel (or OS) lacks something the source needs.
	ErrUnsupported = errors.New("ebpf: not supported by this kernel")
)

// Config configures the eBPF source. The YAML keys are given for the
// agent's capture.ebpf section.
type Config struct {
	// Window is the kernel's aggregation window (`window`). Every Delta lies
	// within one window; it must divide 60 s so that 60 s and 600 s records
	// are unions of kernel windows. Default 60 s.
	Window time.Duration `yaml:"window"`
	// MaxFlows is the capacity of the kernel flow map, in flow keys per
	// drain period (`max-flows`). Packets of new keys beyond it are lost and
	// reported as SKIPDATA. Memory: two maps of MaxFlows entries of
	// 56 + 48 × CPUs bytes plus kernel overhead. Default 65536.
	MaxFlows int `yaml:"max-flows"`
	// MaxInterfaces bounds how many interfaces can be attached at once
	// (`max-interfaces`). Default 1024.
	MaxInterfaces int `yaml:"max-interfaces"`
	// Fragments is how many first fragments are remembered so that later
	// fragments get their ports (`fragments`). Default 4096.
	Fragments int `yaml:"fragments"`
	// Reject says whether packets dropped by netfilter become REJECT
	// (`reject`): "auto" (default) uses the skb:kfree_skb tracepoint when
	// the kernel has BTF and drop reasons and records everything as ACCEPT
	// otherwise (see Source.RejectError); "on" fails without them; "off"
	// never loads the tracepoint.
	Reject string `yaml:"reject"`
	// Attach selects how TC programs are attached (`attach`): "auto"
	// (default: TCX links on kernels that have them, 6.6+, else a clsact
	// qdisc with a bpf filter via netlink), "tcx" or "netlink".
	Attach string `yaml:"attach"`
}

// DefaultConfig returns the configuration used for zero fields.
func DefaultConfig() Config {
	return Config{
		Window:        60 * time.Second,
		MaxFlows:      65536,
		MaxInterfaces: 1024,
		Fragments:     4096,
		Reject:        "auto",
		Attach:        "auto",
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = d.MaxFlows
	}
	if c.MaxInterfaces == 0 {
		c.MaxInterfaces = d.MaxInterfaces
	}
	if c.Fragments == 0 {
		c.Fragments = d.Fragments
	}
	if c.Reject == "" {
		c.Reject = d.Reject
	}
	if c.Attach == "" {
		c.Attach = d.Attach
	}
	return c
}

// Validate checks the configuration after defaults are applied, naming the
// offending key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Window < time.Second || c.Window%time.Second != 0 || (60*time.Second)%c.Window != 0 {
		errs = append(errs, fmt.Errorf("window: %v must be a whole number of seconds dividing 60s", c.Window))
	}
	if c.MaxFlows < 1 || c.MaxFlows > 1<<24 {
		errs = append(errs, fmt.Errorf("max-flows: %d is not within 1..%d", c.MaxFlows, 1<<24))
	}
	if c.MaxInterfaces < 1 || c.MaxInterfaces > 1<<16 {
		errs = append(errs, fmt.Errorf("max-interfaces: %d is not within 1..%d", c.MaxInterfaces, 1<<16))
	}
	if c.Fragments < 1 || c.Fragments > 1<<20 {
		errs = append(errs, fmt.Errorf("fragments: %d is not within 1..%d", c.Fragments, 1<<20))
	}
	switch c.Reject {
	case "auto", "on", "off":
	default:
		errs = append(errs, fmt.Errorf("reject: %q is not auto, on or off", c.Reject))
	}
	switch c.Attach {
	case "auto", "tcx", "netlink":
	default:
		errs = append(errs, fmt.Errorf("attach: %q is not auto, tcx or netlink", c.Attach))
	}
	return errors.Join(errs...)
}

// Stats are the kernel programs' counters since the source was created.
type Stats struct {
	Packets         uint64 // skbs counted by the TC programs (a GSO skb is one)
	NotIP           uint64 // frames without an IPv4/IPv6 packet (ARP, LLDP, ...)
	Truncated       uint64 // IP packets whose header was cut short or malformed
	MapFull         uint64 // packets lost because the flow map was full
	RejectMoved     uint64 // received packets moved from ACCEPT to REJECT
	RejectEgress    uint64 // locally sent packets dropped by netfilter, counted as egress REJECT
	RejectUnmatched uint64 // netfilter drops not attributable to an attached interface
}

// DrainStats describe the last Drain.
type DrainStats struct {
	Entries  int           // flow map entries read
	Deltas   int           // Deltas handed to the callback (entries with packets left)
	Duration time.Duration // wall time of the drain, including the grace period
	Grace    time.Duration // time spent waiting for the RCU grace period
}
