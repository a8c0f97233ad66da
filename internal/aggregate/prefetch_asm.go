//go:build amd64 || arm64

package aggregate

import "unsafe"

// prefetch asks the CPU to bring the cache line at addr closer, without
// waiting for it (PREFETCHT0, PRFM PLDL1KEEP). A batch of lookups issues
// all of its cache misses first, so they overlap instead of stalling one
// after the other. Go has no prefetch intrinsic outside the runtime.
//
//go:noescape
func prefetch(addr unsafe.Pointer)
