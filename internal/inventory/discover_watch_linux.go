package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// WatchConfig says which network namespaces a Watcher follows. The
// agent's own namespace is always followed.
type WatchConfig struct {
	// Netns are named namespaces (in NetnsDir) or paths
	// (/proc/PID/ns/net) to follow; one that does not exist yet is
	// picked up when it appears.
	Netns []string
	// AllNetns follows every namespace in NetnsDir, also ones created
	// later.
	AllNetns bool
	// NetnsDir is where named namespaces are; "" is DefaultNetnsDir.
	NetnsDir string
	// Poll is how often NetnsDir is looked at for namespaces that came
	// or went (a directory read); 0 means 250 ms.
	Poll time.Duration
	// Rescan is how often each namespace's links are listed again in case
	// a netlink event was missed (the socket buffer overflowed); 0 means
	// ten seconds.
	Rescan time.Duration
}

// Validate checks the namespace names.
func (c WatchConfig) Validate() error {
	for _, n := range c.Netns {
		if n == "" || n == "." || n == ".." || (n[0] != '/' && containsSlash(n)) {
			return fmt.Errorf("netns %q: want a name in /run/netns or an absolute path", n)
		}
	}
	if c.Poll < 0 || c.Rescan < 0 {
		return fmt.Errorf("poll %s, rescan %s: must not be negative", c.Poll, c.Rescan)
	}
	return nil
}

func containsSlash(s string) bool {
	for i := range len(s) {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// Update is the state of one namespace's links after a change: all of
// them, or Gone when the namespace went away (or could not be read: Err).
type Update struct {
	Netns string
	Links []Link
	Gone  bool
	Err   error
}

// Watcher follows the links and addresses of network namespaces over
// netlink (RTNLGRP_LINK and the address groups) and sends the full list
// of a namespace's links on Updates whenever it changed: a link or an
// address appeared, changed or went away. Namespaces are looked for every
// Poll; each is also scanned again every Rescan, so a missed event costs at
// most that long.
type Watcher struct {
	cfg     WatchConfig
	updates chan Update

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	nss    map[string]context.CancelFunc
}

// NewWatcher checks cfg and returns a stopped Watcher.
func NewWatcher(cfg WatchConfig) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Poll == 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = 10 * time.Second
	}
	return &Watcher{cfg: cfg, updates: make(chan Update, 64), nss: map[string]context.CancelFunc{}}, nil
}

// Updates delivers the namespaces' link lists: first one per namespace
// found at Start, then one per change.
func (w *Watcher) Updates() <-chan Update { return w.updates }

// Start scans the agent's namespace (an error there is returned) and
// starts following it and the configured namespaces.
func (w *Watcher) Start(ctx context.Context) error {
	h, err := netlinkHandle("")
	if err != nil {
		return err
	}
	links, err := listLinks(h, "")
	h.Close()
	if err != nil {
		return err
	}
	ctx, w.cancel = context.WithCancel(ctx)
	w.updates <- Update{Netns: "", Links: links}
	w.startNS(ctx, "", links)
	w.wg.Add(1)
	go w.pollNamespaces(ctx)
	return nil
}

// Stop ends every subscription and waits for the goroutines.
func (w *Watcher) Stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

