//go:build linux

// Package netlab builds throwaway networks for tests and benchmarks of live
// capture: network namespaces, veth pairs with addresses and static
// neighbours, code and commands run inside a namespace, and a plain packet
// socket that records what crossed an interface, as the truth records are
// compared with. Everything it creates is removed when the test ends.
//
// It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN). Without it, New skips
// the test, except when CI=true: there a missing privilege is a failure.
package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Lab creates namespaces and links for one test.
type Lab struct {
	tb  testing.TB
	tag string // makes names unique across tests and processes
}

// New returns a lab for tb, skipping tb when the process is not root
// (failing instead when CI=true).
func New(tb testing.TB) *Lab {
	tb.Helper()
	Require(tb)
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &Lab{tb: tb, tag: hex.EncodeToString(b[:])}
}

// Require skips tb unless the process may create network namespaces;
// with CI=true it fails tb instead.
func Require(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root to create network namespaces and veth pairs"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + " (CI=true: not skipping)")
	}
	tb.Skip(msg)
}

// Netns creates a network namespace, named after the lab with suffix,
// with its loopback up; it is deleted when the test ends. It returns the
// name (as in /run/netns).
func (l *Lab) Netns(suffix string) string {
	l.tb.Helper()
	name := fmt.Sprintf("fl%s%s", l.tag, suffix)
	errc := make(chan error, 1)
	go func() {
		// NewNamed switches the calling thread into the new namespace, so
		// the thread is put back before it is unlocked. Leaving it locked
		// to end with the goroutine is not enough: a locked main thread
		// (m0) is parked, not ended, and would hold the namespace alive.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("read current network namespace: %w", err)
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if err != nil {
			errc <- err
			return
		}
		ns.Close()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("return from %s: %w", name, err) // the thread stays locked and ends
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		l.tb.Fatalf("create network namespace %s: %v", name, err)
	}
	l.tb.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			l.tb.Logf("delete network namespace %s: %v", name, err)
		}
	})
	h := l.handle(name)
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		l.tb.Fatalf("set lo up in %s: %v", name, err)
	}
	return name
}

// handle returns a netlink handle in namespace ns ("" is the current one).
func (l *Lab) handle(ns string) *netlink.Handle {
	l.tb.Helper()
	h, err := Handle(ns)
	if err != nil {
		l.tb.Fatal(err)
	}
	return h
}

// Handle returns a netlink handle in namespace ns ("" is the current one).
func Handle(ns string) (*netlink.Handle, error) {
	if ns == "" {
		return netlink.NewHandle()
	}
	nh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", ns, err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", ns, err)
	}
	return h, nil
}

// End is one end of a veth pair.
type End struct {
	Netns string // "" is the test process's namespace
	Name  string
	Addrs []netip.Prefix
	// NoIPv6 disables IPv6 on the end, so it sends nothing on its own
	// (no link-local address, router solicitation or MLD report).
	NoIPv6 bool

	// Set by Veth.
	Index int
	MAC   net.HardwareAddr
}

// Veth creates a veth pair between two namespaces, gives each end its
// addresses (IPv6 ones without duplicate address detection), adds
// permanent neighbour entries for the other end's addresses so that no
// neighbour discovery or ARP traffic is needed, and sets both ends up.
// The ends go away with their namespaces (or the test, for "").
func (l *Lab) Veth(a, b End) (End, End) {
	l.tb.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = a.Name
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: b.Name}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	nsFd := func(ns string) any {
		if ns == "" {
			return nil
		}
		h, err := netns.GetFromName(ns)
		if err != nil {
			l.tb.Fatalf("open network namespace %s: %v", ns, err)
		}
		closers = append(closers, func() { h.Close() })
		return netlink.NsFd(int(h))
	}
	if fd := nsFd(a.Netns); fd != nil {
		veth.Namespace = fd
	}
	if fd := nsFd(b.Netns); fd != nil {
		veth.PeerNamespace = fd
	}
	root := l.handle("")
	defer root.Close()
	if err := root.LinkAdd(veth); err != nil {
		l.tb.Fatalf("create veth %s/%s: %v", a.Name, b.Name, err)
	}
	if a.Netns == "" || b.Netns == "" {
		name := a.Name
		if a.Netns != "" {
			name = b.Name
		}
		l.tb.Cleanup(func() {
			if lk, err := netlink.LinkByName(name); err == nil {
				_ = netlink.LinkDel(lk)
			}
		})
	}
	for _, e := range []*End{&a, &b} {
		h := l.handle(e.Netns)
		lk, err := h.LinkByName(e.Name)
		if err != nil {
			h.Close()
			l.tb.Fatalf("find %s in %q: %v", e.Name, e.Netns, err)
		}
		e.Index, e.MAC = lk.Attrs().Index, lk.Attrs().HardwareAddr
		h.Close()
	}
	for _, pair := range [][2]*End{{&a, &b}, {&b, &a}} {
		e, peer := pair[0], pair[1]
		l.configure(e, peer)
	}
	return a, b
}

