package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// corpusSeeds returns (format, line) pairs from every corpus file whose
// format is known: aws-samples (format on line 1), the aws-logs files with
// a header, and the headerless ones with their formats from logCases.
func corpusSeeds(t testing.TB) [][2]string {
	dir := corpora(t)
	var seeds [][2]string
	samples, _ := filepath.Glob(filepath.Join(dir, "aws-samples", "*.log"))
	for _, path := range samples {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		for _, l := range lines[1:] {
			seeds = append(seeds, [2]string{lines[0], l})
		}
	}
	for _, tc := range logCases {
		if !strings.HasSuffix(tc.file, ".log") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "aws-logs", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		format := tc.format
		if format == "" {
			format = DefaultFormatText
		}
		for _, l := range strings.Split(string(data), "\n") {
			if isFormatLine([]byte(l)) {
				format = l
				continue
			}
			seeds = append(seeds, [2]string{format, l})
		}
	}
	return seeds
}

func FuzzParseFormat(f *testing.F) {
	for _, s := range corpusSeeds(f) {
		f.Add(s[0])
	}
	for _, s := range []string{"", "${version},${srcaddr}", "${srcadr}", "${}", "version", "${a}${b}", "${version} ${version}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		fm, err := ParseFormat(s)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseFormat(%q): %T", s, err)
			}
			if fe.Position > 0 && !strings.Contains(err.Error(), fe.Token) && !strings.Contains(err.Error(), strconv.Quote(fe.Token)) {
				t.Fatalf("ParseFormat(%q): %q does not name the token %q", s, err, fe.Token)
			}
		} else {
			again, err := ParseFormat(fm.String())
			if err != nil {
				t.Fatalf("ParseFormat(String() of %q = %q): %v", s, fm.String(), err)
			}
			if !reflect.DeepEqual(again.Fields(), fm.Fields()) || again.String() != fm.String() ||
				again.IsDefault() != fm.IsDefault() || again.Version() != fm.Version() || fm.Len() != len(fm.Fields()) {
				t.Fatalf("%q and its String() %q differ", s, fm.String())
			}
			if h := mustHeaderFuzz(t, fm.Header()); h.String() != fm.String() {
				t.Fatalf("header %q parses to %q", fm.Header(), h.String())
			}
		}
		// The lenient parser never panics, and its forms are stable.
		if h, err := ParseHeader(s); err == nil {
			if h2 := mustHeaderFuzz(t, h.String()); h2.Header() != h.Header() || !reflect.DeepEqual(h2.Unknown(), h.Unknown()) {
				t.Fatalf("ParseHeader(%q): String() %q parses to %q", s, h.String(), h2.Header())
			}
			if h2 := mustHeaderFuzz(t, h.Header()); h2.String() != h.String() {
				t.Fatalf("ParseHeader(%q): Header() %q parses to %q", s, h.Header(), h2.String())
			}
		}
	})
}

func mustHeaderFuzz(t *testing.T, s string) *Format {
	f, err := ParseHeader(s)
	if err != nil {
		t.Fatalf("ParseHeader(%q): %v", s, err)
	}
	return f
}

// checkRoundTrip asserts that a parsed record renders to a line that
// parses back to the same record, and to valid JSON.
func checkRoundTrip(t *testing.T, fm *Format, r1 *Record) {
	out := fm.Append(nil, r1)
	var r2 Record
	if err := fm.ParseRecord(out, &r2); err != nil {
		t.Fatalf("Append gave %q, which does not parse: %v", out, err)
	}
	if !reflect.DeepEqual(*r1, r2) {
		t.Fatalf("round trip through %q:\n%+v\n%+v", out, *r1, r2)
	}
	if again := fm.Append(nil, &r2); !bytes.Equal(again, out) {
		t.Fatalf("Append not stable: %q then %q", out, again)
	}
	js := fm.AppendJSON(nil, r1)
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil || len(m) != fm.Len() {
		t.Fatalf("AppendJSON %s: %v, %d keys for %d fields", js, err, len(m), fm.Len())
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range corpusSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Add(DefaultFormatText, "2 unknown eni-1 ::ffff:1.2.3.4 fe80::1%eth0 0 0 0 0 0 -1 0 REJECT SKIPDATA")
	f.Fuzz(func(t *testing.T, format, line string) {
		fm, err := ParseHeader(format)
		if err != nil {
			return
		}
		var r1 Record
		if err := fm.ParseRecord([]byte(line), &r1); err != nil {
			var fe *FieldError
			var ce *CountError
			if !errors.As(err, &fe) && !errors.As(err, &ce) {
				t.Fatalf("ParseRecord error %T: %v", err, err)
			}
			return
		}
		checkRoundTrip(t, fm, &r1)
	})
}

// FuzzParseAddr checks the allocation-free address parser against
// netip.ParseAddr.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1", "255.255.255.255", "1.2.3", "01.2.3.4", "::", "::1", "1::", "2001:db8::68", "::ffff:1.2.3.4",
		"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "fe80::1%eth0", "1::2::3", ":1", "1:",
		"12345::", "2a02:cf40::", "0:0:0:0:0:0:0:0:0", "1:2:3:4:5:6:7:1.2.3.4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gotErr := parseAddr([]byte(s))
		want, wantErr := netip.ParseAddr(s)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("parseAddr(%q) = %v, %v; netip: %v, %v", s, got, gotErr, want, wantErr)
		}
		// The one-pass IPv4 scanner stops at a separator and otherwise
		// agrees with netip.ParseAddr, or declines.
		if strings.ContainsAny(s, " \t\r\n\v\f") {
			return
		}
		if a, n := scanIPv4([]byte(s + " x")); n > 0 {
			if n != len(s) || wantErr != nil || a != want {
				t.Fatalf("scanIPv4(%q) = %v, %d; netip: %v, %v", s, a, n, want, wantErr)
			}
		} else if wantErr == nil && want.Is4() {
			t.Fatalf("scanIPv4(%q) declines an IPv4 address", s)
		}
	})
}

