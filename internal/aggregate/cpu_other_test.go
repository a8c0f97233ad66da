//go:build !linux

package aggregate

import "time"

// threadCPU is not measured off Linux: benchmarks report wall time only.
func threadCPU() time.Duration { return 0 }

func lockThread() func() { return func() {} }
