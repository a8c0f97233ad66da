package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/klauspost/compress/gzip"
)

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

// normalize collapses runs of whitespace, as ParseRecord reads them.
func normalize(line string) string { return strings.Join(strings.Fields(line), " ") }

// checkJSON checks AppendJSON against the text line: same keys in format
// order, "-" as null, numbers as JSON numbers, the rest as strings equal to
// the text.
func checkJSON(t *testing.T, f *Format, r *Record, line string) {
	t.Helper()
	out := f.AppendJSON(nil, r)
	if !json.Valid(out) {
		t.Fatalf("AppendJSON is not valid JSON: %s", out)
	}
	names := strings.Fields(f.Header())
	vals := strings.Fields(line)
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("JSON does not start with an object: %v %v", tok, err)
	}
	for i := 0; dec.More(); i++ {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(names) || key != names[i] {
			t.Fatalf("JSON key %d = %v, want %s (in %s)", i, key, names[i], out)
		}
		val, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		id, known := FieldByName(names[i])
		switch v := val.(type) {
		case nil:
			if vals[i] != "-" {
				t.Errorf("%s: JSON null, text %q", names[i], vals[i])
			}
		case json.Number:
			if !known || !numericFields.Has(id) {
				t.Errorf("%s: JSON number for a string field", names[i])
			}
			if string(v) != vals[i] {
				t.Errorf("%s: JSON %s, text %q", names[i], v, vals[i])
			}
		case string:
			if known && numericFields.Has(id) {
				t.Errorf("%s: JSON string for a numeric field", names[i])
			}
			if v != vals[i] {
				t.Errorf("%s: JSON %q, text %q", names[i], v, vals[i])
			}
		default:
			t.Errorf("%s: unexpected JSON value %v", names[i], val)
		}
	}
}

