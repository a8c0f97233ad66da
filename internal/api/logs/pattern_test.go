package logs

import (
	"errors"
	"strings"
	"testing"
)

// Flow log lines in the default format (version 2).
const (
	accept = "2 123456789012 eni-0a1b2c3d 10.0.2.15 172.31.16.139 49761 443 6 20 4249 1418530010 1418530070 ACCEPT OK"
	reject = "2 123456789012 eni-0a1b2c3d 172.31.9.69 10.0.2.15 49761 22 6 1 40 1418530010 1418530070 REJECT OK"
	web    = "2 123456789012 eni-0a1b2c3d 10.0.2.77 172.31.16.139 50000 8080 6 12 900 1418530010 1418530070 REJECT OK"
	nodata = "2 123456789012 eni-0a1b2c3d - - - - - - - 1431280876 1431280934 - NODATA"
)

const flowFields = "version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action, flowlogstatus"

func TestPatternMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{"", []string{accept, reject, nodata}, nil},
		{"   ", []string{accept, reject}, nil},
		{`""`, []string{accept}, nil},
		{"REJECT", []string{reject, web}, []string{accept, nodata}},
		{"REJECT 22", []string{reject}, []string{accept, nodata}},
		{`"10.0.2.15 172.31.16.139"`, []string{accept}, []string{reject, web}},
		{`"172.31.9.69 10.0.2.15" REJECT`, []string{reject}, []string{accept, web}},
		{"?NODATA ?REJECT", []string{reject, web, nodata}, []string{accept}},
		{"REJECT -8080", []string{reject}, []string{web, accept}},
		{"-REJECT", []string{accept, nodata}, []string{reject, web}},
		{`%REJECT|NODATA%`, []string{reject, web, nodata}, []string{accept}},
		{`% 22 6 %`, []string{reject}, []string{accept, web}},
		{"[" + flowFields + "]", []string{accept, reject, nodata}, []string{"2 too few fields"}},
		{"[version, account, eni, source, destination, srcport, destport=\"22\", protocol, packets, bytes, windowstart, windowend, action=\"REJECT\", flowlogstatus]", []string{reject}, []string{accept, web, nodata}},
		{"[version, accountid, interfaceid, srcaddr = 10.0.2.*, dstaddr, srcport, dstport = 80 || dstport = 8080, protocol, packets, bytes >= 400, start, end, action = REJECT, logstatus]", []string{web}, []string{accept, reject, nodata}},
		{"[..., action = REJECT, status]", []string{reject, web}, []string{accept, nodata}},
		{"[v, ..., action = ACCEPT, status = OK]", []string{accept}, []string{reject}},
		{"[v, a, e, src, dst != 10.0.2.15, ...]", []string{accept, web, nodata}, []string{reject}},
		{"[..., bytes < 1000, start, end, action, status]", []string{reject, web}, []string{accept, nodata}},
		{"[..., bytes > 1000, start, end, action, status]", []string{accept}, []string{reject, web, nodata}},
		{"[..., bytes != 40, start, end, action, status]", []string{accept, web, nodata}, []string{reject}},
		{"[..., packets, bytes, start, end, action, status = NODATA]", []string{nodata}, []string{accept}},
		{"[..., dstport = 22 || (dstport = 8080 && bytes <= 900), protocol, packets, bytes, start, end, action, status]", []string{reject, web}, []string{accept}},
		{"[..., dst = *.139, srcport, dstport, ...]", []string{accept, web}, []string{reject}},
		{`[ip, user, ..., status = "4*"]`, []string{`1.2.3.4 - [10/Oct/2000:13:55:36 -0700] "GET /a.gif" 404`}, []string{`1.2.3.4 - x 200`}},
		{`[ip, user, time, request, status]`, []string{`1.2.3.4 - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 404`}, nil},
		{"[..., src, dst, sp, dp, ..., action = REJECT, status]", []string{reject, web}, []string{accept}},
		{"[..., src = %^10\\.0\\.2\\.%, dst, sp, dp = %^(22|80)$%, ...]", []string{}, []string{accept, reject, web}},
		{"[..., src = %^10[.]0[.]2[.]%, dst, sp, dp = %^8080$%, ...]", []string{web}, []string{accept, reject}},
		{"[v, a, e, src, dst, sp, dp != %^44%, ...]", []string{reject, web}, []string{accept}},
	} {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", tc.pattern, err)
			continue
		}
		for _, m := range tc.match {
			if !p.Match(m) {
				t.Errorf("pattern %q does not match %q", tc.pattern, m)
			}
		}
		for _, m := range tc.nomatch {
			if p.Match(m) {
				t.Errorf("pattern %q matches %q", tc.pattern, m)
			}
		}
	}
}

// Unsupported or broken syntax is an error naming the problem, never a
// pattern that matches everything.
func TestPatternErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{`{ $.eventType = "UpdateTrail" }`, "JSON filter patterns"},
		{`"unterminated`, "unterminated quote"},
		{`REJECT ?ACCEPT`, "cannot be combined"},
		{`ab"c`, "a quote inside a term"},
		{`?`, "must be followed by a term"},
		{`%abc`, "must end with %"},
		{`%a(b%`, "regular expression"},
		{`%a% %b%`, "one %regex% per pattern"},
		{`[a, b`, "want , or ]"},
		{`[a, b] x`, "text after the closing ]"},
		{`[a, a]`, "named twice"},
		{`[a, b = 1 && c = 2]`, `"c", which is not a field`},
		{`[a, b < x]`, "needs a number"},
		{`[a, b == 1]`, "want ="},
		{`[a, b = ]`, "want a value"},
		{`[a, b = 1 & c]`, "want &&"},
		{`[a, (b = 1)]`, "want a field name"},
		{`[$.a]`, "not supported"},
		{`[..., a, ..., b, ..., c]`, "more than two ..."},
		{`[a, b = (1]`, "want a value"},
		{`[a, b > %1%]`, "= or != only"},
		{`[a, b = %x(%]`, "regular expression"},
		{`[a, b = %x]`, "must end with %"},
		{`REJECT [x]`, "only at the start"},
		{strings.Repeat("a", 1025), "longer than 1024"},
	} {
		_, err := ParsePattern(tc.pattern)
		var pe *PatternError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePattern(%q) = %v, want an error with %q", tc.pattern, err, tc.want)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"", "REJECT", `"a b" -c`, "?a ?b", "%a+%", "[" + flowFields + "]",
		"[..., dstport = 80 || dstport = 8080, protocol, packets, bytes >= 400, ...]", `[a, b = "x*y" && (a != 1 || a < 2)]`, "{ $.a = 1 }"} {
		f.Add(s, reject)
	}
	f.Fuzz(func(t *testing.T, pattern, msg string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePattern(%q): error %v is not a *PatternError", pattern, err)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() = %q, want %q", p.String(), pattern)
		}
		m := p.Match(msg)
		// A required substring missing means no match.
		for _, r := range p.Required() {
			if m && !strings.Contains(msg, r) {
				t.Fatalf("pattern %q matches %q without its required %q", pattern, msg, r)
			}
		}
		if p.MatchesAll() && !m {
			t.Fatalf("pattern %q matches all but not %q", pattern, msg)
		}
	})
}
