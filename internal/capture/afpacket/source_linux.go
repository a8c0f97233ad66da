package afpacket

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/internal/capture"
)

// Source captures with AF_PACKET rings; see the package documentation.
// Attach, Detach and Drain may be called from different goroutines.
type Source struct {
	cfg    Config
	fanout int

	mu      sync.Mutex
	links   map[uint32]*link
	retired []*link // detached, with counts not drained yet
	closed  bool

	detachedStats counters // of the links detached and drained

	delta capture.Delta // reused by Drain
}

// link is one attached interface: its sockets, one per fanout member.
type link struct {
	id      uint32
	info    capture.Link
	workers []*worker
}

// Stats are a Source's counters since New.
type Stats struct {
	Packets uint64 // packets taken from the rings
	NotIP   uint64 // of which not IPv4/IPv6 (not recorded)
	Drops   uint64 // packets the kernel dropped because a ring was full
}

// New checks cfg and returns a Source with nothing attached.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Fanout
	if n == 0 {
		n = runtime.NumCPU()
	}
	return &Source{cfg: cfg, fanout: n, links: map[uint32]*link{}}, nil
}

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("afpacket: source closed")

// Attach opens the sockets and rings of link l (in its network namespace)
// and starts counting its packets as interface id.
func (s *Source) Attach(id uint32, l capture.Link) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if _, ok := s.links[id]; ok {
		s.mu.Unlock()
		return fmt.Errorf("attach %s as interface %d: id already attached", l.Name, id)
	}
	s.mu.Unlock()

	lk := &link{id: id, info: l}
	err := inNetns(l.Netns, func() error {
		var group uint32
		for i := range s.fanout {
			w, err := openWorker(s.cfg, id, l, i == 0, &group, s.fanout > 1)
			if err != nil {
				return err
			}
			lk.workers = append(lk.workers, w)
		}
		return nil
	})
	if err != nil {
		for _, w := range lk.workers {
			w.stop()
		}
		return fmt.Errorf("attach %s: %w", linkName(l), err)
	}
	for _, w := range lk.workers {
		w.start()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.links[id] != nil {
		for _, w := range lk.workers {
			w.stop()
		}
		if s.closed {
			return ErrClosed
		}
		return fmt.Errorf("attach %s as interface %d: id already attached", l.Name, id)
	}
	s.links[id] = lk
	return nil
}

// Detach stops capturing on the link attached as id. It waits up to twice
// the block timeout for the packets already in the rings; their counts
// come with the next Drain.
func (s *Source) Detach(id uint32) error {
	s.mu.Lock()
	lk := s.links[id]
	delete(s.links, id)
	s.mu.Unlock()
	if lk == nil {
		return fmt.Errorf("detach interface %d: not attached", id)
	}
	for _, w := range lk.workers {
		w.stop()
	}
	s.mu.Lock()
	s.retired = append(s.retired, lk)
	s.mu.Unlock()
	return nil
}

// Drain hands every count gathered since the previous Drain to fn and
// returns the packets the kernel dropped per interface id since then.
func (s *Source) Drain(fn func(*capture.Delta)) (map[uint32]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lost map[uint32]uint64
	addLost := func(id uint32, n uint64) {
		if n == 0 {
			return
		}
		if lost == nil {
			lost = map[uint32]uint64{}
		}
		lost[id] += n
	}
	for _, lk := range s.retired {
		for _, w := range lk.workers {
			w.drain(&s.delta, fn)
			addLost(lk.id, w.takeDrops())
			s.detachedStats.packets.Add(w.stats.packets.Load())
			s.detachedStats.notIP.Add(w.stats.notIP.Load())
			s.detachedStats.drops.Add(w.stats.drops.Load())
		}
	}
	clear(s.retired)
	s.retired = s.retired[:0]
	for _, lk := range s.links {
		for _, w := range lk.workers {
			w.drain(&s.delta, fn)
			w.readDrops()
			addLost(lk.id, w.takeDrops())
		}
	}
	return lost, nil
}

// Settle waits until every packet captured before the call can be
// drained: the kernel hands a partly filled ring block over after the
// block timeout. The agent calls it before a drain that must hold exactly
// the packets up to a moment (a flow log added or removed at a reload).
func (s *Source) Settle() {
	time.Sleep(s.cfg.blockTimeout() + 20*time.Millisecond)
}

// Close detaches every link. Counts not drained yet are dropped.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	links := s.links
	s.links = nil
	s.retired = nil
	s.mu.Unlock()
	for _, lk := range links {
		for _, w := range lk.workers {
			w.stop()
		}
	}
	return nil
}

// Attached returns the ids attached now, sorted.
func (s *Source) Attached() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint32, 0, len(s.links))
	for id := range s.links {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Stats returns the counters of the links attached now and of those
// detached since New.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Packets: s.detachedStats.packets.Load(),
		NotIP:   s.detachedStats.notIP.Load(),
		Drops:   s.detachedStats.drops.Load(),
	}
	for _, lk := range s.links {
		for _, w := range lk.workers {
			st.Packets += w.stats.packets.Load()
			st.NotIP += w.stats.notIP.Load()
			st.Drops += w.stats.drops.Load()
		}
	}
	return st
}

// counters are updated by a worker once per block and read by Stats.
type counters struct {
	packets, notIP, drops atomic.Uint64
}

func linkName(l capture.Link) string {
	if l.Netns != "" {
		return l.Netns + "/" + l.Name
	}
	return l.Name
}

var _ capture.Source = (*Source)(nil)

// needsRaw tells whether err means the process lacks CAP_NET_RAW.
func needsRaw(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}
