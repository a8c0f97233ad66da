package aggregate

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU returns the CPU time of the calling thread. Benchmarks on a
// shared machine report it next to wall time: time slices given to other
// processes do not count.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lockThread pins the benchmark goroutine to its thread so threadCPU
// measures it; the returned function undoes that.
func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
