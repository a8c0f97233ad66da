package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
)

const samplePath = "../../testdata/sample.pcap.gz"

// samplePackets is the number of frames in the bundled capture, per the
// corpus MANIFEST (gopacket-cip.pcap: 26068 packets).
const samplePackets = "26068"

// flowlog runs the command in-process and returns its exit code, stdout
// and stderr.
func flowlog(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code := run(args, stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestReadDefaultFormatToStdout(t *testing.T) {
	code, out, stderr := flowlog(t, nil, "read", samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status" {
		t.Fatalf("header = %q", lines[0])
	}
	if len(lines) < 100 {
		t.Fatalf("only %d lines of output", len(lines))
	}
	var rec flow.Record
	var packets uint64
	for i, line := range lines[1:] {
		if err := flow.DefaultFormat().ParseRecord([]byte(line), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i+2, line, err)
		}
		if rec.Version != 2 || rec.AccountID != "000000000000" || !regexp.MustCompile(`^eni-[0-9a-f]{17}$`).MatchString(rec.InterfaceID) {
			t.Fatalf("line %d: %q", i+2, line)
		}
		if rec.LogStatus == flow.LogStatusOK {
			packets += rec.Packets
			if rec.Action != flow.ActionAccept || rec.End < rec.Start || rec.Bytes < 20*rec.Packets {
				t.Fatalf("line %d: implausible record %q", i+2, line)
			}
		}
	}
	if !strings.Contains(stderr, "read "+samplePackets+" packets") {
		t.Errorf("summary %q does not report %s packets", stderr, samplePackets)
	}
	if packets == 0 {
		t.Error("no packets in records")
	}
}

func TestReadCustomFormatJSONStdinAndGzipAgree(t *testing.T) {
	format := "${version} ${vpc-id} ${interface-id} ${pkt-srcaddr} ${srcaddr} ${srcport} ${pkt-dstaddr} ${dstaddr} ${dstport} ${protocol} ${tcp-flags} ${type} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
	code, fromFile, stderr := flowlog(t, nil, "read", "--format", format, samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(fromFile, "version vpc-id interface-id pkt-srcaddr srcaddr srcport pkt-dstaddr dstaddr dstport protocol tcp-flags type packets bytes start end action log-status\n3 vpc-") {
		t.Fatalf("output starts %q", fromFile[:min(len(fromFile), 300)])
	}
	compressed, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	_, fromStdin, _ := flowlog(t, bytes.NewReader(plain), "read", "--format", format, "-")
	if fromStdin != fromFile {
		t.Error("reading the uncompressed capture from stdin gave different records than the gzip'd file")
	}
	code, asJSON, stderr := flowlog(t, nil, "read", "--format", format, "--output", "json", samplePath)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, stderr)
	}
	textLines := strings.Split(strings.TrimSpace(fromFile), "\n")[1:]
	jsonLines := strings.Split(strings.TrimSpace(asJSON), "\n")
	if len(jsonLines) != len(textLines) {
		t.Fatalf("%d JSON records, %d text records", len(jsonLines), len(textLines))
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(jsonLines[0]), &obj); err != nil {
		t.Fatalf("first JSON line %q: %v", jsonLines[0], err)
	}
	fields := strings.Fields(textLines[0])
	if obj["version"] != float64(3) || obj["interface-id"] != fields[2] || len(obj) != 18 {
		t.Errorf("JSON %v does not match text %q", obj, textLines[0])
	}
}

