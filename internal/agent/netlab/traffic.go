//go:build linux

package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// UDP sends one datagram per entry of sizes (payload bytes) from src to
// dst, from namespace ns, to a socket listening on dst in namespace dstNS
// (so no ICMP port-unreachable comes back), and waits until all arrived.
func UDP(ns string, src netip.AddrPort, dstNS string, dst netip.AddrPort, sizes []int) error {
	var rc *net.UDPConn
	if err := Do(dstNS, func() (err error) {
		rc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return fmt.Errorf("listen on %s: %w", dst, err)
	}
	defer rc.Close()
	var c *net.UDPConn
	if err := Do(ns, func() (err error) {
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(src), net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return fmt.Errorf("dial %s from %s: %w", dst, src, err)
	}
	defer c.Close()
	buf := make([]byte, 65536)
	for _, n := range sizes {
		if _, err := c.Write(buf[:n]); err != nil {
			return err
		}
	}
	_ = rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range sizes {
		if _, _, err := rc.ReadFromUDPAddrPort(buf); err != nil {
			return fmt.Errorf("receive on %s: %w", dst, err)
		}
	}
	return nil
}

// UDPFlood sends n datagrams of size payload bytes from src (namespace
// ns) to dst as fast as one socket can, to a socket on dst in namespace
// dstNS that reads and discards them (some may be dropped there). It
// returns the number sent.
func UDPFlood(ns string, src netip.AddrPort, dstNS string, dst netip.AddrPort, n, size int) (int, error) {
	var rc *net.UDPConn
	if err := Do(dstNS, func() (err error) {
		rc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return 0, fmt.Errorf("listen on %s: %w", dst, err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, err := rc.Read(buf); err != nil {
				return
			}
		}
	}()
	defer func() {
		time.Sleep(50 * time.Millisecond)
		rc.Close()
	}()
	var c *net.UDPConn
	if err := Do(ns, func() (err error) {
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(src), net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return 0, fmt.Errorf("dial %s from %s: %w", dst, src, err)
	}
	defer c.Close()
	buf := make([]byte, size)
	for i := range n {
		if _, err := c.Write(buf); err != nil {
			return i, err
		}
	}
	return n, nil
}

// TCP connects from src (namespace ns) to a listener on dst (namespace
// dstNS), sends request bytes, reads response bytes the server sends back,
// and closes: with a FIN from both sides, or with reset, the client closes
// with SO_LINGER 0 (an RST) before the server closes.
func TCP(ns string, src netip.AddrPort, dstNS string, dst netip.AddrPort, request, response int, reset bool) error {
	var ln *net.TCPListener
	if err := Do(dstNS, func() (err error) {
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return fmt.Errorf("listen on %s: %w", dst, err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, request)); err != nil {
			served <- fmt.Errorf("server read: %w", err)
			return
		}
		if _, err := c.Write(make([]byte, response)); err != nil {
			served <- fmt.Errorf("server write: %w", err)
			return
		}
		// Wait for the client's FIN (or RST) before closing.
		_, err = c.Read(make([]byte, 1))
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, unix.ECONNRESET) {
			served <- fmt.Errorf("server wait for close: %w", err)
			return
		}
		served <- nil
	}()
	var c *net.TCPConn
	if err := Do(ns, func() (err error) {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(src), Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", dst.String())
		if err != nil {
			return err
		}
		c = conn.(*net.TCPConn)
		return nil
	}); err != nil {
		return fmt.Errorf("connect %s from %s: %w", dst, src, err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(make([]byte, request)); err != nil {
		c.Close()
		return err
	}
	if _, err := io.ReadFull(c, make([]byte, response)); err != nil {
		c.Close()
		return fmt.Errorf("client read: %w", err)
	}
	if reset {
		if err := c.SetLinger(0); err != nil {
			c.Close()
			return err
		}
	}
	if err := c.Close(); err != nil {
		return err
	}
	select {
	case err := <-served:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("server did not finish")
	}
}

// Ping sends count ICMP (or ICMPv6) echo requests with payload bytes of
// data from src to dst inside namespace ns over a raw socket, one after
// the other, each waiting for its reply.
func Ping(ns string, src, dst netip.Addr, count, payload int) error {
	var fd int
	v6 := dst.Is6()
	if err := Do(ns, func() (err error) {
		if v6 {
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
			if err == nil {
				err = unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16()})
			}
		} else {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
			if err == nil {
				err = unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()})
			}
		}
		return err
	}); err != nil {
		return fmt.Errorf("raw ICMP socket in %s: %w", ns, err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	id := uint16(os.Getpid())
	var to unix.Sockaddr
	reqType, replyType := byte(8), byte(0)
	if v6 {
		to = &unix.SockaddrInet6{Addr: dst.As16()}
		reqType, replyType = 128, 129
	} else {
		to = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	buf := make([]byte, 65536)
	for seq := range count {
		msg := make([]byte, 8+payload)
		msg[0] = reqType
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(seq))
		if !v6 { // the kernel computes the ICMPv6 checksum
			binary.BigEndian.PutUint16(msg[2:], checksum(msg))
		}
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return fmt.Errorf("send echo request: %w", err)
		}
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return fmt.Errorf("echo reply %d from %s: %w", seq, dst, err)
			}
			icmp := buf[:n]
			if !v6 && n >= 20 {
				icmp = icmp[int(buf[0]&0xF)*4:]
			}
			if len(icmp) >= 8 && icmp[0] == replyType && binary.BigEndian.Uint16(icmp[4:]) == id &&
				binary.BigEndian.Uint16(icmp[6:]) == uint16(seq) {
				break
			}
		}
	}
	return nil
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xFFFF
	}
	return ^uint16(s)
}
