package agent

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/inventory"
)

// waitDetached waits until none of the links named (netns/name) is
// attached.
func waitDetached(t *testing.T, a *Agent, within time.Duration, names ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var attached []string
		for _, i := range a.Interfaces() {
			if slices.Contains(names, i.Netns+"/"+i.Name) {
				attached = append(attached, i.Netns+"/"+i.Name)
			}
		}
		if len(attached) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still attached after %s: %v", within, attached)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInterfacesComeAndGo follows every namespace (netns: all): a link
// created in a followed namespace, and one in a namespace created later,
// are attached within a second; a flow log for a subnet picks a link up
// once its address puts it there; links and namespaces that go away are
// detached, and their records are kept.
func TestInterfacesComeAndGo(t *testing.T) {
	for _, source := range sources {
		t.Run(source, func(t *testing.T) {
			l := newLab(t)
			var b [2]byte
			_, _ = rand.Read(b[:])
			tag := "q" + hex.EncodeToString(b[:]) // link names of this test only
			p1, p2 := netip.MustParsePrefix("10.89.0.1/24"), netip.MustParsePrefix("10.89.0.2/24")
			inv, _ := inventory.New(nil, inventory.Overrides{})
			subnet := inv.ResolveLink(inventory.Host{MachineID: host}, inventory.Link{Addrs: []netip.Prefix{p1}}).SubnetID

			cfg := l.config(source, FlowLog{Resource: "vpc"}, FlowLog{Resource: subnet})
			cfg.Netns = Netns{"all"}
			cfg.Interfaces.Include = []string{tag + "*"}
			a := l.start(t, cfg)
			if n := len(a.Interfaces()); n != 0 {
				t.Fatalf("%d links attached before any was created", n)
			}
			ids := a.FlowLogIDs()

			began := time.Now()
			x, y := l.Veth(netlab.End{Netns: l.nsA, Name: tag + "x", Addrs: []netip.Prefix{p1}, NoIPv6: true},
				netlab.End{Netns: l.nsB, Name: tag + "y", Addrs: []netip.Prefix{p2}, NoIPv6: true})
			ifs := waitAttached(t, a, time.Second, l.nsA+"/"+tag+"x", l.nsB+"/"+tag+"y")
			t.Logf("link in followed namespaces attached after %s", time.Since(began))
			// The subnet flow log covers them once their addresses are known.
			deadline := time.Now().Add(time.Second)
			for {
				covered := 0
				for _, i := range ifs {
					if slices.Contains(i.FlowLogs, ids[1]) {
						covered++
					}
				}
				if covered == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("subnet flow log covers %d of the 2 links: %+v", covered, ifs)
				}
				time.Sleep(10 * time.Millisecond)
				ifs = a.Interfaces()
			}

			began = time.Now()
			nsC := l.Netns("c")
			l.Veth(netlab.End{Netns: nsC, Name: tag + "c", NoIPv6: true}, netlab.End{Netns: l.nsA, Name: tag + "d", NoIPv6: true})
			waitAttached(t, a, time.Second, nsC+"/"+tag+"c", l.nsA+"/"+tag+"d")
			t.Logf("link in a new namespace attached after %s", time.Since(began))

			from, to := netip.AddrPortFrom(p1.Addr(), 7100), netip.AddrPortFrom(p2.Addr(), 7200)
			if err := netlab.UDP(x.Netns, from, y.Netns, to, []int{10, 20, 30, 40, 50}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			eniX, eniY := eniOf(t, a.Interfaces(), l.nsA, tag+"x"), eniOf(t, a.Interfaces(), l.nsB, tag+"y")
			eniC := eniOf(t, a.Interfaces(), nsC, tag+"c")

			began = time.Now()
			l.Run(l.nsA, "ip", "link", "del", tag+"x")
			waitDetached(t, a, time.Second, l.nsA+"/"+tag+"x", l.nsB+"/"+tag+"y")
			t.Logf("deleted link detached after %s", time.Since(began))
			if err := netns.DeleteNamed(nsC); err != nil {
				t.Fatal(err)
			}
			// The namespace's own link goes as soon as the agent sees it
			// gone; its peer in nsA only when the kernel has destroyed the
			// namespace, which it does asynchronously (slow on a busy
			// machine) once nothing holds it.
			began = time.Now()
			waitDetached(t, a, 2*time.Second, nsC+"/"+tag+"c")
			waitDetached(t, a, 15*time.Second, l.nsA+"/"+tag+"d")
			t.Logf("links of the deleted namespace detached after %s", time.Since(began))
			if err := a.Stop(); err != nil {
				t.Fatal(err)
			}

			recs := readRecords(t, cfg.FlowLogs[0].Destination)
			sums := sumRecords(recs)
			f := netlab.Flow{Src: from.Addr(), Dst: to.Addr(), SrcPort: 7100, DstPort: 7200, Protocol: 17}
			for name, eni := range map[string]string{"x": eniX, "y": eniY} {
				g := sums[eni][f]
				if g == nil || g.Packets != 5 || g.Bytes != 5*28+150 {
					t.Errorf("%s: %+v", name, g)
				}
			}
			if nd := statusRecords(recs, eniC, flow.LogStatusNoData); len(nd) == 0 {
				t.Errorf("idle link of the deleted namespace: no NODATA")
			}
			sub := sumRecords(readRecords(t, cfg.FlowLogs[1].Destination))
			if g := sub[eniX][f]; g == nil || g.Packets != 5 {
				t.Errorf("subnet flow log: %+v", sub)
			}
			if len(sub[eniC]) != 0 {
				t.Error("subnet flow log has records of a link outside the subnet")
			}
		})
	}
}

// TestReload adds a flow log, then removes another, while traffic flows:
// each flow log has exactly the traffic of the time it existed.
func TestReload(t *testing.T) {
	for _, source := range sources {
		t.Run(source, func(t *testing.T) {
			l := newLab(t)
			logA := FlowLog{Resource: "vpc"}
			logB := FlowLog{Resource: l.nsA + "/va"}
			cfg := l.config(source, logA, logB)
			destA, destB := cfg.FlowLogs[0].Destination, cfg.FlowLogs[1].Destination
			onlyA := cfg
			onlyA.FlowLogs = cfg.FlowLogs[:1]
			onlyB := cfg
			onlyB.FlowLogs = cfg.FlowLogs[1:]
			a := l.start(t, onlyA, l.nsA+"/va", l.nsB+"/vb")
			send := func(port uint16, n int) {
				sizes := make([]int, n)
				for i := range sizes {
					sizes[i] = 100
				}
				if err := netlab.UDP(l.nsA, ap(pA, port), l.nsB, ap(pB, port), sizes); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			send(6001, 3)
			if w, err := a.Reload(cfg); err != nil || len(w) != 0 {
				t.Fatalf("reload adding B: %v %v", w, err)
			}
			if ids := a.FlowLogIDs(); len(ids) != 2 {
				t.Fatalf("flow logs %v", ids)
			}
			send(6002, 4)
			bad := onlyB
			bad.FlowLogs = append(slices.Clone(onlyB.FlowLogs), FlowLog{Destination: "ftp://nope", Format: testFormat, Interval: 60})
			if _, err := a.Reload(bad); err == nil {
				t.Fatal("invalid config reloaded")
			}
			changed := onlyB
			changed.Source = map[string]string{"afpacket": "ebpf", "ebpf": "afpacket"}[source]
			w, err := a.Reload(changed)
			if err != nil || len(w) != 1 {
				t.Fatalf("reload removing A: %v %v", w, err)
			}
			send(6003, 5)
			if err := a.Stop(); err != nil {
				t.Fatal(err)
			}
			count := func(dest string) map[uint16]map[string]uint64 {
				out := map[uint16]map[string]uint64{}
				for eni, flows := range sumRecords(readRecords(t, dest)) {
					for f, tot := range flows {
						if f.Protocol != 17 {
							continue
						}
						if out[f.DstPort] == nil {
							out[f.DstPort] = map[string]uint64{}
						}
						out[f.DstPort][eni] += tot.Packets
					}
				}
				return out
			}
			ifs := map[string]string{}
			gotA, gotB := count(destA), count(destB)
			for port, want := range map[uint16]uint64{6001: 3, 6002: 4} {
				if len(gotA[port]) != 2 {
					t.Errorf("A port %d: %v", port, gotA[port])
				}
				for eni, n := range gotA[port] {
					ifs[eni] = "seen"
					if n != want {
						t.Errorf("A port %d %s: %d packets, want %d", port, eni, n, want)
					}
				}
			}
			if len(gotA[6003]) != 0 {
				t.Errorf("A has records after it was removed: %v", gotA[6003])
			}
			for port, want := range map[uint16]uint64{6002: 4, 6003: 5} {
				if len(gotB[port]) != 1 {
					t.Errorf("B port %d: %v", port, gotB[port])
				}
				for _, n := range gotB[port] {
					if n != want {
						t.Errorf("B port %d: %d packets, want %d", port, n, want)
					}
				}
			}
			if len(gotB[6001]) != 0 {
				t.Errorf("B has records from before it was added: %v", gotB[6001])
			}
		})
	}
}
