// Package policy decides what happens to a packet besides being counted:
// whether it is excluded from flow logs altogether (traffic AWS never logs:
// instance metadata, time service, DNS resolver, DHCP, the subnet router),
// and, in later versions, whether an offline rule set would reject it.
package policy

import "net/netip"

// Well-known addresses of the instance metadata, time and DNS services
// that AWS does not log (spec §2, excluded traffic).
var serviceAddrs = [...]netip.Addr{
	netip.AddrFrom4([4]byte{169, 254, 169, 254}),
	netip.AddrFrom4([4]byte{169, 254, 169, 123}),
	netip.AddrFrom4([4]byte{169, 254, 169, 253}),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("fd00:ec2::123"),
}

const protoUDP = 17

// Exclusions decides which packets are not logged. The zero value
// excludes nothing; Default excludes what AWS does not log.
type Exclusions struct {
	enabled bool
}

// DefaultExclusions returns the exclusions AWS applies.
func DefaultExclusions() Exclusions { return Exclusions{enabled: true} }

// NoExclusions returns exclusions that let everything through.
func NoExclusions() Exclusions { return Exclusions{} }

// Enabled reports whether any exclusion applies.
func (e Exclusions) Enabled() bool { return e.enabled }

// Excluded reports whether a packet is not to be logged. perInterface
// holds the interface's router and VPC resolver addresses, known only from
// an inventory.
func (e Exclusions) Excluded(src, dst netip.Addr, protocol uint8, srcPort, dstPort uint16, perInterface []netip.Addr) bool {
	if !e.enabled {
		return false
	}
	if protocol == protoUDP && (isDHCP(srcPort, dstPort) || isDHCPv6(srcPort, dstPort)) {
		return true
	}
	if isServiceCandidate(src) || isServiceCandidate(dst) {
		for _, a := range serviceAddrs {
			if src == a || dst == a {
				return true
			}
		}
	}
	for _, a := range perInterface {
		if src == a || dst == a {
			return true
		}
	}
	return false
}

// isServiceCandidate is a cheap pre-check so the common packet compares
// one byte instead of five addresses.
func isServiceCandidate(a netip.Addr) bool {
	if a.Is4() {
		return a.As4()[0] == 169
	}
	return a.As16()[0] == 0xfd
}

func isDHCP(src, dst uint16) bool {
	return (src == 67 || src == 68) && (dst == 67 || dst == 68)
}

func isDHCPv6(src, dst uint16) bool {
	return (src == 546 || src == 547) && (dst == 546 || dst == 547)
}
