package inventory

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/agent/netlab"
)

// nextUpdate waits for an update of namespace ns that satisfies ok.
func nextUpdate(t *testing.T, w *Watcher, ns string, within time.Duration, ok func(Update) bool) Update {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case u := <-w.Updates():
			if u.Err != nil && u.Netns == ns {
				t.Fatalf("update error: %v", u.Err)
			}
			if u.Netns == ns && ok(u) {
				return u
			}
		case <-deadline:
			t.Fatalf("no matching update of %q within %s", ns, within)
		}
	}
}

func findLink(links []Link, name string) *Link {
	i := slices.IndexFunc(links, func(l Link) bool { return l.Name == name })
	if i < 0 {
		return nil
	}
	return &links[i]
}

func TestWatcherFollowsLinksAndAddresses(t *testing.T) {
	lab := netlab.New(t)
	ns, other := lab.Netns("w"), lab.Netns("o")
	w, err := NewWatcher(WatchConfig{Netns: []string{ns, "/proc/1/ns/net-missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	nextUpdate(t, w, ns, 3*time.Second, func(u Update) bool { return findLink(u.Links, "lo") != nil })

	began := time.Now()
	lab.Veth(netlab.End{Netns: ns, Name: "wv", Addrs: []netip.Prefix{netip.MustParsePrefix("10.61.0.1/24")}},
		netlab.End{Netns: other, Name: "ov"})
	u := nextUpdate(t, w, ns, 2*time.Second, func(u Update) bool {
		l := findLink(u.Links, "wv")
		return l != nil && len(l.Addrs) == 1
	})
	if d := time.Since(began); d > time.Second {
		t.Errorf("new link seen after %s, want within a second", d)
	}
	l := findLink(u.Links, "wv")
	if l.Netns != ns || l.Index == 0 || len(l.MAC) != 6 || l.Addrs[0] != netip.MustParsePrefix("10.61.0.1/24") {
		t.Errorf("link %+v", l)
	}

	lab.Run(ns, "ip", "addr", "add", "10.61.0.9/24", "dev", "wv")
	lab.Run(ns, "ip", "addr", "add", "2001:db8:61::1/64", "dev", "wv", "nodad")
	u = nextUpdate(t, w, ns, 2*time.Second, func(u Update) bool {
		l := findLink(u.Links, "wv")
		return l != nil && len(l.Addrs) == 3
	})
	var v4 []netip.Addr
	for _, a := range findLink(u.Links, "wv").Addrs {
		if a.Addr().Is4() {
			v4 = append(v4, a.Addr())
		}
	}
	if len(v4) != 2 || v4[0] != netip.MustParseAddr("10.61.0.1") {
		t.Errorf("primary IPv4 first: %v", v4)
	}

	lab.Run(ns, "ip", "link", "del", "wv")
	nextUpdate(t, w, ns, 2*time.Second, func(u Update) bool { return findLink(u.Links, "wv") == nil })
}

func TestWatcherNamespacesComeAndGo(t *testing.T) {
	lab := netlab.New(t)
	dir := t.TempDir()
	w, err := NewWatcher(WatchConfig{AllNetns: true, NetnsDir: dir, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// A namespace appears in the directory: bind-mount a lab namespace
	// under a name there, as `ip netns add` would.
	ns := lab.Netns("n")
	name := "appeared"
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mounted := filepath.Join(dir, name)
	lab.Run("", "mount", "--bind", filepath.Join(DefaultNetnsDir, ns), mounted)
	t.Cleanup(func() { _ = netlab.Command("", "umount", "-l", mounted).Run() })
	nextUpdate(t, w, name, 2*time.Second, func(u Update) bool { return findLink(u.Links, "lo") != nil })
	lab.Run("", "umount", "-l", mounted) // as `ip netns delete` does
	if err := os.Remove(mounted); err != nil {
		t.Fatal(err)
	}
	nextUpdate(t, w, name, 2*time.Second, func(u Update) bool { return u.Gone })
}

func TestWatchConfigValidate(t *testing.T) {
	for _, c := range []WatchConfig{{Netns: []string{""}}, {Netns: []string{"a/b"}}, {Netns: []string{".."}}, {Poll: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (WatchConfig{Netns: []string{"blue", "/proc/1/ns/net"}}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestNATFollowerMasquerade routes a client through a namespace that
// masquerades, and checks that the follower in that namespace maps the
// translated flow back to the client.
func TestNATFollowerMasquerade(t *testing.T) {
	netlab.Need(t, "nft")
	lab := netlab.New(t)
	client, router, server := lab.Netns("c"), lab.Netns("r"), lab.Netns("s")
	p := netip.MustParsePrefix
	lab.Veth(netlab.End{Netns: client, Name: "c0", Addrs: []netip.Prefix{p("10.62.1.2/24")}, NoIPv6: true},
		netlab.End{Netns: router, Name: "r0", Addrs: []netip.Prefix{p("10.62.1.1/24")}, NoIPv6: true})
	lab.Veth(netlab.End{Netns: router, Name: "r1", Addrs: []netip.Prefix{p("10.62.2.1/24")}, NoIPv6: true},
		netlab.End{Netns: server, Name: "s0", Addrs: []netip.Prefix{p("10.62.2.2/24")}, NoIPv6: true})
	lab.Run(client, "ip", "route", "add", "default", "via", "10.62.1.1")
	lab.Run(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	rules := filepath.Join(t.TempDir(), "nat.nft")
	if err := os.WriteFile(rules, []byte(`table ip nat {
	chain post { type nat hook postrouting priority srcnat; oifname "r1" masquerade; }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	lab.Run(router, "nft", "-f", rules)

	f := NewNATFollower(router, 0)
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	ap := netip.MustParseAddrPort
	if err := netlab.TCP(client, ap("10.62.1.2:41000"), server, ap("10.62.2.2:80"), 10, 10, false); err != nil {
		t.Fatal(err)
	}
	outside := Tuple{Src: p("10.62.2.1/32").Addr(), Dst: p("10.62.2.2/32").Addr(), SrcPort: 41000, DstPort: 80, Protocol: 6}
	deadline := time.Now().Add(2 * time.Second)
	for {
		s, d, ok := f.Lookup(outside)
		if ok {
			if s != netip.MustParseAddr("10.62.1.2") || d != netip.MustParseAddr("10.62.2.2") {
				t.Errorf("leaving through r1: pkt %v -> %v", s, d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the masqueraded connection never showed up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, d, ok := f.Lookup(outside.reverse())
	if !ok || s != netip.MustParseAddr("10.62.2.2") || d != netip.MustParseAddr("10.62.1.2") {
		t.Errorf("reply arriving on r1: pkt %v -> %v %v", s, d, ok)
	}
	// A connection that began before the follower: found by the dump.
	if err := netlab.TCP(client, ap("10.62.1.2:41001"), server, ap("10.62.2.2:81"), 1, 1, false); err != nil {
		t.Fatal(err)
	}
	late := NewNATFollower(router, 0)
	if err := late.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer late.Stop()
	outside.SrcPort, outside.DstPort = 41001, 81
	if _, _, ok := late.Lookup(outside); !ok {
		t.Error("dump missed a connection in TIME_WAIT")
	}
}

// A name `ip netns add` has created but not yet mounted is not listed:
// entering it would fail.
func TestListNetnsSkipsUnmountedNames(t *testing.T) {
	lab := netlab.New(t)
	dir := t.TempDir()
	for _, name := range []string{"pending", "ready"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ready := filepath.Join(dir, "ready")
	lab.Run("", "mount", "--bind", filepath.Join(DefaultNetnsDir, lab.Netns("n")), ready)
	t.Cleanup(func() { _ = netlab.Command("", "umount", "-l", ready).Run() })
	names, err := ListNetns(dir)
	if err != nil || !slices.Equal(names, []string{"ready"}) {
		t.Fatalf("ListNetns = %q, %v; want [ready]", names, err)
	}
}
