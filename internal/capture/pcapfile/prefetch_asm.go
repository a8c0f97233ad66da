//go:build amd64 || arm64

package pcapfile

import "unsafe"

// prefetch asks the CPU to bring the cache line at addr closer, without
// waiting for it (PREFETCHT0, PRFM PLDL1KEEP). Go has no prefetch
// intrinsic outside the runtime.
//
//go:noescape
func prefetch(addr unsafe.Pointer)
