package inventory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ctnetlink message types and multicast groups.
const (
	nfnlSubsysCtnetlink = 1
	ipctnlMsgNew        = 0
	ipctnlMsgDelete     = 2
	nfnlgrpCtNew        = 1
	nfnlgrpCtDestroy    = 3
)

// NATFollower keeps a NAT table of one network namespace current: it
// subscribes to conntrack's new and destroy events, then dumps the
// connections already tracked. Lookup may be called from any goroutine.
type NATFollower struct {
	ns   string
	keep time.Duration

	mu  sync.RWMutex
	nat *NAT

	cancel context.CancelFunc
	done   chan struct{}
	lost   atomic.Int64
}

// NewNATFollower follows namespace ns ("" the agent's own); connections
// that ended are kept for keep (0 means 11 minutes: the longest window
// plus a minute).
func NewNATFollower(ns string, keep time.Duration) *NATFollower {
	if keep == 0 {
		keep = 11 * time.Minute
	}
	return &NATFollower{ns: ns, keep: keep, nat: NewNAT()}
}

// Start subscribes and dumps; an error means conntrack cannot be read in
// the namespace (no CAP_NET_ADMIN, or no conntrack support).
func (f *NATFollower) Start(ctx context.Context) error {
	// The namespace handle stays open for re-dumps; follow closes it.
	nsh := netns.None()
	if f.ns != "" {
		h, err := openNetns(f.ns)
		if err != nil {
			return fmt.Errorf("open network namespace %s: %w", f.ns, err)
		}
		nsh = h
	}
	fail := func(err error) error {
		if nsh != netns.None() {
			nsh.Close()
		}
		return err
	}
	sock, err := nl.SubscribeAt(nsh, netns.None(), unix.NETLINK_NETFILTER, nfnlgrpCtNew, nfnlgrpCtDestroy)
	if err != nil {
		return fail(fmt.Errorf("subscribe to conntrack events in %q: %w", f.ns, err))
	}
	_ = sock.SetReceiveBufferSize(4<<20, true)
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := sock.SetReceiveTimeout(&tv); err != nil {
		sock.Close()
		return fail(fmt.Errorf("conntrack events in %q: %w", f.ns, err))
	}
	if err := f.dump(nsh); err != nil {
		sock.Close()
		return fail(err)
	}
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go f.follow(ctx, sock, nsh)
	return nil
}

// Stop ends the subscription.
func (f *NATFollower) Stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
}

// EventsLost counts the bursts of conntrack events lost to a full socket
// buffer; each is followed by a new dump, so only connections that began
// and ended in between are missed.
func (f *NATFollower) EventsLost() int64 { return f.lost.Load() }

// Lookup returns pkt-srcaddr and pkt-dstaddr for a flow the host
// translates; see NAT.
func (f *NATFollower) Lookup(t Tuple) (pktSrc, pktDst netip.Addr, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.nat.Lookup(t)
}

// dump adds the connections tracked now.
func (f *NATFollower) dump(nsh netns.NsHandle) error {
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("conntrack in %q: %w", f.ns, err)
	}
	defer h.Close()
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil {
			return fmt.Errorf("dump conntrack table in %q: %w", f.ns, err)
		}
		f.mu.Lock()
		for _, c := range flows {
			f.nat.Observe(tupleOf(c.Forward), tupleOf(c.Reverse))
		}
		f.mu.Unlock()
	}
	return nil
}

func tupleOf(t netlink.IPTuple) Tuple {
	src, _ := netip.AddrFromSlice(t.SrcIP)
	dst, _ := netip.AddrFromSlice(t.DstIP)
	if t.SrcIP.To4() != nil && len(t.SrcIP) == net.IPv6len {
		src, dst = src.Unmap(), dst.Unmap()
	}
	tu := Tuple{Src: src, Dst: dst, Protocol: t.Protocol}
	if hasPorts(t.Protocol) {
		tu.SrcPort, tu.DstPort = t.SrcPort, t.DstPort
	}
	return tu
}

func (f *NATFollower) follow(ctx context.Context, sock *nl.NetlinkSocket, nsh netns.NsHandle) {
	defer close(f.done)
	defer sock.Close()
	if nsh != netns.None() {
		defer nsh.Close()
	}
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	var resync bool
	for ctx.Err() == nil {
		select {
		case <-prune.C:
			f.mu.Lock()
			f.nat.Prune(time.Now().Add(-f.keep).Unix())
			f.mu.Unlock()
		default:
		}
		if resync {
			if f.dump(nsh) == nil {
				resync = false
			}
		}
		msgs, _, err := sock.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				f.lost.Add(1)
				resync = true
			}
			continue // timeout: check ctx
		}
		now := time.Now().Unix()
		f.mu.Lock()
		for _, m := range msgs {
			if m.Header.Type>>8 != nfnlSubsysCtnetlink {
				continue
			}
			orig, reply, ok := ParseConntrack(m.Data)
			if !ok {
				continue
			}
			switch m.Header.Type & 0xFF {
			case ipctnlMsgNew:
				f.nat.Observe(orig, reply)
			case ipctnlMsgDelete:
				f.nat.Ended(orig, reply, now)
			}
		}
		f.mu.Unlock()
	}
}
