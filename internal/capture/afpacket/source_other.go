//go:build !linux

package afpacket

import (
	"errors"

	"github.com/flowlog/flowlog/internal/capture"
)

// Source is the AF_PACKET source; it exists only on Linux.
type Source struct{}

// Stats are a Source's counters.
type Stats struct{ Packets, NotIP, Drops uint64 }

// ErrNotSupported is returned by New on systems without AF_PACKET.
var ErrNotSupported = errors.New("afpacket: AF_PACKET capture needs Linux")

// New fails: AF_PACKET is Linux only.
func New(Config) (*Source, error) { return nil, ErrNotSupported }

func (*Source) Attach(uint32, capture.Link) error { return ErrNotSupported }
func (*Source) Detach(uint32) error               { return ErrNotSupported }
func (*Source) Drain(func(*capture.Delta)) (map[uint32]uint64, error) {
	return nil, ErrNotSupported
}
func (*Source) Close() error       { return nil }
func (*Source) Attached() []uint32 { return nil }
func (*Source) Stats() Stats       { return Stats{} }
