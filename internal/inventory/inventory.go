// Package inventory maps the interfaces flowlog sees (capture interfaces,
// Linux links) onto the AWS resource model: account, region, availability
// zone, VPC, subnet, instance and network interface ids, and the addresses
// that decide srcaddr/dstaddr and the default exclusions (spec §1).
//
// Ids come from a YAML inventory file when it pins them, else from flags,
// else they are derived by stable hashing from a seed that identifies the
// source, so the same capture always yields the same ids.
package inventory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
)

// Defaults for the account and location when nothing is configured (spec §1).
const (
	DefaultAccountID = "000000000000"
	DefaultRegion    = "local"
	DefaultAZID      = "local-az1"
)

// File is the YAML inventory. Top-level ids apply to every interface that
// does not set its own.
type File struct {
	AccountID  string      `yaml:"account-id"`
	Region     string      `yaml:"region"`
	AZID       string      `yaml:"az-id"`
	VPCID      string      `yaml:"vpc-id"`
	SubnetID   string      `yaml:"subnet-id"`
	InstanceID string      `yaml:"instance-id"`
	Interfaces []Interface `yaml:"interfaces"`
}

// Interface pins the ids and addresses of one interface. It matches a
// source interface by Index (capture interface number) or by Name (pcapng
// if_name or Linux link name); for the agent, a Linux link by Name within
// network namespace Netns ("" is the agent's own).
type Interface struct {
	Index       *int     `yaml:"index"`
	Name        string   `yaml:"name"`
	Netns       string   `yaml:"netns"`
	InterfaceID string   `yaml:"interface-id"`
	SubnetID    string   `yaml:"subnet-id"`
	VPCID       string   `yaml:"vpc-id"`
	InstanceID  string   `yaml:"instance-id"`
	PrimaryIPv4 string   `yaml:"primary-ipv4"`
	Addresses   []string `yaml:"addresses"`
	Subnets     []string `yaml:"subnets"`   // prefixes the interface sits in; base+1 is the router (excluded)
	VPCCIDRs    []string `yaml:"vpc-cidrs"` // base+2 of each is the VPC resolver (excluded)
}

// Load reads and validates an inventory file. Unknown keys are errors
// naming the key and its line.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates inventory YAML; name is used in errors.
func Parse(name string, data []byte) (*File, error) {
	var f File
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalWithOptions(data, &f, yaml.DisallowUnknownField()); err != nil {
			return nil, fmt.Errorf("inventory %s: %w", name, err)
		}
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("inventory %s: %w", name, err)
	}
	return &f, nil
}

// idPrefix is the prefix of the id the named field holds; 8 or 17
// lowercase hex digits follow it. ValidateID checks shapes by loops rather
// than regexps compiled at package initialisation: every flowlog command
// imports this package, and the five regexps cost 55 KB and 357 allocations
// at every start.
func idPrefix(field string) (string, bool) {
	switch field {
	case "vpc-id":
		return "vpc-", true
	case "subnet-id":
		return "subnet-", true
	case "instance-id":
		return "i-", true
	case "interface-id":
		return "eni-", true
	}
	return "", false
}