// configure sets e's sysctls, addresses and neighbours and sets it up.
func (l *Lab) configure(e, peer *End) {
	l.tb.Helper()
	conf := map[string]string{
		"net/ipv6/conf/" + e.Name + "/accept_dad":           "0",
		"net/ipv6/conf/" + e.Name + "/router_solicitations": "0",
		"net/ipv6/conf/" + e.Name + "/addr_gen_mode":        "1", // no link-local address
	}
	if e.NoIPv6 {
		conf["net/ipv6/conf/"+e.Name+"/disable_ipv6"] = "1"
	}
	if err := l.Do(e.Netns, func() error {
		for k, v := range conf {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		l.tb.Fatalf("sysctl for %s: %v", e.Name, err)
	}
	h := l.handle(e.Netns)
	defer h.Close()
	lk, err := h.LinkByName(e.Name)
	if err != nil {
		l.tb.Fatal(err)
	}
	for _, p := range e.Addrs {
		a := &netlink.Addr{IPNet: prefixNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(lk, a); err != nil {
			l.tb.Fatalf("add %s to %s: %v", p, e.Name, err)
		}
	}
	for _, p := range peer.Addrs {
		if !hasFamily(e.Addrs, p.Addr().Is6()) {
			continue
		}
		family := netlink.FAMILY_V4
		if p.Addr().Is6() {
			family = netlink.FAMILY_V6
		}
		n := &netlink.Neigh{LinkIndex: e.Index, Family: family, State: netlink.NUD_PERMANENT,
			IP: net.IP(p.Addr().AsSlice()), HardwareAddr: peer.MAC}
		if err := h.NeighAdd(n); err != nil {
			l.tb.Fatalf("add neighbour %s on %s: %v", p.Addr(), e.Name, err)
		}
	}
	if err := h.LinkSetUp(lk); err != nil {
		l.tb.Fatalf("set %s up: %v", e.Name, err)
	}
}

func hasFamily(ps []netip.Prefix, v6 bool) bool {
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Do runs fn on a thread inside namespace ns ("" runs it directly).
// Sockets fn opens belong to ns and may be used from any goroutine.
func (l *Lab) Do(ns string, fn func() error) error { return Do(ns, fn) }

// Do runs fn on a thread inside namespace ns ("" runs it directly).
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread goes back to its namespace before it is unlocked:
		// a locked thread that is the main one (m0) is parked when its
		// goroutine ends, not ended, and would keep ns alive.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("read current network namespace: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("return from network namespace %s: %w", ns, err) // the thread stays locked and ends
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Run runs a command inside namespace ns (with `ip netns exec`) and
// returns its combined output; it fails the test on error.
func (l *Lab) Run(ns string, args ...string) string {
	l.tb.Helper()
	out, err := Command(ns, args...).CombinedOutput()
	if err != nil {
		l.tb.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	return string(out)
}

// Command returns a command that runs inside namespace ns.
func Command(ns string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(args[0], args[1:]...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// Need skips tb when a program is missing (failing with CI=true).
func Need(tb testing.TB, programs ...string) {
	tb.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			msg := fmt.Sprintf("needs %s (Debian package: see readme-agent.md)", p)
			if os.Getenv("CI") == "true" {
				tb.Fatal(msg + " (CI=true: not skipping)")
			}
			tb.Skip(msg)
		}
	}
}

// ErrTimeout is returned by helpers that wait for packets.
var ErrTimeout = errors.New("netlab: timed out")
