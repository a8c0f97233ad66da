package decode

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func fragPacket(src, dst string, proto uint8, id uint32, frag Fragment, sport, dport uint16, flags uint8) Packet {
	s := netip.MustParseAddr(src)
	return Packet{Src: s, Dst: netip.MustParseAddr(dst), Protocol: proto, FragID: id, Fragment: frag,
		SrcPort: sport, DstPort: dport, TCPFlags: flags, IPv6: s.Is6(), Length: 100}
}

func TestFragmentsResolve(t *testing.T) {
	f := NewFragments(16)

	first := fragPacket(a4, b4, 6, 7, FragmentFirst, 1000, 80, 0x02)
	f.Resolve(&first)
	if first.SrcPort != 1000 || first.DstPort != 80 || first.TCPFlags != 0x02 {
		t.Errorf("a first fragment keeps its ports and flags, got %+v", first)
	}

	later := fragPacket(a4, b4, 6, 7, FragmentLater, 0, 0, 0x01)
	f.Resolve(&later)
	if later.SrcPort != 1000 || later.DstPort != 80 || later.TCPFlags != 0 {
		t.Errorf("later fragment: ports %d %d flags %#x, want 1000 80 0", later.SrcPort, later.DstPort, later.TCPFlags)
	}

	// Each part of the key matters.
	for _, other := range []Packet{
		fragPacket(b4, b4, 6, 7, FragmentLater, 0, 0, 0),
		fragPacket(a4, a4, 6, 7, FragmentLater, 0, 0, 0),
		fragPacket(a4, b4, 17, 7, FragmentLater, 0, 0, 0),
		fragPacket(a4, b4, 6, 8, FragmentLater, 0, 0, 0),
		fragPacket("::ffff:"+a4, "::ffff:"+b4, 6, 7, FragmentLater, 0, 0, 0),
	} {
		p := other
		f.Resolve(&p)
		if p.SrcPort != 0 || p.DstPort != 0 {
			t.Errorf("%+v matched the first fragment of another datagram", other)
		}
	}

	// A later fragment seen before its first fragment gets 0 0, even if it
	// somehow arrived with ports.
	early := fragPacket(a6, b6, 17, 0xCAFE, FragmentLater, 9, 9, 0)
	f.Resolve(&early)
	if early.SrcPort != 0 || early.DstPort != 0 {
		t.Errorf("unseen first fragment: ports %d %d, want 0 0", early.SrcPort, early.DstPort)
	}
	first6 := fragPacket(a6, b6, 17, 0xCAFE, FragmentFirst, 53, 5353, 0)
	f.Resolve(&first6)
	late6 := fragPacket(a6, b6, 17, 0xCAFE, FragmentLater, 0, 0, 0)
	f.Resolve(&late6)
	if late6.SrcPort != 53 || late6.DstPort != 5353 {
		t.Errorf("ipv6 later fragment: ports %d %d, want 53 5353", late6.SrcPort, late6.DstPort)
	}

	// A new first fragment with the same key (the id wrapped) replaces the
	// ports without taking another slot.
	before := f.Len()
	again := fragPacket(a4, b4, 6, 7, FragmentFirst, 2000, 443, 0)
	f.Resolve(&again)
	if f.Len() != before {
		t.Errorf("Len went from %d to %d on a repeated key", before, f.Len())
	}
	later = fragPacket(a4, b4, 6, 7, FragmentLater, 0, 0, 0)
	f.Resolve(&later)
	if later.SrcPort != 2000 || later.DstPort != 443 {
		t.Errorf("after replacement: ports %d %d, want 2000 443", later.SrcPort, later.DstPort)
	}

	// Protocols without ports take no slot and later fragments get 0 0.
	icmpFirst := fragPacket(a4, b4, 1, 99, FragmentFirst, 0, 0, 0)
	f.Resolve(&icmpFirst)
	if f.Len() != before {
		t.Errorf("an ICMP first fragment took a slot")
	}

	// Unfragmented packets are left alone.
	plain := fragPacket(a4, b4, 6, 0, FragmentNone, 1, 2, 0x12)
	want := plain
	f.Resolve(&plain)
	if plain != want {
		t.Errorf("unfragmented packet changed: %+v", plain)
	}
}