func FuzzReader(f *testing.F) {
	dir := corpora(f)
	for _, sub := range []string{"aws-samples", "aws-logs"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, path := range files {
			if strings.HasSuffix(path, ".tsv") || strings.HasSuffix(path, ".yml") {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, false)
			if strings.HasSuffix(path, "integrations-5.log") {
				f.Add(gzipped(f, data), true)
			}
		}
	}
	f.Add([]byte(cwDoc+cwDoc+"\n{\n\"logEvents\":[{\"message\":\"x\"}]}\n{x\n"+lineDefault), false)
	natFormat := mustParse(f, fmtNAT)
	f.Fuzz(func(t *testing.T, data []byte, withFormat bool) {
		opts := ReaderOptions{}
		if withFormat {
			opts.Format = natFormat
		}
		rd := NewReader(bytes.NewReader(data), opts)
		// Every call consumes input or ends the stream, so there are at
		// most as many results as bytes of (decompressed) input.
		limit := len(data) + 10
		if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
				n, _ := io.Copy(io.Discard, io.LimitReader(zr, 1<<26))
				limit += int(n)
			}
		}
		for i := 0; ; i++ {
			if i > limit {
				t.Fatalf("more than %d results from %d bytes", limit, len(data))
			}
			var r Record
			err := rd.Next(&r)
			if err == io.EOF {
				return
			}
			var le *LineError
			if errors.As(err, &le) {
				if le.Line < 1 || le.Line != rd.Line() {
					t.Fatalf("LineError line %d, Reader.Line %d", le.Line, rd.Line())
				}
				continue
			}
			if err != nil {
				return // the input cannot be read further (bad gzip)
			}
			checkRoundTrip(t, rd.Format(), &r)
		}
	})
}

// FuzzSetField checks that setting every column of a line with SetField
// gives the record ParseRecord gives, and the same error for a bad value.
func FuzzSetField(f *testing.F) {
	f.Add("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK")
	f.Add("2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA")
	f.Add("2 1 eni-1 2001:db8::1 ::ffff:1.2.3.4 65536 -1 256 18446744073709551616 x -5 9223372036854775808 accept ok")
	format := DefaultFormat()
	f.Fuzz(func(t *testing.T, line string) {
		var want Record
		wantErr := format.ParseRecord([]byte(line), &want)
		toks := strings.FieldsFunc(line, func(c rune) bool { return c < 0x80 && isFormatSpace(byte(c)) })
		if len(toks) != format.Len() {
			return
		}
		// Start from a record full of other values: SetField must
		// overwrite or clear each field it is given.
		got := Record{AccountID: "x", SrcPort: 9, SrcAddr: netip.MustParseAddr("9.9.9.9"), Action: ActionReject, Start: 7}
		got.Present = format.Set()
		var gotErr error
		for i, id := range format.Fields() {
			if err := got.SetField(id, []byte(toks[i])); err != nil && gotErr == nil {
				gotErr = err
			}
		}
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%q: ParseRecord error %v, SetField error %v", line, wantErr, gotErr)
		}
		if wantErr != nil {
			if wantErr.Error() != gotErr.Error() {
				t.Fatalf("%q: ParseRecord error %v, SetField error %v", line, wantErr, gotErr)
			}
			return
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%q:\nParseRecord %+v\nSetField    %+v", line, want, got)
		}
	})
}
