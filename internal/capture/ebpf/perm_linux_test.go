package ebpf

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPermissionError: without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, New
// fails with ErrPermission, whose message names the capabilities and the
// afpacket fallback. Capabilities are per thread on Linux; the test drops
// them on one locked thread, which then dies with its goroutine.
func TestPermissionError(t *testing.T) {
	if unix.Geteuid() != 0 {
		skipOrFail(t, "needs root to drop capabilities from")
	}
	requireBPF(t)
	// Run the library's feature probes with privileges first, so that the
	// unprivileged attempt cannot leave a wrong answer cached for later tests.
	newSource(t, Config{})
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		for _, c := range []uint{unix.CAP_SYS_ADMIN, unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_NET_ADMIN} {
			data[c/32].Effective &^= 1 << (c % 32)
			data[c/32].Permitted &^= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		s, err := New(Config{Reject: "on"})
		if err == nil {
			s.Close()
			done <- errors.New("New succeeded without capabilities")
			return
		}
		if !errors.Is(err, ErrPermission) {
			done <- errors.New("error is not ErrPermission: " + err.Error())
			return
		}
		for _, want := range []string{"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "afpacket"} {
			if !strings.Contains(err.Error(), want) {
				done <- errors.New("error does not mention " + want + ": " + err.Error())
				return
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
