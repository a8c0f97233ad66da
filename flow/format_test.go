package flow

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseFormatErrors(t *testing.T) {
	tests := []struct {
		in         string
		msg        string // exact message
		pos        int
		token      string
		suggestion string
	}{
		{"", "empty format: a format needs at least one ${field}", 0, "", ""},
		{" \t ", "empty format: a format needs at least one ${field}", 0, "", ""},
		{"${version} ${srcadr}", "unknown field ${srcadr} at position 2; did you mean ${srcaddr}?", 2, "${srcadr}", "${srcaddr}"},
		{"${version} ${account_id}", "unknown field ${account_id} at position 2; did you mean ${account-id}?", 2, "${account_id}", "${account-id}"},
		{"${SRCADDR}", "unknown field ${SRCADDR} at position 1; did you mean ${srcaddr}?", 1, "${SRCADDR}", "${srcaddr}"},
		{"${tcpflags}", "unknown field ${tcpflags} at position 1; did you mean ${tcp-flags}?", 1, "${tcpflags}", "${tcp-flags}"},
		{"${version} ${zzzzzzzzzzzzzzzzzzzz}", "unknown field ${zzzzzzzzzzzzzzzzzzzz} at position 2", 2, "${zzzzzzzzzzzzzzzzzzzz}", ""},
		{"${tgw-id}", "unknown field ${tgw-id} at position 1; did you mean ${vpc-id}?", 1, "${tgw-id}", "${vpc-id}"},
		{"${srcaddr} ${dstaddr} ${srcaddr}", "duplicate field ${srcaddr} at position 3 (already at position 1)", 3, "${srcaddr}", ""},
		{"${version},${srcaddr}", `text between fields in "${version},${srcaddr}" at position 1: separate ${field} tokens with spaces and nothing else`, 1, "${version},${srcaddr}", ""},
		{"${version} x${srcaddr}", `text between fields in "x${srcaddr}" at position 2: separate ${field} tokens with spaces and nothing else`, 2, "x${srcaddr}", ""},
		{"${version} ${srcaddr}x", `text between fields in "${srcaddr}x" at position 2: separate ${field} tokens with spaces and nothing else`, 2, "${srcaddr}x", ""},
		{"version", `"version" at position 1 is not a ${field} token; did you mean ${version}?`, 1, "version", "${version}"},
		{"${version} {srcaddr}", `"{srcaddr}" at position 2 is not a ${field} token; did you mean ${srcaddr}?`, 2, "{srcaddr}", "${srcaddr}"},
		{"${version} $srcaddr", `"$srcaddr" at position 2 is not a ${field} token; did you mean ${srcaddr}?`, 2, "$srcaddr", "${srcaddr}"},
		{"${version} ${srcaddr", `"${srcaddr" at position 2 is not a ${field} token; did you mean ${srcaddr}?`, 2, "${srcaddr", "${srcaddr}"},
		{"${version} , ${srcaddr}", `"," at position 2 is not a ${field} token`, 2, ",", ""},
		{"${version} ${}", "empty field name ${} at position 2", 2, "${}", ""},
		{"${version} ${${x}}", `text between fields in "${${x}}" at position 2: separate ${field} tokens with spaces and nothing else`, 2, "${${x}}", ""},
	}
	for _, tc := range tests {
		f, err := ParseFormat(tc.in)
		if err == nil {
			t.Errorf("ParseFormat(%q) = %v, want error", tc.in, f)
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("ParseFormat(%q): %T, want *FormatError", tc.in, err)
			continue
		}
		if err.Error() != tc.msg || fe.Position != tc.pos || fe.Token != tc.token || fe.Suggestion != tc.suggestion {
			t.Errorf("ParseFormat(%q) = %q (pos %d, token %q, suggestion %q)\nwant %q (pos %d, token %q, suggestion %q)",
				tc.in, err, fe.Position, fe.Token, fe.Suggestion, tc.msg, tc.pos, tc.token, tc.suggestion)
		}
	}
}

