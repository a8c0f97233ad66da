package analyze

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// scanFormats are the formats the scanner tests and fuzzing use: the
// default, AWS's v3 and v5 examples, and a transit gateway header with
// fields flowlog does not know.
var scanFormats = func() []*flow.Format {
	var fs []*flow.Format
	for _, h := range []string{
		flow.DefaultFormatText,
		"${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} ${bytes} ${packets} ${start} ${end} ${action} ${tcp-flags} ${log-status}",
		"${version} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${start} ${end} ${type} ${packets} ${bytes} ${account-id} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${region} ${az-id} ${sublocation-type} ${sublocation-id} ${action} ${tcp-flags} ${pkt-srcaddr} ${pkt-dstaddr} ${pkt-src-aws-service} ${pkt-dst-aws-service} ${traffic-path} ${flow-direction} ${log-status}",
		"version account-id tgw-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status type tcp-flags flow-direction region",
	} {
		f, err := flow.ParseHeader(h)
		if err != nil {
			panic(err)
		}
		fs = append(fs, f)
	}
	return fs
}()

// fieldText renders one field of r as Format.Append would.
func fieldText(id flow.FieldID, r *flow.Record) string {
	f, err := flow.ParseFormat("${" + id.String() + "}")
	if err != nil {
		panic(err)
	}
	return string(f.Append(nil, r))
}

// checkScan holds Scan to ParseRecord's answer for one line.
func checkScan(t *testing.T, f *flow.Format, need flow.FieldSet, line string) {
	t.Helper()
	var want flow.Record
	wantErr := f.ParseRecord([]byte(line), &want)
	s := NewScanner(f, need)
	// A reused record with other values in it: Scan must not let them
	// show through for the fields it parses.
	got := flow.Record{AccountID: "stale", SrcPort: 1, Action: flow.ActionReject, Present: ^flow.FieldSet(0)}
	gotErr := s.Scan([]byte(line), &got)

	var wantCount, gotCount *flow.CountError
	var wantField *flow.FieldError
	switch {
	case errors.As(wantErr, &wantCount):
		if !errors.As(gotErr, &gotCount) || *gotCount != *wantCount {
			t.Fatalf("%q: ParseRecord %v, Scan %v", line, wantErr, gotErr)
		}
		return
	case errors.As(wantErr, &wantField):
		id, _ := flow.FieldByName(wantField.Field)
		if s.Fields().Has(id) {
			if gotErr == nil || gotErr.Error() != wantErr.Error() {
				t.Fatalf("%q: ParseRecord %v, Scan %v", line, wantErr, gotErr)
			}
		}
		return
	case wantErr != nil:
		t.Fatalf("%q: unexpected ParseRecord error %v", line, wantErr)
	}
	if gotErr != nil {
		t.Fatalf("%q: ParseRecord accepts it, Scan says %v", line, gotErr)
	}
	if got.Present != want.Present&s.Fields() {
		t.Fatalf("%q: Present %b, want %b", line, got.Present, want.Present&s.Fields())
	}
	for id := flow.FieldID(0); int(id) < flow.NumFields; id++ {
		if !s.Fields().Has(id) || !want.Present.Has(id) {
			continue
		}
		if g, w := fieldText(id, &got), fieldText(id, &want); g != w {
			t.Fatalf("%q: %s = %q, ParseRecord %q", line, id, g, w)
		}
	}
}

func allFields() flow.FieldSet { return flow.FieldSet(1)<<flow.NumFields - 1 }

func TestScannerAgreesOnCorpora(t *testing.T) {
	needs := []flow.FieldSet{
		allFields(),
		0,
		flow.FieldSet(0).With(flow.FieldSrcAddr).With(flow.FieldDstPort).With(flow.FieldBytes),
		flow.FieldSet(0).With(flow.FieldLogStatus),
		flow.FieldSet(0).With(flow.FieldVersion),
		flow.FieldSet(0).With(flow.FieldTCPFlags).With(flow.FieldInterfaceID).With(flow.FieldAction),
	}
	lines := 0
	for _, dir := range []string{"aws-samples", "aws-logs"} {
		files, _ := filepath.Glob(filepath.Join(corpora(t), dir, "*.log"))
		for _, path := range files {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(data), "\n") {
				line = strings.TrimRight(line, " \r")
				if line == "" || strings.HasPrefix(line, "$") || strings.HasPrefix(line, "version") {
					continue
				}
				lines++
				for _, f := range scanFormats {
					for _, need := range needs {
						checkScan(t, f, need, line)
					}
				}
			}
		}
	}
	if lines < 50 {
		t.Fatalf("only %d corpus lines", lines)
	}
}

