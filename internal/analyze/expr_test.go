package analyze

import (
	"errors"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// rec parses one line of format (default when empty).
func rec(t testing.TB, format, line string) *flow.Record {
	t.Helper()
	f := flow.DefaultFormat()
	if format != "" {
		var err error
		if f, err = flow.ParseHeader(format); err != nil {
			t.Fatal(err)
		}
	}
	var r flow.Record
	if err := f.ParseRecord([]byte(line), &r); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return &r
}

func TestExprMatches(t *testing.T) {
	ssh := rec(t, "", "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK")
	rdp := rec(t, "", "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK")
	v6 := rec(t, "", "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK")
	nodata := rec(t, "", "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA")
	flags := rec(t, "version interface-id srcaddr dstaddr srcport dstport protocol tcp-flags type flow-direction action log-status",
		"5 eni-1 10.0.0.62 52.213.180.42 5001 43416 6 18 IPv4 egress ACCEPT OK")
	all := []*flow.Record{ssh, rdp, v6, nodata, flags}
	for _, c := range []struct {
		expr string
		want []*flow.Record
	}{
		{`action = "REJECT" and dstport in (22, 3389)`, []*flow.Record{rdp}},
		{`action = REJECT or dstport == 22`, []*flow.Record{ssh, rdp, v6}},
		{`action = 'accept'`, []*flow.Record{ssh, v6, flags}},
		{`srcaddr in 172.31.0.0/16`, []*flow.Record{ssh, rdp}},
		{`srcaddr not in 172.31.0.0/16`, []*flow.Record{v6, flags}},
		{`srcaddr in (10.0.0.0/8, 2001:db8::/32)`, []*flow.Record{v6, flags}},
		{`srcaddr = 172.31.16.139`, []*flow.Record{ssh}},
		{`srcaddr != 172.31.16.139`, []*flow.Record{rdp, v6, flags}},
		{`srcaddr > 172.31.10.0`, []*flow.Record{ssh}},
		{`not srcaddr in 172.31.0.0/16`, []*flow.Record{v6, nodata, flags}},
		{`srcaddr = -`, []*flow.Record{nodata}},
		{`bytes != "-" and bytes >= 4249 and bytes < 8855`, []*flow.Record{ssh, rdp}},
		{`packets <= 20`, []*flow.Record{ssh, rdp}},
		{`log-status = NODATA or log_status = skipdata`, []*flow.Record{nodata}},
		{`protocol = tcp and tcp-flags = 18`, []*flow.Record{flags}},
		{`flow-direction = egress`, []*flow.Record{flags}},
		{`type = "IPv4"`, []*flow.Record{flags}},
		{`interface-id in (eni-1, "eni-2")`, []*flow.Record{flags}},
		{`start >= "2016-10-31"`, []*flow.Record{v6}},
		{`end < 2015-01-01`, []*flow.Record{ssh, rdp}},
		{`start = 1418530010`, []*flow.Record{ssh, rdp}},
		{`not (action = ACCEPT or action = REJECT)`, []*flow.Record{nodata}},
		{`((dstport = 22)) and not not srcaddr in 2001:db8::/32`, []*flow.Record{v6}},
		{`NOT dstport = 22 AND dstport != 3389`, []*flow.Record{flags}},
	} {
		e, err := ParseExpr(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		var got []*flow.Record
		for _, r := range all {
			if e.Match(r) {
				got = append(got, r)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: matched %d records, want %d", c.expr, len(got), len(c.want))
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: match %d is record %+v", c.expr, i, got[i])
			}
		}
		again, err := ParseExpr(e.String())
		if err != nil || again.String() != e.String() {
			t.Errorf("%s: canonical form %q does not read back (%v)", c.expr, e.String(), err)
		}
	}
}

func TestExprFields(t *testing.T) {
	e, err := ParseExpr(`action = REJECT and (dstport in (22) or srcaddr in 10.0.0.0/8)`)
	if err != nil {
		t.Fatal(err)
	}
	want := flow.FieldSet(0).With(flow.FieldAction).With(flow.FieldDstPort).With(flow.FieldSrcAddr)
	if e.Fields() != want {
		t.Fatalf("Fields = %b, want %b", e.Fields(), want)
	}
}

func TestExprErrorsNameTheColumn(t *testing.T) {
	for _, c := range []struct {
		expr   string
		column int
		msg    string
	}{
		{``, 1, "empty expression"},
		{`dstprt = 22`, 1, `unknown field "dstprt"; did you mean dstport?`},
		{`dstport 22`, 9, `expected an operator`},
		{`dstport =`, 10, `expected a value after "="`},
		{`dstport = x`, 11, `"x" is not a number`},
		{`dstport = 70000`, 11, `out of range`},
		{`action = "REJECT" and dstport in (22, 3389`, 43, `expected "," or ")" in the list that starts at column 34`},
		{`action = "REJECT`, 10, `string is not closed`},
		{`action = DROP`, 10, `not an action: want ACCEPT or REJECT`},
		{`action < ACCEPT`, 8, `only compares with = and !=`},
		{`srcaddr = 10.0.0.0/8`, 11, `is a network: write srcaddr in 10.0.0.0/8`},
		{`srcaddr in 10.0.0.0/33`, 12, `not a network`},
		{`srcaddr = 10.0.0.256`, 11, `not an IP address`},
		{`(dstport = 22`, 14, `expected ")" to close the "(" at column 1`},
		{`dstport = 22)`, 13, `")" without a matching "("`},
		{`dstport = 22 dstport = 23`, 14, `expected and, or or the end`},
		{`dstport = 22 and`, 17, `expected a comparison`},
		{`dstport ! 22`, 9, `"!" alone is not an operator`},
		{`dstport not 22`, 13, `expected "in"`},
		{`and dstport = 22`, 1, `expected a field name`},
		{`start > "yesterday"`, 9, `not a time`},
		{`bytes < -`, 9, `only goes with = and !=`},
		{`type = ""`, 8, `empty string`},
		{`é = 1 and dstport = ?`, 1, `unknown field`},
		{`dstport = 1 and é = 1`, 17, `unknown field`},
	} {
		_, err := ParseExpr(c.expr)
		var ee *ExprError
		if !errors.As(err, &ee) {
			t.Errorf("%q: error %v, want an *ExprError", c.expr, err)
			continue
		}
		if ee.Column != c.column || !strings.Contains(ee.Msg, c.msg) {
			t.Errorf("%q: column %d %q, want column %d containing %q", c.expr, ee.Column, ee.Msg, c.column, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "column ") || !strings.Contains(ee.Caret(), "^") {
			t.Errorf("%q: error text %q, caret %q", c.expr, err.Error(), ee.Caret())
		}
	}
}

func TestExprDeepNestingIsRefused(t *testing.T) {
	s := strings.Repeat("(", 5000) + "dstport = 1" + strings.Repeat(")", 5000)
	if _, err := ParseExpr(s); err == nil || !strings.Contains(err.Error(), "nested parentheses") {
		t.Fatalf("error %v", err)
	}
	s = strings.Repeat("not ", 5000) + "dstport = 1"
	e, err := ParseExpr(s)
	if err != nil {
		t.Fatal(err)
	}
	if e.Match(&flow.Record{Present: flow.FieldSet(0).With(flow.FieldDstPort), DstPort: 1}) != true {
		t.Fatal("an even number of nots must not change the result")
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		`action = "REJECT" and dstport in (22, 3389)`,
		`srcaddr in 10.0.0.0/8 and not (dstaddr in (10.0.0.0/8, 192.168.0.0/16))`,
		`protocol = tcp and tcp-flags = 2 and bytes >= 1000`,
		`start >= "2024-06-20T16:00:00Z" or log-status != OK`,
		`interface-id = 'eni-\'x' or type != -`,
		`(((dstport = 1)))`,
	} {
		f.Add(s)
	}
	recs := []*flow.Record{
		rec(f, "", "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"),
		rec(f, "", "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"),
		rec(f, "version interface-id srcaddr dstaddr tcp-flags type flow-direction", "5 eni-1 2001:db8::1 10.0.0.1 18 IPv6 egress"),
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			var ee *ExprError
			if !errors.As(err, &ee) || ee.Column < 1 || ee.Column > len([]rune(s))+1 {
				t.Fatalf("%q: error %v has no column in the input", s, err)
			}
			return
		}
		canon := e.String()
		again, err := ParseExpr(canon)
		if err != nil {
			t.Fatalf("%q: canonical form %q: %v", s, canon, err)
		}
		if again.String() != canon || again.Fields() != e.Fields() {
			t.Fatalf("%q: canonical form %q reads back as %q", s, canon, again.String())
		}
		for _, r := range recs {
			if e.Match(r) != again.Match(r) {
				t.Fatalf("%q and its canonical form %q disagree on %+v", s, canon, r)
			}
		}
	})
}