func TestAWSSamples(t *testing.T) {
	dir := filepath.Join(corpora(t), "aws-samples")
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(files) < 15 {
		t.Fatalf("aws-samples: %d files, %v", len(files), err)
	}
	byFile := map[string][]Record{}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		f, err := ParseFormat(lines[0])
		if err != nil {
			t.Fatalf("%s: line 1: %v", path, err)
		}
		if f.String() != lines[0] {
			t.Errorf("%s: String() = %q, want line 1", path, f.String())
		}
		name := filepath.Base(path)
		for i, line := range lines[1:] {
			var r Record
			if err := f.ParseRecord([]byte(line), &r); err != nil {
				t.Fatalf("%s: line %d: %v", name, i+2, err)
			}
			if got := string(f.Append(nil, &r)); got != line {
				t.Errorf("%s: line %d re-renders as\n%s\nwant\n%s", name, i+2, got, line)
			}
			checkJSON(t, f, &r, line)
			byFile[name] = append(byFile[name], r)
		}
		if strings.HasPrefix(name, "default-") != f.IsDefault() {
			t.Errorf("%s: IsDefault = %v", name, f.IsDefault())
		}
	}

	ssh := byFile["default-accepted-ssh.log"][0]
	if ssh.SrcAddr != netip.MustParseAddr("172.31.16.139") || ssh.DstPort != 22 || ssh.Packets != 20 ||
		ssh.Bytes != 4249 || ssh.Action != ActionAccept || ssh.LogStatus != LogStatusOK ||
		ssh.Start != 1418530010 || ssh.End != 1418530070 || ssh.AccountID != "123456789010" || ssh.Version != 2 {
		t.Errorf("default-accepted-ssh: %+v", ssh)
	}
	nodata := byFile["default-nodata.log"][0]
	if nodata.LogStatus != LogStatusNoData || nodata.Present.Has(FieldSrcAddr) || nodata.Present.Has(FieldAction) ||
		!nodata.Present.Has(FieldStart) || nodata.SrcAddr.IsValid() {
		t.Errorf("default-nodata: %+v", nodata)
	}
	if r := byFile["default-skipdata.log"][0]; r.LogStatus != LogStatusSkipData || r.InterfaceID != "eni-11111111aaaaaaaaa" {
		t.Errorf("default-skipdata: %+v", r)
	}
	if r := byFile["default-ipv6-ssh.log"][0]; !r.SrcAddr.Is6() || r.SrcAddr.String() != "2001:db8:1234:a100:8d6e:3477:df66:f105" {
		t.Errorf("default-ipv6-ssh: %+v", r)
	}
	if r := byFile["default-sg-nacl-ping.log"][1]; r.Action != ActionReject || r.Protocol != 1 || r.SrcPort != 0 || !r.Present.Has(FieldSrcPort) {
		t.Errorf("default-sg-nacl-ping: %+v", r)
	}
	if r := byFile["nat-gateway-eni.log"][0]; r.Present.Has(FieldInstanceID) || r.PktDstAddr != netip.MustParseAddr("203.0.113.5") ||
		r.DstAddr != netip.MustParseAddr("10.0.0.220") {
		t.Errorf("nat-gateway-eni: %+v", r)
	}
	flags := []uint8{}
	for _, r := range byFile["v3-tcp-flags-3-short-connection.log"] {
		flags = append(flags, r.TCPFlags)
	}
	if len(flags) != 2 || flags[0] != 3 || flags[1] != 19 {
		t.Errorf("short connection tcp-flags = %v, want [3 19]", flags)
	}
	if r := byFile["v3-tcp-flags-2-fin.log"][1]; r.Bytes != 23294588 || r.Packets != 15774 || r.Type != "IPv4" || r.TCPFlags != 1 {
		t.Errorf("v3-tcp-flags-2-fin: %+v", r)
	}
	v5 := byFile["v5-service-traffic-path-flow-direction.log"]
	if v5[0].FlowDirection != DirectionIngress || v5[0].Present.Has(FieldTrafficPath) || v5[0].PktSrcService != "S3" ||
		v5[1].FlowDirection != DirectionEgress || v5[1].TrafficPath != 8 || v5[1].PktDstService != "S3" ||
		v5[1].Region != "ap-southeast-2" || v5[1].AZID != "apse2-az3" || v5[1].Present.Has(FieldSublocationType) {
		t.Errorf("v5 sample: %+v", v5)
	}
	out := string(mustParse(t, "${version} ${srcaddr} ${traffic-path} ${flow-direction} ${pkt-dst-aws-service}").AppendJSON(nil, &v5[1]))
	if want := `{"version":5,"srcaddr":"10.0.0.71","traffic-path":8,"flow-direction":"egress","pkt-dst-aws-service":"S3"}`; out != want {
		t.Errorf("JSON = %s, want %s", out, want)
	}
	out = string(DefaultFormat().AppendJSON(nil, &nodata))
	if want := `{"version":2,"account-id":"123456789010","interface-id":"eni-1235b8ca123456789","srcaddr":null,"dstaddr":null,"srcport":null,"dstport":null,"protocol":null,"packets":null,"bytes":null,"start":1431280876,"end":1431280934,"action":null,"log-status":"NODATA"}`; out != want {
		t.Errorf("NODATA JSON = %s\nwant %s", out, want)
	}
}

