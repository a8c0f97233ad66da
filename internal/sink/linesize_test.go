package sink

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// worstRecord has the widest value of every field: type maxima for numbers
// and addresses, AWS's length limits for ids and names, ARNs composed the
// way AWS composes them from the widest parts.
func worstRecord() flow.Record {
	region := "us-isob-southeast-10" // 20: wider than any region code
	account := "123456789012"
	arn := func(resource string) string {
		return "arn:aws-iso-b:ecs:" + region + ":" + account + ":" + resource
	}
	name := strings.Repeat("n", 255) // ECS cluster, service and task family names
	id32 := strings.Repeat("f", 32)  // ECS task and container instance ids
	v6 := netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	r := flow.Record{
		Present:         flow.FieldSet(1)<<flow.NumFields - 1,
		Version:         255,
		AccountID:       account,
		InterfaceID:     "eni-0123456789abcdef0",
		SrcAddr:         v6,
		DstAddr:         v6,
		SrcPort:         65535,
		DstPort:         65535,
		Protocol:        255,
		Packets:         1<<64 - 1,
		Bytes:           1<<64 - 1,
		Start:           -1 << 63,
		End:             -1 << 63,
		Action:          flow.ActionReject,
		LogStatus:       flow.LogStatusSkipData,
		VPCID:           "vpc-0123456789abcdef0",
		SubnetID:        "subnet-0123456789abcdef0",
		InstanceID:      "i-0123456789abcdef0",
		TCPFlags:        255,
		Type:            "IPv6",
		PktSrcAddr:      v6,
		PktDstAddr:      v6,
		Region:          region,
		AZID:            "usisob-se10-az10-lz1",
		SublocationType: "wavelength",
		SublocationID:   strings.Repeat("w", 32),
		PktSrcService:   "ROUTE53_HEALTHCHECKS_PUBLISHING_",
		PktDstService:   "ROUTE53_HEALTHCHECKS_PUBLISHING_",
		FlowDirection:   flow.DirectionIngress,
		TrafficPath:     255,
		RejectReason:    strings.Repeat("R", 32),
	}
	r.ECS = [10]string{
		arn("cluster/" + name),
		name,
		arn("container-instance/" + name + "/" + id32),
		id32,
		strings.Repeat("c", 64),
		strings.Repeat("c", 64),
		name,
		arn("task-definition/" + name + ":4294967295"),
		arn("task/" + name + "/" + id32),
		id32,
	}
	return r
}

// TestMaxLineBytes checks the budget against a real maximal record, like
// tailscale's TestMaxSize: each field's widest value renders to exactly
// MaxFieldBytes, and the whole line to exactly MaxLineBytes.
func TestMaxLineBytes(t *testing.T) {
	r := worstRecord()
	sum := 0
	for _, fi := range flow.Fields {
		f, err := flow.ParseFormat("${" + fi.Name + "}")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.Append(nil, &r)); n != MaxFieldBytes[fi.ID] {
			t.Errorf("%s: widest value renders to %d bytes, MaxFieldBytes says %d", fi.Name, n, MaxFieldBytes[fi.ID])
		}
		sum += MaxFieldBytes[fi.ID]
	}
	if want := sum + flow.NumFields - 1; MaxLineBytes != want {
		t.Errorf("MaxLineBytes = %d, the fields add up to %d", MaxLineBytes, want)
	}
	var names []string
	for _, fi := range flow.Fields {
		names = append(names, "${"+fi.Name+"}")
	}
	all, err := flow.ParseFormat(strings.Join(names, " "))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all.Append(nil, &r)); n != MaxLineBytes {
		t.Errorf("worst record in every field renders to %d bytes, MaxLineBytes is %d", n, MaxLineBytes)
	}
}