// isDigits reports whether s is n ASCII digits.
func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isHexID reports whether s is 8 or 17 lowercase hex digits.
func isHexID(s string) bool {
	if len(s) != 8 && len(s) != 17 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidateID checks that id has the AWS shape of the named field
// ("vpc-id", "subnet-id", "instance-id", "interface-id", "account-id").
// The empty string is valid (not set).
func ValidateID(field, id string) error {
	if id == "" {
		return nil
	}
	if field == "account-id" {
		if !isDigits(id, 12) {
			return fmt.Errorf("%s %q: want 12 digits", field, id)
		}
		return nil
	}
	prefix, ok := idPrefix(field)
	if !ok {
		return fmt.Errorf("unknown id field %s", field)
	}
	if rest, found := strings.CutPrefix(id, prefix); !found || !isHexID(rest) {
		return fmt.Errorf("%s %q: want %s followed by 8 or 17 lowercase hex digits", field, id, prefix)
	}
	return nil
}

// Validate checks every id shape and address, naming the offending key.
func (f *File) Validate() error {
	var errs []error
	check := func(where, field, id string) {
		if err := ValidateID(field, id); err != nil {
			errs = append(errs, fmt.Errorf("%s%w", where, err))
		}
	}
	check("", "account-id", f.AccountID)
	check("", "vpc-id", f.VPCID)
	check("", "subnet-id", f.SubnetID)
	check("", "instance-id", f.InstanceID)
	seenIndex := map[int]bool{}
	seenName := map[[2]string]bool{}
	for i, it := range f.Interfaces {
		where := fmt.Sprintf("interfaces[%d]: ", i)
		if it.Index == nil && it.Name == "" {
			errs = append(errs, fmt.Errorf("%sneeds index or name to match an interface", where))
		}
		if it.Index != nil {
			if *it.Index < 0 {
				errs = append(errs, fmt.Errorf("%sindex %d: must not be negative", where, *it.Index))
			}
			if seenIndex[*it.Index] {
				errs = append(errs, fmt.Errorf("%sindex %d: listed twice", where, *it.Index))
			}
			seenIndex[*it.Index] = true
		}
		if it.Name != "" {
			if seenName[[2]string{it.Netns, it.Name}] {
				errs = append(errs, fmt.Errorf("%sname %q: listed twice", where, it.Name))
			}
			seenName[[2]string{it.Netns, it.Name}] = true
		}
		if it.Netns != "" && it.Name == "" {
			errs = append(errs, fmt.Errorf("%snetns %q: needs a name to match a link in it", where, it.Netns))
		}
		check(where, "interface-id", it.InterfaceID)
		check(where, "subnet-id", it.SubnetID)
		check(where, "vpc-id", it.VPCID)
		check(where, "instance-id", it.InstanceID)
		if _, err := it.addresses(); err != nil {
			errs = append(errs, fmt.Errorf("%s%w", where, err))
		}
	}
	return errors.Join(errs...)
}

// addresses parses the address fields of an interface entry.
func (it *Interface) addresses() (addrs resolvedAddrs, err error) {
	if it.PrimaryIPv4 != "" {
		a, err := netip.ParseAddr(it.PrimaryIPv4)
		if err != nil || !a.Is4() {
			return addrs, fmt.Errorf("primary-ipv4 %q: want an IPv4 address", it.PrimaryIPv4)
		}
		addrs.primary4 = a
		addrs.all = append(addrs.all, a)
	}
	for _, s := range it.Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return addrs, fmt.Errorf("addresses: %q is not an IP address", s)
		}
		a = a.Unmap()
		if !addrs.primary4.IsValid() && a.Is4() {
			addrs.primary4 = a
		}
		addrs.all = append(addrs.all, a)
	}
	for _, s := range it.Subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return addrs, fmt.Errorf("subnets: %q is not a prefix (like 10.0.1.0/24)", s)
		}
		addrs.excluded = append(addrs.excluded, nthAddr(p.Masked(), 1))
	}
	for _, s := range it.VPCCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return addrs, fmt.Errorf("vpc-cidrs: %q is not a prefix (like 10.0.0.0/16)", s)
		}
		addrs.excluded = append(addrs.excluded, nthAddr(p.Masked(), 2))
	}
	return addrs, nil
}

type resolvedAddrs struct {
	primary4 netip.Addr
	all      []netip.Addr
	excluded []netip.Addr
}

// nthAddr returns the n-th address after the prefix base.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// Overrides are ids given on the command line; they win over the file's
// top-level values. InterfaceID applies to interface index 0.
type Overrides struct {
	AccountID, Region, AZID, VPCID, SubnetID, InstanceID, InterfaceID string
}

