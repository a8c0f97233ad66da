//go:build !linux

package ebpf

import (
	"fmt"
	"runtime"

	"github.com/flowlog/flowlog/internal/capture"
)

// Source is the eBPF capture source; it exists only on Linux.
type Source struct{}

// New fails: eBPF TC programs exist only on Linux.
func New(cfg Config) (*Source, error) {
	return nil, fmt.Errorf("ebpf source on %s: %w", runtime.GOOS, ErrUnsupported)
}

// Attach implements capture.Source.
func (s *Source) Attach(id uint32, l capture.Link) error { return ErrUnsupported }

// Detach implements capture.Source.
func (s *Source) Detach(id uint32) error { return ErrUnsupported }

// Drain implements capture.Source.
func (s *Source) Drain(fn func(*capture.Delta)) (map[uint32]uint64, error) {
	return nil, ErrUnsupported
}

// Close implements capture.Source.
func (s *Source) Close() error { return nil }

// RejectError reports why REJECT is not recorded.
func (s *Source) RejectError() error { return ErrUnsupported }

// AttachMode reports how interfaces are attached.
func (s *Source) AttachMode() string { return "" }

// Stats returns nothing off Linux.
func (s *Source) Stats() (Stats, error) { return Stats{}, ErrUnsupported }

// LastDrain returns nothing off Linux.
func (s *Source) LastDrain() DrainStats { return DrainStats{} }

// MaxFlows returns 0 off Linux.
func (s *Source) MaxFlows() int { return 0 }
