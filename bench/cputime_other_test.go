//go:build !unix

package bench

// processCPUTime is not measured here; the cpu-time metrics are left out.
func processCPUTime() int64 { return 0 }
