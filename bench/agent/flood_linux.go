package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr for sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// floodResult is what `benchagent flood` prints.
type floodResult struct {
	Sent    uint64  `json:"sent"`
	Seconds float64 `json:"seconds"`
}

// flood sends small UDP datagrams with sendmmsg from several sockets (one
// per sender, each on its own thread) for a fixed time.
func flood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	src := fs.String("src", "10.99.0.1", "source address")
	dst := fs.String("dst", "10.99.0.2:9", "destination address:port")
	size := fs.Int("size", 18, "UDP payload bytes (18: 64-byte Ethernet frames)")
	senders := fs.Int("senders", runtime.NumCPU(), "sending sockets, one thread each")
	dur := fs.Duration("duration", 10*time.Second, "how long to send")
	_ = fs.Parse(args)
	to, err := netip.ParseAddrPort(*dst)
	if err != nil {
		return err
	}
	from := netip.MustParseAddr(*src)
	var total atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, *senders)
	deadline := time.Now().Add(*dur)
	began := time.Now()
	for i := range *senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, uint16(40000+i))), net.UDPAddrFromAddrPort(to))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			rc, err := c.SyscallConn()
			if err != nil {
				errs <- err
				return
			}
			const batch = 256
			payload := make([]byte, *size)
			iov := unix.Iovec{Base: &payload[0]}
			iov.SetLen(len(payload))
			msgs := make([]mmsghdr, batch)
			for j := range msgs {
				msgs[j].hdr.Iov = &iov
				msgs[j].hdr.SetIovlen(1)
			}
			var sent uint64
			_ = rc.Write(func(fd uintptr) bool {
				for n := 0; time.Now().Before(deadline); n++ {
					r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&msgs[0])), batch, 0, 0, 0)
					if e == 0 {
						sent += uint64(r)
					}
				}
				return true
			})
			total.Add(sent)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(floodResult{Sent: total.Load(), Seconds: time.Since(began).Seconds()})
}

// sink binds a UDP socket with the smallest receive buffer and never
// reads: flood packets cross the veth, reach the socket and are dropped
// there (no ICMP port unreachable, little CPU).
func sink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	addr := fs.String("addr", "10.99.0.2:9", "address:port to bind")
	_ = fs.Parse(args)
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		return err
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	_ = c.SetReadBuffer(1)
	fmt.Println("ready")
	select {}
}
