//go:build unix

package bench

import "syscall"

// processCPUTime is the CPU time (user + system) the process has used, in
// nanoseconds. Unlike wall time it does not count time spent waiting for a
// core other processes hold, so per-core throughput stays measurable on a
// shared machine.
func processCPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