func mustParse(t testing.TB, s string) *Format {
	t.Helper()
	f, err := ParseFormat(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustHeader(t testing.TB, s string) *Format {
	t.Helper()
	f, err := ParseHeader(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readAll reads a whole flow log, collecting records (with the format and
// line each came from) and line errors.
type readResult struct {
	recs    []Record
	formats []*Format
	lines   []int64
	errs    []*LineError
}

func readAll(t *testing.T, data []byte, opts ReaderOptions) readResult {
	t.Helper()
	var res readResult
	rd := NewReader(bytes.NewReader(data), opts)
	for {
		var r Record
		err := rd.Next(&r)
		if err == io.EOF {
			return res
		}
		var le *LineError
		if errors.As(err, &le) {
			if le.Line != rd.Line() {
				t.Errorf("LineError.Line %d, Reader.Line %d", le.Line, rd.Line())
			}
			res.errs = append(res.errs, le)
			continue
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		res.recs = append(res.recs, r)
		res.formats = append(res.formats, rd.Format())
		res.lines = append(res.lines, rd.Line())
	}
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Formats of the headerless files, from README.tsv's format column.
const (
	fmtV3Flow    = "${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} ${bytes} ${packets} ${start} ${end} ${action} ${tcp-flags} ${log-status}"
	fmtNAT       = "${instance-id} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr}"
	fmtTGWPath   = "${version} ${interface-id} ${account-id} ${vpc-id} ${subnet-id} ${instance-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${tcp-flags} ${type} ${pkt-srcaddr} ${pkt-dstaddr} ${action} ${log-status}"
	fmtV5Path    = "${version} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${start} ${end} ${type} ${packets} ${bytes} ${account-id} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${region} ${az-id} ${sublocation-type} ${sublocation-id} ${action} ${tcp-flags} ${pkt-srcaddr} ${pkt-dstaddr} ${pkt-src-aws-service} ${pkt-dst-aws-service} ${traffic-path} ${flow-direction} ${log-status}"
	fmtV5All     = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${vpc-id} ${subnet-id} ${instance-id} ${tcp-flags} ${type} ${pkt-srcaddr} ${pkt-dstaddr} ${region} ${az-id} ${sublocation-type} ${sublocation-id} ${pkt-src-aws-service} ${pkt-dst-aws-service} ${flow-direction} ${traffic-path}"
	fmtV7All     = fmtV5All + " ${ecs-cluster-arn} ${ecs-cluster-name} ${ecs-container-instance-arn} ${ecs-container-instance-id} ${ecs-container-id} ${ecs-second-container-id} ${ecs-service-name} ${ecs-task-definition-arn} ${ecs-task-arn} ${ecs-task-id}"
	fmtV7Blog    = DefaultFormatText + " ${ecs-task-id} ${ecs-task-arn} ${ecs-task-definition-arn} ${ecs-cluster-name} ${ecs-cluster-arn} ${ecs-container-instance-id} ${ecs-container-instance-arn} ${ecs-container-id} ${ecs-second-container-id} ${ecs-service-name}"
	fmtTGWNoVer  = "${resource-type} ${account-id} ${tgw-id} ${tgw-attachment-id} ${tgw-src-vpc-account-id} ${tgw-dst-vpc-account-id} ${tgw-src-vpc-id} ${tgw-dst-vpc-id} ${tgw-src-subnet-id} ${tgw-dst-subnet-id} ${tgw-src-eni} ${tgw-dst-eni} ${tgw-src-az-id} ${tgw-dst-az-id} ${tgw-pair-attachment-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${log-status} ${type} ${packets-lost-no-route} ${packets-lost-blackhole} ${packets-lost-mtu-exceeded} ${packets-lost-ttl-expired} ${tcp-flags} ${region} ${flow-direction} ${pkt-src-aws-service} ${pkt-dst-aws-service}"
	fmtOtelCW    = "${version} ${interface-id} ${srcaddr} ${dstaddr}"
	fmtOtelTGWCW = "${version} ${account-id} ${tgw-id} ${tgw-attachment-id} ${tgw-src-vpc-id} ${tgw-dst-vpc-id} ${tgw-src-subnet-id} ${tgw-dst-subnet-id} ${tgw-src-eni} ${tgw-dst-eni} ${tgw-src-az-id} ${tgw-dst-az-id} ${tgw-pair-attachment-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${log-status} ${type} ${tcp-flags} ${flow-direction} ${region}"
)

type logCase struct {
	file    string
	format  string // for headerless input; "" = header in the file, or the default format by field count
	records int    // README.tsv's records column, except where noted
	errs    map[int64]string
	check   func(t *testing.T, res readResult)
}

var logCases = []logCase{
	{file: "integrations-4.log", format: fmtV7All, records: 10, check: func(t *testing.T, res readResult) {
		r := res.recs[0]
		if r.Version != 3 || r.AccountID != "000000000000" || r.Present.Has(FieldInterfaceID) ||
			r.SrcAddr != netip.MustParseAddr("1.128.0.0") || r.DstAddr != netip.MustParseAddr("2a02:cf40::") ||
			r.FlowDirection != DirectionIngress || r.Present.Has(FieldTrafficPath) || r.Action != ActionReject ||
			r.ECS[FieldECSClusterName-FieldECSClusterARN] != "frontend-cluster" ||
			r.ECS[FieldECSTaskID-FieldECSClusterARN] != "6adbd0d6-211" ||
			r.ECS[FieldECSTaskDefinitionARN-FieldECSClusterARN] != "arn:aws:ecs:us-east-1:000000000000:task-definition/backend:3" {
			t.Errorf("record 1: %+v", r)
		}
		if r := res.recs[2]; r.LogStatus != LogStatusSkipData || r.Packets != 65 {
			t.Errorf("record 3: %+v", r)
		}
	}},
	{file: "integrations-5.log", records: 3, check: func(t *testing.T, res readResult) {
		if r := res.recs[0]; r.TCPFlags != 2 || r.Bytes != 568 || r.Packets != 8 || res.lines[0] != 2 {
			t.Errorf("record 1 (line %d): %+v", res.lines[0], r)
		}
		if r := res.recs[1]; r.LogStatus != LogStatusSkipData || r.Present.Has(FieldTCPFlags) || r.Present.Has(FieldType) || res.lines[1] != 4 {
			t.Errorf("record 2 (line %d): %+v", res.lines[1], r)
		}
		if r := res.recs[2]; r.LogStatus != LogStatusNoData || res.lines[2] != 6 {
			t.Errorf("record 3: %+v", r)
		}
	}},
	// Mixed formats without headers: with the default format the ECS and
	// TGW lines are errors (TestMixedFormats reads all 9 with their formats).
	{file: "integrations-8.log", format: DefaultFormatText, records: 7,
		errs: map[int64]string{8: "expected 14 fields, found 39", 9: "expected 14 fields, found 36"},
		check: func(t *testing.T, res readResult) {
			if r := res.recs[2]; r.InterfaceID != "eni-89.160.20.1561aaaaaaaaa" || r.LogStatus != LogStatusSkipData {
				t.Errorf("record 3: %+v", r)
			}
			if r := res.recs[0]; r.SrcAddr != r.DstAddr || !r.SrcAddr.Is6() {
				t.Errorf("record 1: %+v", r)
			}
		}},
	{file: "beats-2.log", records: 0, errs: map[int64]string{1: "no header line or format"}},
	{file: "beats-4.log", format: fmtTGWPath, records: 1, check: func(t *testing.T, res readResult) {
		if r := res.recs[0]; r.InterfaceID != "eni-33333333333333333" || r.TCPFlags != 3 || r.Present.Has(FieldPackets) {
			t.Errorf("record: %+v", r)
		}
	}},
	{file: "beats-5.log", records: 1, check: func(t *testing.T, res readResult) {
		if r := res.recs[0]; !res.formats[0].IsDefault() || r.SrcPort != 34892 || !r.DstAddr.Is6() {
			t.Errorf("record: %+v", r)
		}
	}},
	{file: "beats-6.log", records: 2, check: func(t *testing.T, res readResult) {
		if res.recs[0].LogStatus != LogStatusNoData || res.recs[1].LogStatus != LogStatusSkipData {
			t.Errorf("records: %+v", res.recs)
		}
	}},
	{file: "beats-7.log", records: 2, check: func(t *testing.T, res readResult) {
		if res.lines[0] != 2 || res.lines[1] != 5 || res.recs[0].LogStatus != LogStatusSkipData ||
			res.recs[1].LogStatus != LogStatusNoData || res.recs[1].VPCID != "vpc-abcdefab012345678" {
			t.Errorf("records at lines %v: %+v", res.lines, res.recs)
		}
	}},
	{file: "beats-10.log", format: fmtV3Flow, records: 8, check: func(t *testing.T, res readResult) {
		if r := res.recs[7]; r.SrcPort != 5001 || r.DstPort != 43638 || r.PktSrcAddr != netip.MustParseAddr("10.0.0.62") || r.TCPFlags != 19 {
			t.Errorf("record 8 (double space): %+v", r)
		}
		if r := res.recs[5]; r.Bytes != 23294588 || r.Packets != 15774 {
			t.Errorf("record 6: %+v", r)
		}
	}},
	{file: "beats-11.log", format: fmtNAT, records: 6, check: func(t *testing.T, res readResult) {
		if r := res.recs[0]; r.Present.Has(FieldInstanceID) || r.PktDstAddr != netip.MustParseAddr("203.0.113.5") {
			t.Errorf("record 1: %+v", r)
		}
		if r := res.recs[4]; r.InstanceID != "i-01234567890123456" || r.InterfaceID != "eni-1111aaaa2222bbbb3" {
			t.Errorf("record 5: %+v", r)
		}
	}},
	{file: "beats-12.log", format: fmtTGWPath, records: 4, check: func(t *testing.T, res readResult) {
		if r := res.recs[3]; r.Present.Has(FieldInstanceID) || r.PktDstAddr != netip.MustParseAddr("10.20.33.164") || r.DstAddr != netip.MustParseAddr("10.40.2.31") {
			t.Errorf("record 4: %+v", r)
		}
	}},
	{file: "beats-13.log", format: fmtV5Path, records: 2, check: func(t *testing.T, res readResult) {
		if r := res.recs[1]; r.TrafficPath != 8 || r.PktDstService != "S3" || r.FlowDirection != DirectionEgress || r.Bytes != 471 || r.Region != "ap-southeast-2" {
			t.Errorf("record 2: %+v", r)
		}
	}},
	{file: "beats-14.log", format: fmtV5All, records: 1, check: func(t *testing.T, res readResult) {
		if r := res.recs[0]; r.SublocationType != "wavelength" || r.SublocationID != "fake-id" || r.PktSrcService != "AMAZON" ||
			r.PktDstService != "CLOUDFRONT" || r.TrafficPath != 1 || r.AccountID != "64111117617" || r.Version != 5 {
			t.Errorf("record: %+v", r)
		}
	}},
	{file: "beats-15.log", format: fmtTGWNoVer, records: 1, check: func(t *testing.T, res readResult) {
		r, f := res.recs[0], res.formats[0]
		if len(f.Unknown()) != 18 || len(f.Fields()) != 17 || f.Version() != 5 || f.Len() != 35 {
			t.Errorf("format: %d unknown, %d known, version %d", len(f.Unknown()), len(f.Fields()), f.Version())
		}
		if r.Present.Has(FieldVersion) || r.AccountID != "123456789123" || r.DstPort != 53 || r.Start != 1766848875 ||
			r.FlowDirection != DirectionEgress || r.Region != "us-east-1" || r.TCPFlags != 2 {
			t.Errorf("record: %+v", r)
		}
		if len(r.Extra) != 18 || r.Extra[0] != "TransitGateway" || r.Extra[3] != "123456789123" ||
			r.Extra[7] != "subnet-3fbc536e360c36caб" || r.Extra[13] != "" || r.Extra[17] != "0" {
			t.Errorf("extra: %q", r.Extra)
		}
	}},
	{file: "beats-16.log", format: fmtV7Blog, records: 1, check: func(t *testing.T, res readResult) {
		r := res.recs[0]
		if r.Version != 5 || res.formats[0].Version() != 7 || r.ECS[FieldECSTaskID-FieldECSClusterARN] != "b9ad2f8a90b24f7bbce4b0341034852f" ||
			r.Present.Has(FieldECSSecondContainerID) || r.ECS[FieldECSServiceName-FieldECSClusterARN] != "cats" {
			t.Errorf("record: %+v", r)
		}
	}},
	{file: "otel-1.log", records: 1, check: func(t *testing.T, res readResult) {
		if r := res.recs[0]; r.AccountID != "12345678910" || r.LogStatus != LogStatusNoData || !res.formats[0].IsDefault() {
			t.Errorf("record: %+v", r)
		}
	}},
	{file: "otel-3.log", records: 2, check: func(t *testing.T, res readResult) {
		if r := res.recs[1]; r.Action != ActionReject || r.LogStatus != LogStatusOK || res.lines[1] != 3 {
			t.Errorf("last record (no final newline): %+v", r)
		}
	}},
	{file: "otel-4.log", records: 1, check: func(t *testing.T, res readResult) {
		r, f := res.recs[0], res.formats[0]
		if r.Version != 6 || r.Packets != 10 || r.Start != 1700000000 || r.Region != "us-east-1" || r.TCPFlags != 2 {
			t.Errorf("record: %+v", r)
		}
		if u := f.Unknown(); len(u) != 15 || u[0] != "tgw-id" || u[11] != "packets-lost-no-route" ||
			r.Extra[0] != "tgw-0abc12345def67890" || r.Extra[11] != "1" || r.Extra[14] != "4" {
			t.Errorf("unknown %q, extra %q", u, r.Extra)
		}
	}},
	{file: "otel-6.json", format: fmtOtelCW, records: 2, check: func(t *testing.T, res readResult) {
		if r := res.recs[1]; r.InterfaceID != "eni-1235b8ca123456789" || r.DstAddr != netip.MustParseAddr("172.31.9.12") ||
			r.Version != 2 || res.lines[1] != 1 {
			t.Errorf("record 2: %+v", r)
		}
	}},
	{file: "otel-7.json", format: fmtOtelTGWCW, records: 1, check: func(t *testing.T, res readResult) {
		if r := res.recs[0]; r.Version != 6 || r.Region != "us-east-1" || r.FlowDirection != DirectionIngress ||
			len(r.Extra) != 11 || r.Extra[0] != "tgw-0abc12345def67890" {
			t.Errorf("record: %+v", r)
		}
	}},
	{file: "otel-8.log", records: 0, errs: map[int64]string{2: "expected 14 fields, found 13"}},
}

// readmeRecords reads the records column of aws-logs/README.tsv.
func readmeRecords(t *testing.T, dir string) map[string]int {
	data, err := os.ReadFile(filepath.Join(dir, "README.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		cols := strings.Split(line, "\t")
		if len(cols) < 6 {
			continue
		}
		n, err := strconv.Atoi(cols[5])
		if err != nil {
			t.Fatalf("README.tsv: %s: records %q", cols[0], cols[5])
		}
		out[cols[0]] = n
	}
	return out
}

func TestAWSLogs(t *testing.T) {
	dir := filepath.Join(corpora(t), "aws-logs")
	readme := readmeRecords(t, dir)
	tested := map[string]bool{"beats-9.yml": true} // TestBeatsYAML
	for _, tc := range logCases {
		tested[tc.file] = true
		want, ok := readme[tc.file]
		if !ok {
			t.Errorf("%s: not in README.tsv", tc.file)
		}
		if tc.file != "integrations-8.log" && want != tc.records {
			t.Errorf("%s: table says %d records, README.tsv %d", tc.file, tc.records, want)
		}
		data, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var opts ReaderOptions
		if tc.format != "" {
			opts.Format = mustHeader(t, tc.format)
		}
		for _, variant := range []string{"plain", "gzip"} {
			t.Run(tc.file+"/"+variant, func(t *testing.T) {
				input := data
				if variant == "gzip" {
					input = gzipped(t, data)
				}
				res := readAll(t, input, opts)
				if len(res.recs) != tc.records {
					t.Errorf("%d records, want %d (errors: %v)", len(res.recs), tc.records, res.errs)
				}
				if len(res.errs) != len(tc.errs) {
					t.Errorf("errors %v, want at lines %v", res.errs, tc.errs)
				}
				for _, le := range res.errs {
					if want, ok := tc.errs[le.Line]; !ok || !strings.Contains(le.Error(), want) {
						t.Errorf("unexpected error %q (want %q at line %d)", le, want, le.Line)
					}
				}
				if tc.check != nil && len(res.recs) == tc.records {
					tc.check(t, res)
				}
				// Text lines re-render byte for byte, apart from
				// collapsed runs of spaces.
				if strings.HasSuffix(tc.file, ".log") {
					lines := strings.Split(string(data), "\n")
					for i := range res.recs {
						want := normalize(lines[res.lines[i]-1])
						if got := string(res.formats[i].Append(nil, &res.recs[i])); got != want {
							t.Errorf("line %d re-renders as\n%s\nwant\n%s", res.lines[i], got, want)
						}
						checkJSON(t, res.formats[i], &res.recs[i], want)
					}
				}
			})
		}
	}
	files, _ := os.ReadDir(dir)
	for _, e := range files {
		if e.Name() != "README.tsv" && !tested[e.Name()] {
			t.Errorf("%s is not tested", e.Name())
		}
	}
}

// TestMixedFormats reads integrations-8.log line by line with the format
// README.tsv gives for each line: all 9 records parse and re-render.
func TestMixedFormats(t *testing.T) {
	dir := filepath.Join(corpora(t), "aws-logs")
	data, err := os.ReadFile(filepath.Join(dir, "integrations-8.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	formats := []*Format{DefaultFormat(), DefaultFormat(), DefaultFormat(), DefaultFormat(), DefaultFormat(), DefaultFormat(), DefaultFormat(),
		mustParse(t, fmtV7All), mustHeader(t, "${version} "+fmtTGWNoVer)}
	if len(lines) != len(formats) || readmeRecords(t, dir)["integrations-8.log"] != len(lines) {
		t.Fatalf("%d lines", len(lines))
	}
	var r Record
	for i, line := range lines {
		if err := formats[i].ParseRecord([]byte(line), &r); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if got := string(formats[i].Append(nil, &r)); got != line {
			t.Errorf("line %d re-renders as\n%s\nwant\n%s", i+1, got, line)
		}
	}
	if r.Version != 3 || len(r.Extra) != 18 || r.Extra[1] != "tgw-0a12bc34de56f7890" || r.AccountID != "748335378900" ||
		r.LogStatus != LogStatusSkipData || r.SrcAddr != netip.MustParseAddr("2a02:cf40::") || r.Extra[0] != "" {
		t.Errorf("TGW line: %+v", r)
	}
}

// TestBeatsYAML parses every sample of the beats processor fixture with
// the format given next to it.
func TestBeatsYAML(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(corpora(t), "aws-logs", "beats-9.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]struct {
		Format  string   `yaml:"format"`
		Samples []string `yaml:"samples"`
	}
	if err := yaml.UnmarshalWithOptions(data, &doc, yaml.AllowDuplicateMapKey()); err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for name, entry := range doc {
		f, err := ParseHeader(entry.Format)
		if err != nil {
			t.Fatalf("%s: format: %v", name, err)
		}
		for i, s := range entry.Samples {
			var r Record
			if err := f.ParseRecord([]byte(s), &r); err != nil {
				t.Errorf("%s sample %d: %v", name, i, err)
				continue
			}
			if got := string(f.Append(nil, &r)); got != normalize(s) {
				t.Errorf("%s sample %d re-renders as\n%s\nwant\n%s", name, i, got, normalize(s))
			}
			distinct[s] = true
		}
	}
	if len(distinct) != 30 {
		t.Errorf("%d distinct samples, README.tsv says 30", len(distinct))
	}
}