func TestParseFormat(t *testing.T) {
	f, err := ParseFormat("  ${srcaddr}\t\t${dstaddr}   ${tcp-flags} \n")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.String(); got != "${srcaddr} ${dstaddr} ${tcp-flags}" {
		t.Errorf("String() = %q", got)
	}
	if got := f.Header(); got != "srcaddr dstaddr tcp-flags" {
		t.Errorf("Header() = %q", got)
	}
	if got := string(f.AppendHeader([]byte("x:"))); got != "x:srcaddr dstaddr tcp-flags" {
		t.Errorf("AppendHeader = %q", got)
	}
	if !slices.Equal(f.Fields(), []FieldID{FieldSrcAddr, FieldDstAddr, FieldTCPFlags}) {
		t.Errorf("Fields() = %v", f.Fields())
	}
	f.Fields()[0] = FieldVersion // a copy: the format must not change
	if f.Fields()[0] != FieldSrcAddr {
		t.Error("Fields() exposes the format's slice")
	}
	if f.Len() != 3 || f.Version() != 3 || f.IsDefault() || !f.Has(FieldTCPFlags) || f.Has(FieldVersion) || len(f.Unknown()) != 0 {
		t.Errorf("Len %d Version %d IsDefault %v", f.Len(), f.Version(), f.IsDefault())
	}
	if f.Set() != FieldSet(0).With(FieldSrcAddr).With(FieldDstAddr).With(FieldTCPFlags) {
		t.Errorf("Set() = %b", f.Set())
	}
}

func TestDefaultFormat(t *testing.T) {
	const spec = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
	d := DefaultFormat()
	if DefaultFormatText != spec || d.String() != spec {
		t.Fatalf("default format = %q", d.String())
	}
	if !d.IsDefault() || d.Version() != 2 || d.Len() != 14 {
		t.Errorf("IsDefault %v Version %d Len %d", d.IsDefault(), d.Version(), d.Len())
	}
	if d.Header() != "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status" {
		t.Errorf("Header() = %q", d.Header())
	}
	// The same fields in another order, or with one more, are custom.
	for _, s := range []string{
		strings.Replace(spec, "${srcaddr} ${dstaddr}", "${dstaddr} ${srcaddr}", 1),
		spec + " ${vpc-id}",
		strings.TrimSuffix(spec, " ${log-status}"),
	} {
		if f := mustParse(t, s); f.IsDefault() {
			t.Errorf("%q: IsDefault", s)
		}
	}
	if f := mustParse(t, "  "+strings.ReplaceAll(spec, " ", "\t ")); !f.IsDefault() {
		t.Error("default format with other whitespace: not IsDefault")
	}
}

func TestFormatVersion(t *testing.T) {
	tests := []struct {
		format  string
		version int
	}{
		{"${version}", 2},
		{"${srcaddr} ${dstaddr} ${action}", 2},
		{"${version} ${vpc-id}", 3},
		{"${tcp-flags} ${srcaddr}", 3},
		{"${pkt-dstaddr}", 3},
		{"${version} ${region}", 4},
		{"${sublocation-id} ${type}", 4},
		{"${version} ${flow-direction} ${az-id}", 5},
		{"${traffic-path}", 5},
		{"${pkt-src-aws-service}", 5},
		{"${version} ${ecs-cluster-arn}", 7},
		{"${ecs-task-id} ${traffic-path} ${vpc-id}", 7},
		{"${version} ${reject-reason}", 8},
		{"${reject-reason} ${ecs-task-id}", 8},
	}
	for _, tc := range tests {
		if v := mustParse(t, tc.format).Version(); v != tc.version {
			t.Errorf("%q: Version() = %d, want %d", tc.format, v, tc.version)
		}
	}
	// Every field alone gives its own version.
	for _, fi := range Fields {
		if v := mustParse(t, "${"+fi.Name+"}").Version(); v != fi.Version {
			t.Errorf("${%s}: Version() = %d, want %d", fi.Name, v, fi.Version)
		}
	}
}