func TestScannerEdgeLines(t *testing.T) {
	f := flow.DefaultFormat()
	for _, line := range []string{
		"",
		" ",
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK",
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OKK",
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT",
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK extra",
		"2  123456789010\teni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK",
		"  2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK  ",
		"2 123456789010 eni-1 010.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK",
		"2 123456789010 eni-1 ::ffff:10.0.0.1 2001:db8::1 1 2 6 3 4 5 6 REJECT SKIPDATA",
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 65536 2 6 3 4 5 6 ACCEPT OK",
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 18446744073709551615 18446744073709551616 -5 9223372036854775808 ACCEPT OK",
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 accept OK",
		"12345678 1234567 1234567 1234567 1234567 1 2 3 4 5 6 7 ACCEPT OK",
		"1234567 1234567 1234567 1234567 1234567 1 2 3 4 5 6 7 ACCEPT OKxxxxxx",
		"2 1 é 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK",
		"2 1 a\x01b 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK",
		"2 1 a\x85b 10.0.0.1 10.0.0.2 1 2 6 3 4 5 6 ACCEPT OK",
	} {
		for need := flow.FieldID(0); int(need) < flow.NumFields; need++ {
			checkScan(t, f, flow.FieldSet(0).With(need), line)
		}
		checkScan(t, f, allFields(), line)
		checkScan(t, f, 0, line)
	}
}

func TestScannerNoAllocs(t *testing.T) {
	f := flow.DefaultFormat()
	s := NewScanner(f, allFields())
	line := []byte("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK")
	var r flow.Record
	if err := s.Scan(line, &r); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.Scan(line, &r) }); n != 0 {
		t.Fatalf("Scan allocates %.1f times per line", n)
	}
}

func FuzzScanner(f *testing.F) {
	f.Add(uint8(0), uint64(1<<flow.FieldSrcAddr|1<<flow.FieldBytes), "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK")
	f.Add(uint8(0), ^uint64(0), "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA")
	f.Add(uint8(1), ^uint64(0), "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 52.213.180.42 10.0.0.62 43638  5001 52.213.180.42 10.0.0.62 6 1260 17 1566933133 1566933193 ACCEPT 3 OK")
	f.Add(uint8(3), uint64(1<<flow.FieldTCPFlags), "6 123456789012 tgw-0abc 10.0.0.1 10.0.1.1 12345 443 6 10 1000 1700000000 1700000060 OK IPv4 2 ingress us-east-1")
	f.Fuzz(func(t *testing.T, fi uint8, need uint64, line string) {
		if strings.IndexByte(line, '\n') >= 0 {
			return // the reader splits lines before the scanner sees them
		}
		checkScan(t, scanFormats[int(fi)%len(scanFormats)], flow.FieldSet(need)&allFields(), line)
	})
}

// corpora returns ../shared/corpora next to the module root.
func corpora(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "corpora")
	if _, err := os.Stat(c); err != nil {
		t.Fatalf("corpora not found next to the module: %v", err)
	}
	return c
}

func TestParseDigits(t *testing.T) {
	for _, s := range []string{"0", "7", "12345678", "1718900400", "0000000000000000000", "9999999999999999999", "18446744073709551615", "123456789012345678", "12345678x", "1234567/", "1234567:", "12:45678", "", "١٢"} {
		got, ok := parseDigits([]byte(s))
		want, err := strconv.ParseUint(s, 10, 64)
		wantOK := err == nil && len(s) <= 19
		if ok != wantOK || (ok && got != want) {
			t.Errorf("parseDigits(%q) = %d, %v; want %d, %v", s, got, ok, want, wantOK)
		}
	}
	for i := range 100000 {
		s := strconv.FormatUint(uint64(i)*2654435761%10000000000, 10)
		if got, ok := parseDigits([]byte(s)); !ok || strconv.FormatUint(got, 10) != s {
			t.Fatalf("parseDigits(%q) = %d, %v", s, got, ok)
		}
	}
}
