package console

import (
	"net/netip"
	"sync"
	"time"
)

// Failed sign-ins are throttled per client address: after
// maxLoginFailures within loginFailureWindow, that address may not try
// again until the window has passed. A guesser gets a handful of tries a
// minute instead of thousands a second; people who mistype are not
// locked out for long.
const (
	maxLoginFailures   = 5
	loginFailureWindow = time.Minute
)

// loginThrottle counts failed sign-ins per client address.
type loginThrottle struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[netip.Addr]*loginFailures
}

type loginFailures struct {
	first time.Time
	count int
}

func newLoginThrottle(now func() time.Time) *loginThrottle {
	return &loginThrottle{now: now, m: map[netip.Addr]*loginFailures{}}
}

// retryAfter is how long the address behind remoteAddr must wait before
// trying again; 0 means it may try now.
func (lt *loginThrottle) retryAfter(remoteAddr string) time.Duration {
	addr := clientAddr(remoteAddr)
	lt.mu.Lock()
	defer lt.mu.Unlock()
	f := lt.m[addr]
	if f == nil {
		return 0
	}
	left := f.first.Add(loginFailureWindow).Sub(lt.now())
	if left <= 0 {
		delete(lt.m, addr)
		return 0
	}
	if f.count < maxLoginFailures {
		return 0
	}
	return left
}

// failed counts a failed sign-in from remoteAddr.
func (lt *loginThrottle) failed(remoteAddr string) {
	addr := clientAddr(remoteAddr)
	now := lt.now()
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for a, f := range lt.m { // keep the map as small as the recent failures
		if now.Sub(f.first) >= loginFailureWindow {
			delete(lt.m, a)
		}
	}
	f := lt.m[addr]
	if f == nil {
		f = &loginFailures{first: now}
		lt.m[addr] = f
	}
	f.count++
}

// succeeded forgets the failures of remoteAddr.
func (lt *loginThrottle) succeeded(remoteAddr string) {
	addr := clientAddr(remoteAddr)
	lt.mu.Lock()
	defer lt.mu.Unlock()
	delete(lt.m, addr)
}

// clientAddr is the address of r.RemoteAddr, as api.Server reads it.
func clientAddr(remoteAddr string) netip.Addr {
	ap, _ := netip.ParseAddrPort(remoteAddr)
	return ap.Addr().Unmap()
}