func TestFragmentsEvictOldest(t *testing.T) {
	f := NewFragments(3)
	for id := uint32(1); id <= 4; id++ {
		p := fragPacket(a4, b4, 17, id, FragmentFirst, uint16(id), 53, 0)
		f.Resolve(&p)
	}
	if f.Len() != 3 {
		t.Errorf("Len = %d, want the capacity 3", f.Len())
	}
	for id := uint32(1); id <= 4; id++ {
		p := fragPacket(a4, b4, 17, id, FragmentLater, 0, 0, 0)
		f.Resolve(&p)
		want := uint16(id)
		if id == 1 {
			want = 0 // the oldest was evicted by the fourth
		}
		if p.SrcPort != want {
			t.Errorf("id %d: srcport %d, want %d", id, p.SrcPort, want)
		}
	}
}

func TestFragmentsMinimumCapacity(t *testing.T) {
	f := NewFragments(0)
	p := fragPacket(a4, b4, 6, 1, FragmentFirst, 5, 6, 0)
	f.Resolve(&p)
	q := fragPacket(a4, b4, 6, 1, FragmentLater, 0, 0, 0)
	f.Resolve(&q)
	if q.SrcPort != 5 {
		t.Errorf("capacity 0 should still remember one datagram, got ports %d %d", q.SrcPort, q.DstPort)
	}
}

// TestFragmentsAgainstModel drives the table with random first and later
// fragments from a small key space (so keys collide, repeat and get evicted
// all the time) and checks every answer against a plain FIFO list.
func TestFragmentsAgainstModel(t *testing.T) {
	type entry struct {
		id    uint32
		proto uint8
		ports [2]uint16
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, capacity := range []int{1, 2, 5, 8, 64} {
		f := NewFragments(capacity)
		f.seed = uint64(capacity) // deterministic probe sequences
		var model []entry         // oldest first
		find := func(id uint32, proto uint8) int {
			for i, e := range model {
				if e.id == id && e.proto == proto {
					return i
				}
			}
			return -1
		}
		for step := 0; step < 20000; step++ {
			id := uint32(rng.IntN(3 * capacity))
			proto := []uint8{6, 17, 132}[rng.IntN(3)]
			if rng.IntN(2) == 0 {
				ports := [2]uint16{uint16(rng.Uint32()), uint16(rng.Uint32())}
				p := fragPacket(a6, b6, proto, id, FragmentFirst, ports[0], ports[1], 0)
				f.Resolve(&p)
				if i := find(id, proto); i >= 0 {
					model[i].ports = ports
				} else {
					if len(model) == capacity {
						model = model[1:]
					}
					model = append(model, entry{id, proto, ports})
				}
			} else {
				p := fragPacket(a6, b6, proto, id, FragmentLater, 0, 0, 0)
				f.Resolve(&p)
				var want [2]uint16
				if i := find(id, proto); i >= 0 {
					want = model[i].ports
				}
				if got := [2]uint16{p.SrcPort, p.DstPort}; got != want {
					t.Fatalf("capacity %d step %d id %d proto %d: ports %v, model %v", capacity, step, id, proto, got, want)
				}
			}
			if f.Len() != len(model) {
				t.Fatalf("capacity %d step %d: Len %d, model %d", capacity, step, f.Len(), len(model))
			}
			if err := f.checkIndex(); err != "" {
				t.Fatalf("capacity %d step %d: %s", capacity, step, err)
			}
		}
	}
}

// checkIndex verifies the hash index: exactly one slot per remembered
// entry, and each entry found from its home slot.
func (f *Fragments) checkIndex() string {
	seen := map[int32]bool{}
	for _, pos := range f.index {
		if pos == 0 {
			continue
		}
		if seen[pos] {
			return "two index slots point at one entry"
		}
		seen[pos] = true
	}
	if len(seen) != f.used {
		return "index holds a different number of entries than the ring"
	}
	for pos := range seen {
		e := &f.entries[pos-1]
		if slot, ok := f.find(&e.key, e.hash); !ok || f.index[slot] != pos {
			return "an entry is not reachable from its home slot"
		}
	}
	return ""
}
