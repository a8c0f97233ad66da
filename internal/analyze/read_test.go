package analyze

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/klauspost/compress/gzip"
)

// countVisitor counts what reaches a report.
type countVisitor struct {
	noHooks
	records int
	formats []string
	lines   []string
}

func (v *countVisitor) format(f *flow.Format) { v.formats = append(v.formats, f.Header()) }
func (v *countVisitor) record(r *flow.Record, line []byte) {
	v.records++
	v.lines = append(v.lines, string(line))
}

// readAll reads inputs with a counting visitor and one worker.
func readAll(t testing.TB, rc ReadConfig, need flow.FieldSet, inputs ...Input) (*countVisitor, Stats) {
	t.Helper()
	rc.Workers = 1
	e := newEngine(rc, need, false)
	vs, st := e.run(context.Background(), inputs, func() visitor { return &countVisitor{} })
	return vs[0].(*countVisitor), st
}

// TestReadAWSLogsCorpus reads every flow log of the aws-logs corpus with
// the format its README gives (or its own header lines) and checks the
// record counts the README states.
func TestReadAWSLogsCorpus(t *testing.T) {
	dir := filepath.Join(corpora(t), "aws-logs")
	readme, err := os.ReadFile(filepath.Join(dir, "README.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	// Files whose lines are not all readable, on purpose.
	special := map[string]struct{ records, skipped int64 }{
		"beats-2.log":        {0, 1}, // "Phony unsupported log format."
		"otel-8.log":         {0, 1}, // 13 values under a 14-field header
		"integrations-8.log": {7, 2}, // default-format lines, then an ECS and a TGW line of other formats
	}
	read := 0
	for _, row := range strings.Split(strings.TrimSpace(string(readme)), "\n")[1:] {
		cols := strings.Split(row, "\t")
		name := cols[0]
		if strings.HasPrefix(name, "#") || strings.HasSuffix(name, ".yml") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var rc ReadConfig
			if format, _, _ := strings.Cut(cols[7], " ("); strings.HasPrefix(format, "${") {
				f, err := flow.ParseHeader(format)
				if err != nil {
					t.Fatalf("README format: %v", err)
				}
				rc.Format = f
			}
			in, err := FileInput(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			v, st := readAll(t, rc, allFields(), in)
			want, ok := special[name]
			if !ok {
				n, err := strconv.ParseInt(cols[5], 10, 64)
				if err != nil {
					t.Fatalf("README records %q", cols[5])
				}
				want.records = n
			}
			if st.Records != want.records || st.SkippedLines != want.skipped || int64(v.records) != want.records {
				t.Errorf("read %d records (%d reported), skipped %d lines %v; want %d records, %d skipped",
					st.Records, v.records, st.SkippedLines, st.LineErrors, want.records, want.skipped)
			}
			if len(st.Failed) > 0 {
				t.Errorf("failed: %v", st.Failed)
			}
		})
		read++
	}
	if read < 20 {
		t.Fatalf("only %d corpus files", read)
	}
}

// gz compresses data.
func gz(t testing.TB, data string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadTextForms(t *testing.T) {
	header := "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"
	rec1 := "2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 4 1700000000 1700000060 ACCEPT OK\n"
	rec2 := "2 123456789010 eni-1 10.0.0.2 10.0.0.1 2 1 6 3 4 1700000000 1700000060 ACCEPT OK\n"
	custom := "version srcaddr dstaddr tcp-flags\n3 10.0.0.1 10.0.0.2 2\n"
	cw := `{"messageType":"DATA_MESSAGE","logEvents":[{"message":"` + strings.TrimSpace(rec1) + `"},{"message":"` + strings.TrimSpace(rec2) + `"}]}` + "\n"
	for _, c := range []struct {
		name    string
		data    []byte
		records int
		formats int
	}{
		{"plain", []byte(header + rec1 + rec2), 2, 1},
		{"no header, default by count", []byte(rec1 + rec2), 2, 1},
		{"gzip", gz(t, header+rec1+rec2), 2, 1},
		{"concatenated gzip objects", append(gz(t, header+rec1), gz(t, header+rec2)...), 2, 1},
		{"repeated headers, blank lines, CRLF", []byte(header + rec1 + "\r\n" + header + strings.ReplaceAll(rec2, "\n", "\r\n")), 2, 1},
		{"format change", []byte(header + rec1 + custom), 2, 2},
		{"CloudWatch Logs subscription JSON", []byte(cw + cw), 4, 1},
		{"byte order mark, no final newline", []byte("\xef\xbb\xbf" + header + strings.TrimSpace(rec1)), 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, st := readAll(t, ReadConfig{}, connFields, ReaderInput("test", bytes.NewReader(c.data)))
			if v.records != c.records || st.SkippedLines != 0 || len(st.Failed) != 0 {
				t.Fatalf("%d records, skipped %d %v, failed %v; want %d", v.records, st.SkippedLines, st.LineErrors, st.Failed, c.records)
			}
			if len(v.formats) != c.formats {
				t.Errorf("formats %q, want %d", v.formats, c.formats)
			}
		})
	}
}

func TestReadHeaderlessNeedsFormat(t *testing.T) {
	line := "3 eni-1 10.0.0.1 10.0.0.2\n"
	_, st := readAll(t, ReadConfig{}, connFields, ReaderInput("x", strings.NewReader(line)))
	if st.Records != 0 || st.SkippedLines != 1 || !strings.Contains(st.LineErrors[0], "give the log format (--format)") {
		t.Fatalf("stats %+v", st)
	}
	f, _ := flow.ParseHeader("version interface-id srcaddr dstaddr")
	v, st := readAll(t, ReadConfig{Format: f}, connFields, ReaderInput("x", strings.NewReader(line)))
	if v.records != 1 || st.SkippedLines != 0 {
		t.Fatalf("with --format: %d records, %+v", v.records, st)
	}
}

func TestReadBadLinesAreCountedAndNamed(t *testing.T) {
	data := "version srcaddr dstport\n2 10.0.0.1 22\n2 10.0.0.999 22\n2 10.0.0.1 99999\n2 10.0.0.1\n2 10.0.0.3 23\n"
	v, st := readAll(t, ReadConfig{}, flow.FieldSet(0).With(flow.FieldSrcAddr).With(flow.FieldDstPort), ReaderInput("in.log", strings.NewReader(data)))
	if v.records != 2 || st.SkippedLines != 3 {
		t.Fatalf("%d records, %d skipped: %v", v.records, st.SkippedLines, st.LineErrors)
	}
	for i, want := range []string{"in.log: line 3: field srcaddr", "in.log: line 4: field dstport", "in.log: line 5: expected 3 fields, found 2"} {
		if !strings.HasPrefix(st.LineErrors[i], want) {
			t.Errorf("error %d = %q, want prefix %q", i, st.LineErrors[i], want)
		}
	}
}

func TestReadTimeRangeAndWhere(t *testing.T) {
	data := "version srcaddr dstport start end action\n" +
		"2 10.0.0.1 22 1000 1060 ACCEPT\n" +
		"2 10.0.0.2 22 2000 2060 REJECT\n" +
		"2 10.0.0.3 23 3000 3060 REJECT\n" +
		"2 10.0.0.4 22 - - REJECT\n"
	where, err := ParseExpr(`action = REJECT and dstport = 22`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rc   ReadConfig
		want int
	}{
		{ReadConfig{}, 4},
		{ReadConfig{Range: TimeRange{Since: time.Unix(1060, 0)}}, 4},
		{ReadConfig{Range: TimeRange{Since: time.Unix(1061, 0)}}, 3},
		{ReadConfig{Range: TimeRange{Until: time.Unix(1999, 0)}}, 2},
		{ReadConfig{Range: TimeRange{Since: time.Unix(2030, 0), Until: time.Unix(2030, 0)}}, 2},
		{ReadConfig{Where: where}, 2},
		{ReadConfig{Where: where, Range: TimeRange{Since: time.Unix(1500, 0)}}, 2},
		{ReadConfig{Where: where, Range: TimeRange{Since: time.Unix(2100, 0)}}, 1},
	} {
		v, _ := readAll(t, c.rc, 0, ReaderInput("x", strings.NewReader(data)))
		if v.records != c.want {
			t.Errorf("range %v where %v: %d records, want %d", c.rc.Range, c.rc.Where, v.records, c.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2024, 6, 20, 16, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2h":                        now.Add(-2 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"1h30m":                     now.Add(-90 * time.Minute),
		"3d":                        now.Add(-72 * time.Hour),
		"1w2d3h":                    now.Add(-(9*24 + 3) * time.Hour),
		"2024-06-20T14:00:00Z":      now.Add(-2 * time.Hour),
		"2024-06-20T16:00:00+02:00": now.Add(-2 * time.Hour),
		"2024-06-20":                time.Date(2024, 6, 20, 0, 0, 0, 0, time.UTC),
		"2024-06-20 15:30":          time.Date(2024, 6, 20, 15, 30, 0, 0, time.UTC),
		"1718900400":                time.Unix(1718900400, 0),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-2h", "2x", "2024-13-01"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q): no error", bad)
		}
	}
}

// FuzzReadInput feeds arbitrary bytes (text, gzip, JSON, Parquet) to the
// readers behind every report: they must not panic, and what they read
// must be what flow.Reader reads.
func FuzzReadInput(f *testing.F) {
	for _, dir := range []string{"aws-samples", "aws-logs"} {
		files, _ := filepath.Glob(filepath.Join(corpora(f), dir, "*"))
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil && len(data) < 8000 {
				f.Add(data)
			}
		}
	}
	f.Add(gz(f, "version srcaddr\n2 10.0.0.1\n"))
	f.Add(parquetBytes(f, []awsRow{{Version: ptr(int32(2)), SrcAddr: ptr("10.0.0.1"), DstPort: ptr(int32(22))}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		rc := ReadConfig{Workers: 1}
		for _, need := range []flow.FieldSet{connFields, allFields()} {
			e := newEngine(rc, need, false)
			vs, st := e.run(context.Background(), []Input{ReaderInput("fuzz", bytes.NewReader(data))}, func() visitor { return newConvTable(&ConnOptions{Protocol: -1}) })
			_ = vs[0].(*convTable).results(nil)
			if bytes.HasPrefix(data, []byte(parquetMagic)) || len(st.Failed) > 0 {
				continue
			}
			// Every line the scanner reads, flow.Reader reads too.
			rd := flow.NewReader(bytes.NewReader(data), flow.ReaderOptions{})
			var r flow.Record
			n := int64(0)
			for {
				err := rd.Next(&r)
				if err != nil {
					if _, ok := err.(*flow.LineError); ok {
						continue
					}
					break
				}
				n++
			}
			if need == allFields() && n != st.Records {
				t.Fatalf("scanner read %d records, flow.Reader %d", st.Records, n)
			}
		}
		e := newEngine(rc, 0, false)
		_, _ = e.run(context.Background(), []Input{ReaderInput("fuzz", bytes.NewReader(data))}, func() visitor { return newSummaryTable() })
	})
}

// TestInterruptStopsABlockedStream reads from a pipe whose writer stops
// without closing it: cancelling the context must end the report with the
// records read so far.
func TestInterruptStopsABlockedStream(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = pw.Write([]byte("version srcaddr dstport\n2 10.0.0.1 22\n2 10.0.0.2 22\n"))
	}()
	ctx, cancel := context.WithCancel(context.Background())
	e := newEngine(ReadConfig{}, connFields, false)
	done := make(chan Stats)
	go func() {
		_, st := e.run(ctx, []Input{ReaderInput(StdinName, pr)}, func() visitor { return &countVisitor{} })
		done <- st
	}()
	for deadline := time.Now().Add(5 * time.Second); e.read.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing read")
		}
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case st := <-done:
		if !st.Interrupted || st.Records != 2 || len(st.Failed) != 0 {
			t.Fatalf("stats %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the report did not stop")
	}
}

func TestFailedInputsAreNamed(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.log")
	gone := filepath.Join(dir, "gone.log")
	for _, p := range []string{good, gone} {
		if err := os.WriteFile(p, []byte("version srcaddr\n2 10.0.0.1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ins := listInputs(t, good, gone)
	os.Remove(gone) // between listing and reading
	_, st := readAll(t, ReadConfig{}, connFields, ins...)
	if st.Inputs != 1 || len(st.Failed) != 1 || !strings.HasPrefix(st.Failed[0], gone+": ") {
		t.Fatalf("stats %+v", st)
	}
}