func TestAllFieldsFormat(t *testing.T) {
	var names []string
	for _, fi := range Fields {
		names = append(names, "${"+fi.Name+"}")
	}
	f := mustParse(t, strings.Join(names, " "))
	if f.Len() != NumFields || f.Version() != 8 {
		t.Errorf("Len %d Version %d", f.Len(), f.Version())
	}
	for i, id := range f.Fields() {
		if id != FieldID(i) {
			t.Fatalf("field %d = %v", i, id)
		}
	}
}

func TestFieldByName(t *testing.T) {
	for _, fi := range Fields {
		id, ok := FieldByName(fi.Name)
		if !ok || id != fi.ID || id.String() != fi.Name {
			t.Errorf("FieldByName(%q) = %v, %v", fi.Name, id, ok)
		}
	}
	for _, name := range []string{"", "${version}", "Version", "tgw-id", "srcaddr "} {
		if id, ok := FieldByName(name); ok {
			t.Errorf("FieldByName(%q) = %v", name, id)
		}
	}
}

func TestParseHeader(t *testing.T) {
	const tgw = "version account-id tgw-id srcaddr packets-lost-mtu-exceeded log-status resource-type"
	for _, in := range []string{tgw, "${" + strings.ReplaceAll(tgw, " ", "} ${") + "}"} {
		f, err := ParseHeader(in)
		if err != nil {
			t.Fatalf("ParseHeader(%q): %v", in, err)
		}
		if f.Len() != 7 || !slices.Equal(f.Unknown(), []string{"tgw-id", "packets-lost-mtu-exceeded", "resource-type"}) ||
			!slices.Equal(f.Fields(), []FieldID{FieldVersion, FieldAccountID, FieldSrcAddr, FieldLogStatus}) {
			t.Errorf("ParseHeader(%q): fields %v unknown %q", in, f.Fields(), f.Unknown())
		}
		if f.Header() != tgw || f.Version() != 2 || f.IsDefault() {
			t.Errorf("Header %q Version %d", f.Header(), f.Version())
		}
	}
	// A header of the default fields is the default format.
	if f := mustHeader(t, DefaultFormat().Header()); !f.IsDefault() || f.String() != DefaultFormatText {
		t.Errorf("default header: %q", f.String())
	}
	bad := map[string]string{
		"":                                "empty header",
		"tgw-id resource-type":            "header names no known field",
		"version account-id version":      `duplicate field version at position 3 (already at position 1)`,
		"version Account-ID":              `"Account-ID" at position 2 is not a field name`,
		"version 2":                       `"2" at position 2 is not a field name`,
		"${version} srcaddr":              `"srcaddr" at position 2 is not a ${field} token`,
		"${version} ${tgw_id}":            `"${tgw_id}" at position 2 is not a field name`,
		"2 123456789010 eni-1 - - - - - ": `"2" at position 1 is not a field name`,
	}
	for in, want := range bad {
		_, err := ParseHeader(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHeader(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestIsFormatLine(t *testing.T) {
	yes := []string{
		"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
		"instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr",
		"resource-type account-id tgw-id",
		"${version} ${srcaddr}",
		"${anything",
	}
	no := []string{
		"2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
		"i-01234567890123456 eni-1111aaaa2222bbbb3 10.0.1.5 203.0.113.5 10.0.1.5 203.0.113.5",
		"i-01234567890123456 eni-1111aaaa2222bbbb3", // ids only: no known field name
		"vpc-abc subnet-def", // plausible names, none known
		"TransitGateway 123456789123 tgw-3b86d5e89ec8ebd55", // upper case
		"ingress egress",
		"version Account-ID",
	}
	for _, s := range yes {
		if !isFormatLine([]byte(s)) {
			t.Errorf("isFormatLine(%q) = false", s)
		}
	}
	for _, s := range no {
		if isFormatLine([]byte(s)) {
			t.Errorf("isFormatLine(%q) = true", s)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"srcadr", "srcaddr", 1},
		{"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"version", "version", 0},
	}
	for _, tc := range tests {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}
