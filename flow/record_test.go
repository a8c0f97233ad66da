package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

const (
	lineDefault = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
	lineV5      = "5 52.95.128.179 10.0.0.71 80 34210 6 1616729292 1616729349 IPv4 14 15044 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 19 52.95.128.179 10.0.0.71 S3 - - ingress OK"
	lineV6Addr  = "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 ::ffff:10.0.0.1 34892 22 6 54 8855 1477913708 1477913820 REJECT SKIPDATA"
)

func TestParseRecordValueErrors(t *testing.T) {
	f := mustParse(t, "${version} ${srcaddr} ${srcport} ${protocol} ${tcp-flags} ${traffic-path} ${packets} ${start} ${action} ${log-status} ${flow-direction}")
	good := []string{"5", "10.0.0.1", "443", "6", "2", "8", "10", "1418530010", "ACCEPT", "OK", "egress"}
	var r Record
	if err := f.ParseRecord([]byte(strings.Join(good, " ")), &r); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		col   int
		value string
		msg   string
	}{
		{0, "x", `field version: invalid value "x": not a decimal number`},
		{0, "256", `field version: invalid value "256": out of range 0…255`},
		{1, "10.0.0", `field srcaddr: invalid value "10.0.0": ParseAddr("10.0.0"): IPv4 address too short`},
		{1, "10.0.0.01", `field srcaddr: invalid value "10.0.0.01": ParseAddr("10.0.0.01"): IPv4 field has octet with leading zero`},
		{1, "eni-123", `field srcaddr: invalid value "eni-123": ParseAddr("eni-123"): unable to parse IP`},
		{1, "1::2::3", `field srcaddr: invalid value "1::2::3": ParseAddr("1::2::3"): multiple :: in address (at ":3")`},
		{2, "65536", `field srcport: invalid value "65536": out of range 0…65535`},
		{2, "-1", `field srcport: invalid value "-1": not a decimal number`},
		{2, "+1", `field srcport: invalid value "+1": not a decimal number`},
		{3, "256", `field protocol: invalid value "256": out of range 0…255`},
		{4, "300", `field tcp-flags: invalid value "300": out of range 0…255`},
		{5, "0x8", `field traffic-path: invalid value "0x8": not a decimal number`},
		{6, "18446744073709551616", `field packets: invalid value "18446744073709551616": out of range 0…9223372036854775807`},
		{7, "9223372036854775808", `field start: invalid value "9223372036854775808": out of range -9223372036854775808…9223372036854775807`},
		{7, "1.5", `field start: invalid value "1.5": not a decimal number`},
		{8, "accept", `field action: invalid value "accept": not a known value`},
		{9, "NO-DATA", `field log-status: invalid value "NO-DATA": not a known value`},
		{10, "EGRESS", `field flow-direction: invalid value "EGRESS": not a known value`},
	}
	for _, tc := range tests {
		vals := slicesClone(good)
		vals[tc.col] = tc.value
		line := strings.Join(vals, " ")
		err := f.ParseRecord([]byte(line), &r)
		var fe *FieldError
		if !errors.As(err, &fe) || err.Error() != tc.msg || fe.Value != tc.value || fe.Field != Fields[f.fields[tc.col]].Name {
			t.Errorf("%q:\n got %v\nwant %s", line, err, tc.msg)
		}
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func TestParseRecordBounds(t *testing.T) {
	f := mustParse(t, "${packets} ${bytes} ${start} ${end} ${srcport} ${version}")
	var r Record
	if err := f.ParseRecord([]byte("18446744073709551615 0 -9223372036854775808 9223372036854775807 65535 255"), &r); err != nil {
		t.Fatal(err)
	}
	if r.Packets != 1<<64-1 || r.Bytes != 0 || r.Start != -1<<63 || r.End != 1<<63-1 || r.SrcPort != 65535 || r.Version != 255 {
		t.Errorf("%+v", r)
	}
	if got := string(f.Append(nil, &r)); got != "18446744073709551615 0 -9223372036854775808 9223372036854775807 65535 255" {
		t.Errorf("Append = %s", got)
	}
	if err := f.ParseRecord([]byte("0 0 -9223372036854775809 0 0 0"), &r); err == nil {
		t.Error("start below MinInt64 accepted")
	}
	if err := f.ParseRecord([]byte("007 0 -0 0 0 0"), &r); err != nil || r.Packets != 7 {
		t.Errorf("leading zeros: %v %d", err, r.Packets)
	}
}

func TestParseRecordCount(t *testing.T) {
	d := DefaultFormat()
	var r Record
	tests := map[string]string{
		"":                             "expected 14 fields, found 0",
		"   ":                          "expected 14 fields, found 0",
		"2 123456789010 eni-1 - - - -": "expected 14 fields, found 7",
		lineDefault + " extra":         "expected 14 fields, found 15",
		lineDefault + " a b c ":        "expected 14 fields, found 17",
		// A bad value in a line of the wrong length is a count error.
		"Phony unsupported log format.": "expected 14 fields, found 4",
	}
	for line, want := range tests {
		err := d.ParseRecord([]byte(line), &r)
		var ce *CountError
		if !errors.As(err, &ce) || err.Error() != want {
			t.Errorf("%q: %v, want %s", line, err, want)
		}
	}
}

func TestParseRecordWhitespace(t *testing.T) {
	d := DefaultFormat()
	var r Record
	messy := "  2\t123456789010  eni-1235b8ca123456789 172.31.16.139   172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK \r\n"
	if err := d.ParseRecord([]byte(messy), &r); err != nil {
		t.Fatal(err)
	}
	if got := string(d.Append(nil, &r)); got != lineDefault {
		t.Errorf("Append = %q", got)
	}
}

func TestParseRecordAbsentAndReset(t *testing.T) {
	d := DefaultFormat()
	var r Record
	if err := d.ParseRecord([]byte(lineDefault), &r); err != nil {
		t.Fatal(err)
	}
	// Every field of the next record comes from its line alone.
	if err := d.ParseRecord([]byte("- unknown - - - - - - - - - - - -"), &r); err != nil {
		t.Fatal(err)
	}
	want := Record{Present: FieldSet(0).With(FieldAccountID), AccountID: "unknown"}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	if got := string(d.Append(nil, &r)); got != "- unknown - - - - - - - - - - - -" {
		t.Errorf("Append = %q", got)
	}
	// Fields outside the format are cleared too.
	r = Record{Present: ^FieldSet(0), VPCID: "vpc-1", TCPFlags: 3, PktSrcAddr: netip.MustParseAddr("10.0.0.1"), Extra: []string{"x"}}
	if err := d.ParseRecord([]byte(lineDefault), &r); err != nil {
		t.Fatal(err)
	}
	if r.VPCID != "" || r.TCPFlags != 0 || r.PktSrcAddr.IsValid() || r.Extra != nil || r.Present.Has(FieldVPCID) {
		t.Errorf("stale fields: %+v", r)
	}
}

// TestParseRecordCopiesStrings: string values must not alias the line,
// which the caller reuses.
func TestParseRecordCopiesStrings(t *testing.T) {
	f := mustHeader(t, "version account-id tgw-id interface-id")
	line := []byte("6 123456789012 tgw-0abc eni-0abc")
	var r Record
	if err := f.ParseRecord(line, &r); err != nil {
		t.Fatal(err)
	}
	kept := r
	for i := range line {
		line[i] = 'X'
	}
	if r.AccountID != "123456789012" || r.InterfaceID != "eni-0abc" || r.Extra[0] != "tgw-0abc" {
		t.Errorf("values changed with the line: %+v", r)
	}
	// Parsing the next record must not change a copy of the previous one.
	if err := f.ParseRecord([]byte("6 999999999999 tgw-1111 eni-1111"), &r); err != nil {
		t.Fatal(err)
	}
	if kept.Extra[0] != "tgw-0abc" || kept.AccountID != "123456789012" {
		t.Errorf("a kept copy changed: %+v", kept)
	}
	if r.Extra[0] != "tgw-1111" || r.AccountID != "999999999999" {
		t.Errorf("new record: %+v", r)
	}
}

func TestAppendEdgeCases(t *testing.T) {
	f := mustParse(t, "${version} ${srcaddr} ${action} ${log-status} ${flow-direction} ${vpc-id} ${type} ${ecs-task-id} ${reject-reason}")
	r := Record{
		Present:      ^FieldSet(0), // present but without values
		VPCID:        "vpc with\tspaces\n",
		RejectReason: "BPA",
	}
	if got := string(f.Append(nil, &r)); got != "0 - - - - vpc_with_spaces_ - - BPA" {
		t.Errorf("Append = %q", got)
	}
	if got := string(f.AppendJSON(nil, &r)); got != `{"version":0,"srcaddr":null,"action":null,"log-status":null,"flow-direction":null,"vpc-id":"vpc with\tspaces\n","type":null,"ecs-task-id":null,"reject-reason":"BPA"}` {
		t.Errorf("AppendJSON = %s", got)
	}
	// Unknown columns without values.
	h := mustHeader(t, "version tgw-id tgw-attachment-id")
	r = Record{Present: FieldSet(0).With(FieldVersion), Version: 6, Extra: []string{"tgw-1"}}
	if got := string(h.Append(nil, &r)); got != "6 tgw-1 -" {
		t.Errorf("Append = %q", got)
	}
	if got := string(h.AppendJSON(nil, &r)); got != `{"version":6,"tgw-id":"tgw-1","tgw-attachment-id":null}` {
		t.Errorf("AppendJSON = %s", got)
	}
	// An IPv6 address with a zone (never in AWS logs) still renders.
	z := mustParse(t, "${srcaddr}")
	r = Record{Present: FieldSet(0).With(FieldSrcAddr), SrcAddr: netip.MustParseAddr(`fe80::1%eth"0`)}
	if got := string(z.AppendJSON(nil, &r)); got != `{"srcaddr":"fe80::1%eth\"0"}` {
		t.Errorf("AppendJSON = %s", got)
	}
}

func TestAppendJSONEscaping(t *testing.T) {
	for _, s := range []string{
		"plain", `quote " and \ backslash`, "tab\tnl\ncr\rbell\x07del\x7f", "<html>&amp;",
		"bad utf8 \xff\xfe end", "line sep \u2028 para sep \u2029", "кириллица б", "\x00", "é\xc3",
	} {
		got := string(appendJSONString(nil, s))
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(buf.String(), "\n"); got != want {
			t.Errorf("appendJSONString(%q) = %s, encoding/json %s", s, got, want)
		}
	}
}

// Sinks keep the hot paths honest: the compiler cannot drop work whose
// result is stored in a package variable.
var (
	sinkBytes  []byte
	sinkRecord Record
	sinkErr    error
)

func TestNoAllocs(t *testing.T) {
	d := DefaultFormat()
	v5 := mustParse(t, fmtV5Path)
	ecs := mustParse(t, fmtV7All)
	var rd, r5, r6, recs Record
	if err := d.ParseRecord([]byte(lineDefault), &rd); err != nil {
		t.Fatal(err)
	}
	if err := v5.ParseRecord([]byte(lineV5), &r5); err != nil {
		t.Fatal(err)
	}
	if err := d.ParseRecord([]byte(lineV6Addr), &r6); err != nil {
		t.Fatal(err)
	}
	ecsLine := "3 000000000000 - 2a02:cf40:: 1.128.0.0 42910 80 17 51 33615 1755678754 1755678775 REJECT NODATA - - - - - - - - - - - - - ingress - arn:aws:ecs:us-east-1:000000000000:cluster/backend-cluster backend-cluster arn:aws:ecs:x i-18de3682c033431da 601a6500-efa dea79277-480 payments-service arn:aws:ecs:y arn:aws:ecs:z 0bf7c3c7-6b1"
	if err := ecs.ParseRecord([]byte(ecsLine), &recs); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	lines := map[string][]byte{"default": []byte(lineDefault), "v5": []byte(lineV5), "ipv6": []byte(lineV6Addr), "ecs": []byte(ecsLine)}
	tests := []struct {
		name string
		fn   func()
	}{
		{"Append/default", func() { sinkBytes = d.Append(buf[:0], &rd) }},
		{"Append/v5", func() { sinkBytes = v5.Append(buf[:0], &r5) }},
		{"Append/ipv6", func() { sinkBytes = d.Append(buf[:0], &r6) }},
		{"Append/ecs", func() { sinkBytes = ecs.Append(buf[:0], &recs) }},
		{"AppendJSON/default", func() { sinkBytes = d.AppendJSON(buf[:0], &rd) }},
		{"AppendJSON/v5", func() { sinkBytes = v5.AppendJSON(buf[:0], &r5) }},
		{"AppendJSON/ecs", func() { sinkBytes = ecs.AppendJSON(buf[:0], &recs) }},
		{"AppendHeader", func() { sinkBytes = v5.AppendHeader(buf[:0]) }},
		// Parsing into the record that already holds the same ids.
		{"ParseRecord/default", func() { sinkErr = d.ParseRecord(lines["default"], &rd) }},
		{"ParseRecord/v5", func() { sinkErr = v5.ParseRecord(lines["v5"], &r5) }},
		{"ParseRecord/ipv6", func() { sinkErr = d.ParseRecord(lines["ipv6"], &r6) }},
		{"ParseRecord/ecs", func() { sinkErr = ecs.ParseRecord(lines["ecs"], &recs) }},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
		if sinkErr != nil {
			t.Fatalf("%s: %v", tc.name, sinkErr)
		}
	}
	// Numbers, enums and addresses never allocate; only new string values do
	// (account-id and interface-id of the default format).
	n := testing.AllocsPerRun(1000, func() {
		sinkRecord = Record{}
		sinkErr = d.ParseRecord(lines["ipv6"], &sinkRecord)
	})
	if n != 2 {
		t.Errorf("ParseRecord into a fresh record: %v allocations, want 2 (the two ids)", n)
	}
}