func TestReadDestWritesS3Layout(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := flowlog(t, nil, "read", "--interval", "60", "--dest", dir, "--account-id", "123456789012", "--region", "us-east-1", "--flow-log-id", "fl-1234abcd", "--max-object-bytes", "100000", samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, stdout, _ := flowlog(t, nil, "read", "--interval", "60", "--account-id", "123456789012", "--region", "us-east-1", samplePath)
	wantRecords := strings.Count(stdout, "\n") - 1

	name := regexp.MustCompile(`^AWSLogs/123456789012/vpcflowlogs/us-east-1/(\d{4})/(\d\d)/(\d\d)/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_(\d{8})T(\d{4})Z_[0-9a-f]{8}\.log\.gz$`)
	var objects, records int
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		m := name.FindStringSubmatch(filepath.ToSlash(rel))
		if m == nil {
			t.Errorf("object %s does not follow the S3 layout", rel)
			return nil
		}
		if m[1]+m[2]+m[3] != m[4] {
			t.Errorf("object %s: date folders and name disagree", rel)
		}
		objects++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		period, err := time.Parse("20060102T1504Z", m[4]+"T"+m[5]+"Z")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Scan()
		if sc.Text() != flow.DefaultFormat().Header() {
			t.Errorf("%s: first line %q is not the header", rel, sc.Text())
		}
		size := len(sc.Text()) + 1
		var rec flow.Record
		for sc.Scan() {
			records++
			size += len(sc.Text()) + 1
			if err := flow.DefaultFormat().ParseRecord(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			if rec.End < period.Unix() || rec.End >= period.Unix()+300 {
				t.Errorf("%s holds a record ending at %d, outside its 5-minute period", rel, rec.End)
			}
		}
		if size > 100000 {
			t.Errorf("%s: %d bytes of text, more than --max-object-bytes", rel, size)
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if objects < 2 || records != wantRecords {
		t.Errorf("%d objects with %d records; stdout had %d records", objects, records, wantRecords)
	}
	if !strings.Contains(stderr, "objects") {
		t.Errorf("summary %q", stderr)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	notCapture := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notCapture, []byte("hello, this is not a capture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compressed, _ := os.ReadFile(samplePath)
	zr, _ := gzip.NewReader(bytes.NewReader(compressed))
	plain, _ := io.ReadAll(zr)
	cut := filepath.Join(dir, "cut.pcap")
	if err := os.WriteFile(cut, plain[:len(plain)/2+7], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		code     int
		stderr   []string
		stdoutOK bool // records still written
	}{
		{"not a capture", []string{"read", notCapture}, 1, []string{notCapture, "pcap"}, false},
		{"missing file", []string{"read", filepath.Join(dir, "nope.pcap")}, 1, []string{"nope.pcap", "no such file"}, false},
		{"unknown field", []string{"read", "--format", "${version} ${srcadr}", samplePath}, 2, []string{"${srcadr}", "${srcaddr}"}, false},
		{"bad interval", []string{"read", "--interval", "30", samplePath}, 2, []string{"30", "60", "600"}, false},
		{"bad traffic type", []string{"read", "--traffic-type", "SOME", samplePath}, 2, []string{"ACCEPT", "REJECT", "ALL"}, false},
		{"two captures", []string{"read", samplePath, samplePath}, 2, []string{"one capture"}, false},
		{"truncated", []string{"read", cut}, 3, []string{"cut off at byte", "--allow-truncated"}, true},
		{"truncated allowed", []string{"read", "--allow-truncated", cut}, 0, []string{"cut off at byte"}, true},
		{"unknown flag", []string{"read", "--frobnicate", samplePath}, 2, []string{"frobnicate"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := flowlog(t, nil, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			for _, s := range c.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q does not mention %q", stderr, s)
				}
			}
			if c.stdoutOK && strings.Count(stdout, "\n") < 10 {
				t.Errorf("records of the part read were not written: %q", stdout)
			}
		})
	}
}

func TestTrafficTypeFilter(t *testing.T) {
	code, out, stderr := flowlog(t, nil, "read", "--traffic-type", "REJECT", samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Offline without a policy everything is accepted: a REJECT flow log
	// has no OK records.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if strings.HasSuffix(line, " OK") {
			t.Fatalf("REJECT log holds %q", line)
		}
	}
}

func TestFormatCommands(t *testing.T) {
	code, out, _ := flowlog(t, nil, "format", "validate", "${version} ${srcaddr} ${tcp-flags}")
	if code != 0 || !strings.Contains(out, "version 3") || !strings.Contains(out, "header: version srcaddr tcp-flags") {
		t.Errorf("validate: exit %d, %q", code, out)
	}
	code, out, _ = flowlog(t, nil, "format", "validate", "--output", "json", "${version} ${reject-reason}")
	var v struct {
		Valid   bool
		Version int
		Fields  []string
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || !v.Valid || v.Version != 8 || len(v.Fields) != 2 {
		t.Errorf("validate json: exit %d, %q, %v", code, out, err)
	}
	code, _, stderr := flowlog(t, nil, "format", "validate", "${version} ${tcp-flag}")
	if code == 0 || !strings.Contains(stderr, "${tcp-flags}") {
		t.Errorf("invalid format: exit %d, %q", code, stderr)
	}
	code, out, _ = flowlog(t, nil, "format", "fields")
	if code != 0 || strings.Count(out, "\n") != flow.NumFields+1 || !strings.Contains(out, "reject-reason") {
		t.Errorf("fields: exit %d, %q", code, out)
	}
	code, out, _ = flowlog(t, nil, "format", "fields", "--output", "json")
	var fields []struct {
		Name    string
		Version int
	}
	if err := json.Unmarshal([]byte(out), &fields); err != nil || code != 0 || len(fields) != flow.NumFields || fields[17].Name != "tcp-flags" || fields[17].Version != 3 {
		t.Errorf("fields json: exit %d, %v", code, err)
	}
	code, out, _ = flowlog(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "flowlog ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// TestUsageHintNamesSubcommand checks that a usage error points at the help of
// the command that was called, which lists its flags, not at the root's.
func TestUsageHintNamesSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"read", "--interval", "300", samplePath}, "Run 'flowlog read --help' for usage.\n"},
		{[]string{"analyze", "top", "--bogus", "x"}, "Run 'flowlog analyze top --help' for usage.\n"},
		{[]string{"--bogus"}, "Run 'flowlog --help' for usage.\n"},
	} {
		code, _, stderr := flowlog(t, nil, tc.args...)
		if code != exitUsage || !strings.HasSuffix(stderr, tc.hint) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d ending in %q", tc.args, code, stderr, exitUsage, tc.hint)
		}
	}
}