// pollNamespaces starts and stops the namespace watchers as namespaces
// come and go.
func (w *Watcher) pollNamespaces(ctx context.Context) {
	defer w.wg.Done()
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		w.syncNamespaces(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Watcher) syncNamespaces(ctx context.Context) {
	want := map[string]bool{"": true}
	if w.cfg.AllNetns {
		names, err := ListNetns(w.cfg.NetnsDir)
		if err != nil {
			w.send(ctx, Update{Netns: w.cfg.NetnsDir, Err: err})
		}
		for _, n := range names {
			want[n] = true
		}
	}
	for _, n := range w.cfg.Netns {
		if h, err := openNetns(w.nsPath(n)); err == nil {
			h.Close()
			want[n] = true
		}
	}
	w.mu.Lock()
	var gone []string
	for n, cancel := range w.nss {
		if n != "" && !want[n] {
			cancel()
			delete(w.nss, n)
			gone = append(gone, n)
		}
	}
	var added []string
	for n := range want {
		if _, ok := w.nss[n]; !ok {
			added = append(added, n)
		}
	}
	w.mu.Unlock()
	slices.Sort(gone)
	slices.Sort(added)
	for _, n := range gone {
		w.send(ctx, Update{Netns: n, Gone: true})
	}
	for _, n := range added {
		w.startNS(ctx, n, nil)
	}
}

// nsPath is what openNetns takes for a configured namespace.
func (w *Watcher) nsPath(n string) string {
	if n == "" || n[0] == '/' || w.cfg.NetnsDir == "" || w.cfg.NetnsDir == DefaultNetnsDir {
		return n
	}
	return w.cfg.NetnsDir + "/" + n
}

func (w *Watcher) send(ctx context.Context, u Update) {
	select {
	case w.updates <- u:
	case <-ctx.Done():
	}
}

// startNS follows namespace ns; known is its link list if already sent.
func (w *Watcher) startNS(ctx context.Context, ns string, known []Link) {
	nctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.nss[ns] = cancel
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		err := w.watchNS(nctx, ns, known)
		if err != nil && nctx.Err() == nil {
			// Forget it: the next poll starts it again and sends its
			// links anew.
			w.mu.Lock()
			delete(w.nss, ns)
			w.mu.Unlock()
			cancel()
			w.send(ctx, Update{Netns: ns, Err: err})
		}
	}()
}

// watchNS subscribes to ns's link and address events and sends its link
// list after each burst of events (and every Rescan, if it changed).
func (w *Watcher) watchNS(ctx context.Context, ns string, known []Link) error {
	done := make(chan struct{})
	defer close(done)
	linkCh := make(chan netlink.LinkUpdate, 256)
	addrCh := make(chan netlink.AddrUpdate, 256)
	subErr := make(chan error, 2)
	onErr := func(err error) {
		select {
		case subErr <- err:
		default:
		}
	}
	lopt := netlink.LinkSubscribeOptions{ErrorCallback: onErr}
	aopt := netlink.AddrSubscribeOptions{ErrorCallback: onErr}
	if ns != "" {
		h, err := openNetns(w.nsPath(ns))
		if err != nil {
			return fmt.Errorf("open network namespace %s: %w", ns, err)
		}
		defer h.Close()
		lopt.Namespace, aopt.Namespace = &h, &h
	}
	if err := netlink.LinkSubscribeWithOptions(linkCh, done, lopt); err != nil {
		return fmt.Errorf("subscribe to links in %q: %w", ns, err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrCh, done, aopt); err != nil {
		return fmt.Errorf("subscribe to addresses in %q: %w", ns, err)
	}
	h, err := netlinkHandle(w.nsPath(ns))
	if err != nil {
		return err
	}
	defer h.Close()

	last := known
	scan := func() error {
		links, err := listLinks(h, ns)
		if err != nil {
			return err
		}
		if last == nil || !slices.EqualFunc(links, last, func(a, b Link) bool { return a.Equal(&b) }) {
			last = links
			w.send(ctx, Update{Netns: ns, Links: links})
		}
		return nil
	}
	if known == nil {
		if err := scan(); err != nil {
			return err
		}
	}
	tick := time.NewTicker(w.cfg.Rescan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-subErr:
			return fmt.Errorf("netlink subscription in %q: %w", ns, err)
		case _, ok := <-linkCh:
			if !ok {
				return errors.New("link subscription closed")
			}
		case _, ok := <-addrCh:
			if !ok {
				return errors.New("address subscription closed")
			}
		case <-tick.C:
		}
		// Gather the rest of the burst (a new link comes with several
		// messages, and its addresses after it).
		settle := time.After(10 * time.Millisecond)
	burst:
		for {
			select {
			case <-linkCh:
			case <-addrCh:
			case <-settle:
				break burst
			}
		}
		if err := scan(); err != nil {
			return err
		}
	}
}
