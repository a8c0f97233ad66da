package console

import (
	"testing"
	"time"
)

func TestLoginThrottleWindow(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	lt := newLoginThrottle(func() time.Time { return now })
	const a, b = "192.0.2.1:40000", "[2001:db8::1]:40000"
	for i := range maxLoginFailures {
		if w := lt.retryAfter(a); w != 0 {
			t.Fatalf("after %d failures: wait %s", i, w)
		}
		lt.failed(a)
		now = now.Add(time.Second)
	}
	if w := lt.retryAfter("192.0.2.1:51111"); w != loginFailureWindow-maxLoginFailures*time.Second {
		t.Fatalf("after %d failures from one address (another port): wait %s", maxLoginFailures, w)
	}
	if w := lt.retryAfter(b); w != 0 {
		t.Fatalf("another address waits %s", w)
	}
	now = now.Add(loginFailureWindow)
	if w := lt.retryAfter(a); w != 0 {
		t.Fatalf("after the window: wait %s", w)
	}
	lt.failed(b)
	lt.succeeded(b)
	if len(lt.m) != 0 {
		t.Fatalf("entries left: %v", lt.m)
	}
}
