package inventory

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultNetnsDir is where `ip netns` keeps named network namespaces.
const DefaultNetnsDir = "/run/netns"

// ListNetns returns the names of the network namespaces in dir
// (DefaultNetnsDir when ""), sorted; a missing dir has none.
func ListNetns(dir string) ([]string, error) {
	if dir == "" {
		dir = DefaultNetnsDir
	}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var names []string
	for _, e := range ents {
		// `ip netns add` creates an empty file and then bind-mounts the
		// namespace on it: until then the name is not a namespace yet
		// (entering it fails with EINVAL), so it is left for a later look.
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && isNetnsMount(filepath.Join(dir, e.Name())) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// isNetnsMount reports whether path is a mounted namespace (nsfs).
func isNetnsMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// openNetns opens a namespace by name (in /run/netns) or path.
func openNetns(ns string) (netns.NsHandle, error) {
	if strings.HasPrefix(ns, "/") {
		return netns.GetFromPath(ns)
	}
	return netns.GetFromName(ns)
}

// netlinkHandle returns a netlink handle in namespace ns ("" current).
func netlinkHandle(ns string) (*netlink.Handle, error) {
	if ns == "" {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	h, err := openNetns(ns)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", ns, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in network namespace %s: %w", ns, err)
	}
	return nh, nil
}

// ListLinks returns the links of namespace ns ("" is the current one)
// with their addresses, by interface index.
func ListLinks(ns string) ([]Link, error) {
	h, err := netlinkHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return listLinks(h, ns)
}

func listLinks(h *netlink.Handle, ns string) ([]Link, error) {
	lks, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links in %q: %w", ns, err)
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses in %q: %w", ns, err)
	}
	byIndex := map[int][]netlink.Addr{}
	for _, a := range addrs {
		byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], a)
	}
	out := make([]Link, 0, len(lks))
	for _, lk := range lks {
		at := lk.Attrs()
		l := Link{
			Netns:    ns,
			Name:     at.Name,
			Index:    at.Index,
			MAC:      slices.Clone(at.HardwareAddr),
			Loopback: at.Flags&net.FlagLoopback != 0,
			Up:       at.Flags&net.FlagUp != 0,
		}
		if len(l.MAC) == 0 {
			l.MAC = nil
		}
		// Primary addresses first: the first of each family is the one
		// records use.
		as := byIndex[at.Index]
		slices.SortStableFunc(as, func(a, b netlink.Addr) int {
			return boolInt(a.Flags&unix.IFA_F_SECONDARY != 0) - boolInt(b.Flags&unix.IFA_F_SECONDARY != 0)
		})
		for _, a := range as {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || a.IPNet == nil {
				continue
			}
			ones, _ := a.Mask.Size()
			l.Addrs = append(l.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int { return a.Index - b.Index })
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
