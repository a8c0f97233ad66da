package inventory

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestParseFullInventory(t *testing.T) {
	f, err := Parse("inv.yaml", []byte(`
account-id: "123456789012"
region: us-east-1
az-id: use1-az1
vpc-id: vpc-0a1b2c3d4e5f60718
instance-id: i-01234567890123456
interfaces:
  - index: 0
    interface-id: eni-0123456789abcdef0
    subnet-id: subnet-aaaaaaaa012345678
    primary-ipv4: 10.0.1.5
    addresses: [10.0.1.6, "2001:db8::5"]
    subnets: [10.0.1.0/24]
    vpc-cidrs: [10.0.0.0/16]
  - name: eth1
    interface-id: eni-1111aaaa
`))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := New(f, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	r := inv.Resolve([]byte("seed"), 0, "")
	want := Resolved{
		AccountID: "123456789012", Region: "us-east-1", AZID: "use1-az1",
		InterfaceID: "eni-0123456789abcdef0", SubnetID: "subnet-aaaaaaaa012345678",
		VPCID: "vpc-0a1b2c3d4e5f60718", InstanceID: "i-01234567890123456",
		PrimaryIPv4: netip.MustParseAddr("10.0.1.5"),
	}
	if r.AccountID != want.AccountID || r.Region != want.Region || r.AZID != want.AZID ||
		r.InterfaceID != want.InterfaceID || r.SubnetID != want.SubnetID || r.VPCID != want.VPCID ||
		r.InstanceID != want.InstanceID || r.PrimaryIPv4 != want.PrimaryIPv4 {
		t.Errorf("Resolve(0) = %+v, want %+v", r, want)
	}
	if got := len(r.Addresses); got != 3 || !r.HasAddr(netip.MustParseAddr("2001:db8::5")) || r.HasAddr(netip.MustParseAddr("10.0.1.7")) {
		t.Errorf("addresses = %v", r.Addresses)
	}
	if len(r.Excluded) != 2 || r.Excluded[0] != netip.MustParseAddr("10.0.1.1") || r.Excluded[1] != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("router/resolver exclusions = %v, want [10.0.1.1 10.0.0.2]", r.Excluded)
	}
	if r1 := inv.Resolve([]byte("seed"), 7, "eth1"); r1.InterfaceID != "eni-1111aaaa" || r1.VPCID != want.VPCID {
		t.Errorf("match by name: %+v", r1)
	}
}

func TestDerivedIDsAreStableAndShaped(t *testing.T) {
	inv, err := New(nil, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	a := inv.Resolve([]byte("capture-1"), 0, "")
	b := inv.Resolve([]byte("capture-1"), 0, "")
	c := inv.Resolve([]byte("capture-2"), 0, "")
	d := inv.Resolve([]byte("capture-1"), 1, "")
	if a.InterfaceID != b.InterfaceID || a.SubnetID != b.SubnetID || a.VPCID != b.VPCID || a.InstanceID != b.InstanceID {
		t.Errorf("same seed gave %+v and %+v", a.InterfaceID, b.InterfaceID)
	}
	if a.InterfaceID == c.InterfaceID || a.InstanceID == c.InstanceID {
		t.Errorf("different captures share ids: %s %s", a.InterfaceID, a.InstanceID)
	}
	if a.InterfaceID == d.InterfaceID || a.InstanceID != d.InstanceID || a.VPCID != d.VPCID {
		t.Errorf("interfaces of one capture: want distinct enis, same instance and VPC: %+v %+v", a, d)
	}
	shapes := map[string]*regexp.Regexp{
		a.InterfaceID: regexp.MustCompile(`^eni-[0-9a-f]{17}$`),
		a.SubnetID:    regexp.MustCompile(`^subnet-[0-9a-f]{17}$`),
		a.VPCID:       regexp.MustCompile(`^vpc-[0-9a-f]{17}$`),
		a.InstanceID:  regexp.MustCompile(`^i-[0-9a-f]{17}$`),
	}
	for id, re := range shapes {
		if !re.MatchString(id) {
			t.Errorf("%s does not match %s", id, re)
		}
	}
	if a.AccountID != DefaultAccountID || a.Region != DefaultRegion || a.AZID != DefaultAZID {
		t.Errorf("defaults: %s %s %s", a.AccountID, a.Region, a.AZID)
	}
	if a.PrimaryIPv4.IsValid() || len(a.Addresses) != 0 {
		t.Errorf("no inventory must mean no addresses: %+v", a)
	}
}

func TestOverrides(t *testing.T) {
	f, err := Parse("inv.yaml", []byte("account-id: \"111111111111\"\ninterfaces:\n  - index: 0\n    interface-id: eni-00000000000000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := New(f, Overrides{AccountID: "222222222222", Region: "eu-west-1", InterfaceID: "eni-11111111111111111"})
	if err != nil {
		t.Fatal(err)
	}
	if r := inv.Resolve(nil, 0, ""); r.AccountID != "222222222222" || r.Region != "eu-west-1" || r.InterfaceID != "eni-11111111111111111" {
		t.Errorf("flags must win: %+v", r)
	}
	if r := inv.Resolve(nil, 1, ""); r.InterfaceID == "eni-11111111111111111" {
		t.Errorf("--interface-id applies to interface 0 only, got it on 1")
	}
	if inv.AccountID() != "222222222222" || inv.Region() != "eu-west-1" {
		t.Errorf("AccountID/Region = %s %s", inv.AccountID(), inv.Region())
	}
	if _, err := New(nil, Overrides{VPCID: "vpc-xyz"}); err == nil || !strings.Contains(err.Error(), "--vpc-id") {
		t.Errorf("bad --vpc-id: err = %v, want it named", err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"acount-id: \"123456789012\"\n", `unknown field "acount-id"`},
		{"interfaces:\n  - index: 0\n    interface-idd: eni-00000000\n", `[3:5] unknown field "interface-idd"`},
		{"account-id: \"12345\"\n", "account-id \"12345\": want 12 digits"},
		{"vpc-id: vpc-ABC\n", "vpc-id \"vpc-ABC\": want vpc- followed by 8 or 17 lowercase hex digits"},
		{"interfaces:\n  - interface-id: eni-00000000\n", "interfaces[0]: needs index or name"},
		{"interfaces:\n  - index: 0\n  - index: 0\n", "interfaces[1]: index 0: listed twice"},
		{"interfaces:\n  - index: 0\n    primary-ipv4: 2001:db8::1\n", "primary-ipv4 \"2001:db8::1\": want an IPv4 address"},
		{"interfaces:\n  - index: 0\n    subnets: [10.0.0.0]\n", `subnets: "10.0.0.0" is not a prefix`},
	}
	for _, c := range cases {
		_, err := Parse("bad.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml") {
			t.Errorf("Parse(%q) error = %v, want it to contain %q and the file name", c.yaml, err, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(path, []byte("region: us-west-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil || f.Region != "us-west-2" {
		t.Fatalf("Load = %+v, %v", f, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: err = %v", err)
	}
}
