package afpacket

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread switched into the network namespace name
// (a name in /run/netns, or a path such as /proc/PID/ns/net); "" is the
// namespace of the process. Sockets fn opens stay in that namespace.
func inNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	// A goroutine of its own: if the thread cannot return to the
	// original namespace, it stays locked and ends with the goroutine
	// instead of running other code in the wrong namespace.
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- fmt.Errorf("read current network namespace: %w", err)
			return
		}
		defer orig.Close()
		var target netns.NsHandle
		if strings.HasPrefix(name, "/") {
			target, err = netns.GetFromPath(name)
		} else {
			target, err = netns.GetFromName(name)
		}
		if err != nil {
			done <- fmt.Errorf("open network namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("return from network namespace %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		done <- fnErr
	}()
	return <-done
}
