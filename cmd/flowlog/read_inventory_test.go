package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// handshake is the corpus capture of a TCP handshake between
// 131.155.215.69:46656 and 137.116.81.94:80 on Linux SLL (the SLL packet
// type says which packets left the host).
const handshake = "../../../shared/corpora/pcap/tcpdump-tcp-handshake-nano.pcap"

func parseRecords(t *testing.T, format, out string) []flow.Record {
	t.Helper()
	f, err := flow.ParseFormat(format)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != f.Header() {
		t.Fatalf("header %q, want %q", lines[0], f.Header())
	}
	recs := make([]flow.Record, len(lines)-1)
	for i, line := range lines[1:] {
		if err := f.ParseRecord([]byte(line), &recs[i]); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
	}
	return recs
}

func TestInventoryPinsIDsAndPrimaryAddress(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(inv, []byte(`account-id: "123456789012"
region: eu-west-1
az-id: euw1-az2
vpc-id: vpc-0a1b2c3d4e5f60718
instance-id: i-01234567890123456
interfaces:
  - index: 0
    interface-id: eni-0123456789abcdef0
    subnet-id: subnet-aaaaaaaa012345678
    primary-ipv4: 10.9.9.9
`), 0o644); err != nil {
		t.Fatal(err)
	}
	format := "${version} ${account-id} ${region} ${az-id} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${srcport} ${dstport} ${tcp-flags} ${flow-direction} ${packets} ${log-status}"
	code, out, stderr := flowlog(t, nil, "read", "--inventory", inv, "--format", format, handshake)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := parseRecords(t, format, out)
	if len(recs) != 2 {
		t.Fatalf("%d records, want the two directions of the handshake:\n%s", len(recs), out)
	}
	for _, r := range recs {
		if r.Version != 5 || r.AccountID != "123456789012" || r.Region != "eu-west-1" || r.AZID != "euw1-az2" ||
			r.VPCID != "vpc-0a1b2c3d4e5f60718" || r.SubnetID != "subnet-aaaaaaaa012345678" ||
			r.InstanceID != "i-01234567890123456" || r.InterfaceID != "eni-0123456789abcdef0" {
			t.Errorf("ids not pinned: %+v", r)
		}
		// The capture's SLL packet types say the client's packets were
		// outgoing: the interface side of each record is the primary
		// address, the packet addresses stay in pkt-*.
		switch r.PktSrcAddr.String() {
		case "131.155.215.69": // outgoing SYN, ACK
			if r.FlowDirection != flow.DirectionEgress || r.SrcAddr.String() != "10.9.9.9" || r.DstAddr.String() != "137.116.81.94" || r.TCPFlags != 2 || r.Packets != 2 {
				t.Errorf("egress record: %+v", r)
			}
		case "137.116.81.94": // incoming SYN-ACK
			if r.FlowDirection != flow.DirectionIngress || r.DstAddr.String() != "10.9.9.9" || r.SrcAddr.String() != "137.116.81.94" || r.TCPFlags != 18 || r.Packets != 1 {
				t.Errorf("ingress record: %+v", r)
			}
		default:
			t.Errorf("unexpected record %+v", r)
		}
	}
}

func TestInventoryErrorsNameKeyAndLine(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(inv, []byte("interfaces:\n  - index: 0\n    interface_id: eni-00000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := flowlog(t, nil, "read", "--inventory", inv, handshake)
	if code != 1 || !strings.Contains(stderr, "interface_id") || !strings.Contains(stderr, "[3:5]") || !strings.Contains(stderr, inv) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = flowlog(t, nil, "read", "--vpc-id", "vpc-NOPE", handshake)
	if code != 2 || !strings.Contains(stderr, "--vpc-id") {
		t.Errorf("bad --vpc-id: exit %d, stderr %q", code, stderr)
	}
}

func TestSkipDataWhenFlowTableIsFull(t *testing.T) {
	format := "${interface-id} ${srcport} ${dstport} ${packets} ${start} ${end} ${log-status}"
	code, full, stderr := flowlog(t, nil, "read", "--format", format, samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, small, stderr := flowlog(t, nil, "read", "--format", format, "--max-flows", "50", samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	all, capped := parseRecords(t, format, full), parseRecords(t, format, small)
	var ok, skip int
	for _, r := range capped {
		switch r.LogStatus {
		case flow.LogStatusOK:
			ok++
		case flow.LogStatusSkipData:
			skip++
			if r.Present.Has(flow.FieldSrcPort) || r.Present.Has(flow.FieldPackets) || r.End-r.Start != 600 || r.Start%600 != 0 {
				t.Errorf("SKIPDATA record must cover its window with only ids set: %+v", r)
			}
		}
	}
	if skip == 0 || ok == 0 || ok > 50*2 {
		t.Errorf("with --max-flows 50: %d OK and %d SKIPDATA records (uncapped: %d)", ok, skip, len(all))
	}
	if strings.Contains(stderr, "dropped: 0 flows") {
		t.Errorf("summary does not report the dropped flows: %q", stderr)
	}
}