// Validate checks the id shapes, naming the flag.
func (o Overrides) Validate() error {
	var errs []error
	for _, c := range []struct{ flag, field, id string }{
		{"--account-id", "account-id", o.AccountID},
		{"--vpc-id", "vpc-id", o.VPCID},
		{"--subnet-id", "subnet-id", o.SubnetID},
		{"--instance-id", "instance-id", o.InstanceID},
		{"--interface-id", "interface-id", o.InterfaceID},
	} {
		if err := ValidateID(c.field, c.id); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.flag, err))
		}
	}
	return errors.Join(errs...)
}

// Resolved is everything a record needs to know about its interface.
type Resolved struct {
	AccountID, Region, AZID      string
	InterfaceID, SubnetID, VPCID string
	InstanceID                   string
	PrimaryIPv4                  netip.Addr   // invalid when unknown
	Addresses                    []netip.Addr // the interface's own addresses
	Excluded                     []netip.Addr // router and resolver addresses (default exclusions)
}

// HasAddr reports whether a is one of the interface's own addresses.
func (r *Resolved) HasAddr(a netip.Addr) bool {
	for _, x := range r.Addresses {
		if x == a {
			return true
		}
	}
	return false
}

// Inventory resolves source interfaces to ids. The zero value is not
// usable; build one with New.
type Inventory struct {
	file      File
	overrides Overrides
}

// New combines an inventory file (may be nil) with command-line overrides.
func New(f *File, o Overrides) (*Inventory, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	inv := &Inventory{overrides: o}
	if f != nil {
		inv.file = *f
	}
	return inv, nil
}

// Resolve returns the ids of the source interface with the given index
// and name. seed identifies the source (for a capture: a hash of its
// first bytes), so derived ids are stable for the same source.
func (inv *Inventory) Resolve(seed []byte, index int, name string) Resolved {
	var entry *Interface
	for i := range inv.file.Interfaces {
		it := &inv.file.Interfaces[i]
		if it.Netns != "" {
			continue // a link of the agent's, not a capture interface
		}
		if (it.Index != nil && *it.Index == index) || (it.Name != "" && it.Name == name) {
			entry = it
			break
		}
	}
	if entry == nil {
		entry = &Interface{}
	}
	ifaceOverride := ""
	if index == 0 {
		ifaceOverride = inv.overrides.InterfaceID
	}
	r := Resolved{
		AccountID:   firstSet(inv.overrides.AccountID, inv.file.AccountID, DefaultAccountID),
		Region:      firstSet(inv.overrides.Region, inv.file.Region, DefaultRegion),
		AZID:        firstSet(inv.overrides.AZID, inv.file.AZID, DefaultAZID),
		InterfaceID: firstSet(ifaceOverride, entry.InterfaceID, DeriveID("eni", seed, fmt.Sprint(index), name)),
		SubnetID:    firstSet(entry.SubnetID, inv.overrides.SubnetID, inv.file.SubnetID, DeriveID("subnet", seed, fmt.Sprint(index), name)),
		VPCID:       firstSet(entry.VPCID, inv.overrides.VPCID, inv.file.VPCID, DeriveID("vpc", seed)),
		InstanceID:  firstSet(entry.InstanceID, inv.overrides.InstanceID, inv.file.InstanceID, DeriveID("i", seed)),
	}
	if addrs, err := entry.addresses(); err == nil { // validated at load
		r.PrimaryIPv4 = addrs.primary4
		r.Addresses = addrs.all
		r.Excluded = addrs.excluded
	}
	return r
}

// DeriveID returns prefix-<17 hex digits> hashed from the seed and parts:
// the same inputs always give the same id. Prefix "fl" gives a flow log id.
func DeriveID(prefix string, seed []byte, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(prefix))
	h.Write([]byte{0})
	h.Write(seed)
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return prefix + "-" + sum[:17]
}

// AccountID is the account of the flow log: the override, the file's, or
// the default.
func (inv *Inventory) AccountID() string {
	return firstSet(inv.overrides.AccountID, inv.file.AccountID, DefaultAccountID)
}

// Region is the region of the flow log: the override, the file's, or the
// default.
func (inv *Inventory) Region() string {
	return firstSet(inv.overrides.Region, inv.file.Region, DefaultRegion)
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
