package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// Host identifies the machine the agent runs on; derived ids of its
// instance, VPC and interfaces hash its machine id, so they are stable
// across restarts and differ between hosts.
type Host struct {
	MachineID string
}

// ReadHost reads the machine id from root/etc/machine-id (or, as systemd
// does, root/var/lib/dbus/machine-id); root is "/" on a live system.
func ReadHost(root string) (Host, error) {
	var errs []error
	for _, p := range []string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		id := string(bytes.TrimSpace(data))
		if id == "" {
			errs = append(errs, fmt.Errorf("%s is empty", filepath.Join(root, p)))
			continue
		}
		return Host{MachineID: id}, nil
	}
	if errors.Is(errs[0], fs.ErrNotExist) {
		return Host{}, fmt.Errorf("read machine id: %w (set instance-id, vpc-id and interface ids in an inventory, or create /etc/machine-id)", errors.Join(errs...))
	}
	return Host{}, fmt.Errorf("read machine id: %w", errors.Join(errs...))
}

func (h Host) seed() []byte { return []byte(h.MachineID) }

// Link is a Linux interface as discovery sees it.
type Link struct {
	Netns string // network namespace name ("" is the agent's own)
	Name  string
	Index int
	MAC   net.HardwareAddr
	// Addrs are the link's addresses, primary ones (not IFA_F_SECONDARY)
	// first, each family in the kernel's order.
	Addrs    []netip.Prefix
	Loopback bool
	Up       bool
}

// Equal reports whether two links look the same to the records.
func (l *Link) Equal(o *Link) bool {
	return l.Netns == o.Netns && l.Name == o.Name && l.Index == o.Index &&
		bytes.Equal(l.MAC, o.MAC) && slices.Equal(l.Addrs, o.Addrs) &&
		l.Loopback == o.Loopback && l.Up == o.Up
}

// PrimaryPrefix is the prefix of the link's primary address: the first
// IPv4 address, else the first global IPv6 one; ok is false when the link
// has neither.
func (l *Link) PrimaryPrefix() (p netip.Prefix, ok bool) {
	for _, a := range l.Addrs {
		if a.Addr().Is4() {
			return a.Masked(), true
		}
	}
	for _, a := range l.Addrs {
		if a.Addr().Is6() && !a.Addr().IsLinkLocalUnicast() {
			return a.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

// ResolveLink returns the ids of a live link, the way spec §1 maps a Linux
// host onto the AWS model. For each id, a value pinned by the inventory
// entry of the link (matched by name and netns) wins over the command
// line, which wins over the inventory's top-level value; without any, ids
// are derived from the host's machine id:
//
//   - instance: one per network namespace (the agent's own namespace is
//     the host; another namespace stands for a host of its own);
//   - VPC: one per host;
//   - subnet: the prefix of the link's primary address (see
//     Link.PrimaryPrefix), hashed with the VPC id, so the same prefix in
//     the same pinned VPC gives the same subnet id on every host; a link
//     without addresses is a subnet of its own;
//   - interface: the netns, name and MAC address of the link.
//
// The primary IPv4 address (srcaddr/dstaddr, spec §3) is the entry's
// primary-ipv4, else the link's first primary IPv4 address; the link's
// addresses decide the direction of packets whose capture does not say.
// Router and resolver exclusions come only from the inventory's subnets
// and vpc-cidrs: a Linux host's gateway is ordinary traffic.
func (inv *Inventory) ResolveLink(h Host, l Link) Resolved {
	var entry *Interface
	for i := range inv.file.Interfaces {
		it := &inv.file.Interfaces[i]
		if it.Name == l.Name && it.Netns == l.Netns && it.Index == nil {
			entry = it
			break
		}
	}
	if entry == nil {
		entry = &Interface{}
	}
	seed := h.seed()
	instance := DeriveID("i", seed)
	if l.Netns != "" {
		instance = DeriveID("i", seed, "netns", l.Netns)
	}
	r := Resolved{
		AccountID:   firstSet(inv.overrides.AccountID, inv.file.AccountID, DefaultAccountID),
		Region:      firstSet(inv.overrides.Region, inv.file.Region, DefaultRegion),
		AZID:        firstSet(inv.overrides.AZID, inv.file.AZID, DefaultAZID),
		InterfaceID: firstSet(entry.InterfaceID, DeriveID("eni", seed, l.Netns, l.Name, l.MAC.String())),
		VPCID:       firstSet(entry.VPCID, inv.overrides.VPCID, inv.file.VPCID, DeriveID("vpc", seed)),
		InstanceID:  firstSet(entry.InstanceID, inv.overrides.InstanceID, inv.file.InstanceID, instance),
	}
	subnet := DeriveID("subnet", []byte(r.VPCID), "link", l.Netns, l.Name, l.MAC.String())
	if p, ok := l.PrimaryPrefix(); ok {
		subnet = DeriveID("subnet", []byte(r.VPCID), p.String())
	}
	r.SubnetID = firstSet(entry.SubnetID, inv.overrides.SubnetID, inv.file.SubnetID, subnet)

	addrs, _ := entry.addresses() // validated at load
	r.PrimaryIPv4, r.Excluded = addrs.primary4, addrs.excluded
	r.Addresses = addrs.all
	if len(entry.Addresses) == 0 {
		for _, a := range l.Addrs {
			r.Addresses = append(r.Addresses, a.Addr())
		}
	}
	if !r.PrimaryIPv4.IsValid() {
		for _, a := range l.Addrs {
			if a.Addr().Is4() {
				r.PrimaryIPv4 = a.Addr()
				break
			}
		}
	}
	return r
}
