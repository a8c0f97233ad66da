package flow

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	headerDefault = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
	headerNAT     = "instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr"
	lineNAT       = "i-01234567890123456 eni-1111aaaa2222bbbb3 10.0.1.5 203.0.113.5 10.0.1.5 203.0.113.5"
	lineNoData    = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
)

// event is what Next returned: a record line re-rendered in the reader's
// format, or an error.
type event struct {
	line int64
	text string // Append of the record, or the error message
	err  bool
}

func readEvents(t *testing.T, r io.Reader, opts ReaderOptions) []event {
	t.Helper()
	rd := NewReader(r, opts)
	var out []event
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("reader does not end")
		}
		var rec Record
		err := rd.Next(&rec)
		switch {
		case err == io.EOF:
			if err := rd.Next(&rec); err != io.EOF {
				t.Errorf("Next after io.EOF: %v", err)
			}
			return out
		case err != nil:
			var le *LineError
			if !errors.As(err, &le) {
				out = append(out, event{rd.Line(), "FATAL " + err.Error(), true})
				if again := rd.Next(&rec); again != err {
					t.Errorf("Next after a fatal error: %v", again)
				}
				return out
			}
			out = append(out, event{le.Line, err.Error(), true})
		default:
			out = append(out, event{rd.Line(), string(rd.Format().Append(nil, &rec)), false})
		}
	}
}

func checkEvents(t *testing.T, got []event, want []event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		ok := g.line == w.line && g.err == w.err
		if w.err {
			ok = ok && strings.Contains(g.text, w.text)
		} else {
			ok = ok && g.text == w.text
		}
		if !ok {
			t.Errorf("event %d = %+v\nwant %+v\nall: %+v", i, g, w, got)
		}
	}
}

func TestReaderHeadersAndBlocks(t *testing.T) {
	in := "\xef\xbb\xbf" + headerDefault + "\r\n" +
		lineDefault + "\r\n" +
		"\r\n" +
		"   \t \n" +
		"2 123456789010 eni-1 172.31.16.139 172.31.16.21 70000 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n" +
		lineNoData + "\n" +
		"\n" +
		headerNAT + "\n" +
		lineNAT + "\n" +
		"${version} ${srcaddr} ${tcp-flags}\n" +
		"3 10.0.0.1 18\n" +
		"3 10.0.0.1 18 extra\n" +
		"${version} ${version}\n" +
		"3 10.0.0.2   2" // no final line end; the previous format still applies
	want := []event{
		{2, lineDefault, false},
		{5, `line 5: field srcport: invalid value "70000": out of range 0…65535`, true},
		{6, lineNoData, false},
		{9, lineNAT, false},
		{11, "3 10.0.0.1 18", false},
		{12, "line 12: expected 3 fields, found 4", true},
		{13, "line 13: parse header:", true},
		{14, "3 10.0.0.2 2", false},
	}
	checkEvents(t, readEvents(t, strings.NewReader(in), ReaderOptions{}), want)
	// The same, one byte per read, and gzip-compressed.
	checkEvents(t, readEvents(t, iotest.OneByteReader(strings.NewReader(in)), ReaderOptions{}), want)
	checkEvents(t, readEvents(t, bytes.NewReader(gzipped(t, []byte(in))), ReaderOptions{}), want)
	checkEvents(t, readEvents(t, iotest.HalfReader(bytes.NewReader(gzipped(t, []byte(in)))), ReaderOptions{}), want)
}

func TestReaderLineErrorField(t *testing.T) {
	rd := NewReader(strings.NewReader("2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 MAYBE OK\n"+lineDefault), ReaderOptions{})
	var r Record
	err := rd.Next(&r)
	var le *LineError
	var fe *FieldError
	if !errors.As(err, &le) || le.Line != 1 || le.Field != "action" || !errors.As(err, &fe) || fe.Value != "MAYBE" {
		t.Fatalf("Next = %v", err)
	}
	if err := rd.Next(&r); err != nil || r.SrcPort != 20641 || rd.Line() != 2 {
		t.Fatalf("Next after the error = %v, %+v", err, r)
	}
}

func TestReaderFormats(t *testing.T) {
	nat := mustParse(t, "${instance-id} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr}")
	// Headerless input needs the format, or the default one by count.
	in := lineDefault + "\n" + lineNAT + "\n"
	checkEvents(t, readEvents(t, strings.NewReader(in), ReaderOptions{}), []event{
		{1, lineDefault, false},
		{2, "line 2: no header line or format for this record: give the log format (--format); the line has 6 fields, the default format 14", true},
	})
	checkEvents(t, readEvents(t, strings.NewReader(in), ReaderOptions{Format: nat}), []event{
		{1, "line 1: expected 6 fields, found 14", true},
		{2, lineNAT, false},
	})
	// A header overrides the given format.
	checkEvents(t, readEvents(t, strings.NewReader(lineNAT+"\n"+headerDefault+"\n"+lineDefault), ReaderOptions{Format: nat}), []event{
		{1, lineNAT, false},
		{3, lineDefault, false},
	})
	rd := NewReader(strings.NewReader(""), ReaderOptions{})
	if !rd.Format().IsDefault() {
		t.Error("Format() without header or option is not the default format")
	}
	if err := rd.Next(&Record{}); err != io.EOF {
		t.Errorf("empty input: %v", err)
	}
	rd = NewReader(strings.NewReader(headerNAT+"\n"), ReaderOptions{})
	if err := rd.Next(&Record{}); err != io.EOF || rd.Format().Header() != headerNAT {
		t.Errorf("header only: %v, format %q", err, rd.Format().Header())
	}
}

func TestReaderLongLines(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+1)
	atLimit := strings.Repeat("y", MaxLineBytes)
	in := lineDefault + "\n" + long + "\n" + lineNoData + "\n" + atLimit + "\n" + long + long
	want := []event{
		{1, lineDefault, false},
		{2, "line 2: longer than 1048576 bytes: line too long", true},
		{3, lineNoData, false},
		{4, "line 4: no header line or format", true},
		{5, "line too long", true},
	}
	checkEvents(t, readEvents(t, strings.NewReader(in), ReaderOptions{}), want)
	checkEvents(t, readEvents(t, bytes.NewReader(gzipped(t, []byte(in))), ReaderOptions{}), want)
	rd := NewReader(strings.NewReader(long), ReaderOptions{})
	if err := rd.Next(&Record{}); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("Next = %v", err)
	}
}

func TestReaderConcatenatedGzip(t *testing.T) {
	// Two S3 objects cat'ed together: each gzip member has its header.
	a := gzipped(t, []byte(headerDefault+"\n"+lineDefault+"\n"))
	b := gzipped(t, []byte(headerNAT+"\n"+lineNAT+"\n"))
	checkEvents(t, readEvents(t, bytes.NewReader(append(a, b...)), ReaderOptions{}), []event{
		{2, lineDefault, false},
		{4, lineNAT, false},
	})
}

func TestReaderBrokenInput(t *testing.T) {
	z := gzipped(t, []byte(headerDefault+"\n"+strings.Repeat(lineDefault+"\n", 2000)))
	// Truncated gzip: the records before the cut, then a fatal error.
	got := readEvents(t, bytes.NewReader(z[:len(z)/2]), ReaderOptions{})
	last := got[len(got)-1]
	if !strings.HasPrefix(last.text, "FATAL read flow log after line") || !strings.Contains(last.text, "unexpected EOF") {
		t.Errorf("last event %+v", last)
	}
	for _, e := range got[:len(got)-1] {
		if e.err || e.text != lineDefault {
			t.Fatalf("event %+v", e)
		}
	}
	if len(got) < 10 {
		t.Errorf("only %d records before the cut", len(got)-1)
	}
	// Corrupt gzip header.
	got = readEvents(t, bytes.NewReader([]byte{0x1f, 0x8b, 0, 0, 0}), ReaderOptions{})
	if len(got) != 1 || !strings.HasPrefix(got[0].text, "FATAL read gzip header:") {
		t.Errorf("corrupt header: %+v", got)
	}
	// A source that fails.
	boom := errors.New("boom")
	got = readEvents(t, io.MultiReader(strings.NewReader(lineDefault+"\n"+lineDefault+"\n2 1"), iotest.ErrReader(boom)), ReaderOptions{})
	checkEvents(t, got, []event{{1, lineDefault, false}, {2, lineDefault, false}, {2, "FATAL read flow log after line 2: boom", true}})
	got = readEvents(t, iotest.ErrReader(boom), ReaderOptions{})
	if len(got) != 1 || !strings.Contains(got[0].text, "boom") {
		t.Errorf("failing source: %+v", got)
	}
	// gzip magic, then the source fails.
	got = readEvents(t, io.MultiReader(bytes.NewReader(z[:2]), iotest.ErrReader(boom)), ReaderOptions{})
	if len(got) != 1 || !strings.Contains(got[0].text, "boom") {
		t.Errorf("failing gzip source: %+v", got)
	}
	// Arbitrary binary data is lines of garbage, not a crash.
	got = readEvents(t, bytes.NewReader([]byte("\x00\x01\x02\n\xff\xfe\n")), ReaderOptions{})
	if len(got) != 2 || !got[0].err || !got[1].err {
		t.Errorf("binary: %+v", got)
	}
}

const cwDoc = `{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/vpc/flowlogs","logStream":"eni-1235b8ca123456789-all","subscriptionFilters":["f"],"logEvents":[` +
	`{"id":"1","timestamp":1418530010000,"message":"` + lineDefault + `"},` +
	`{"id":"2","timestamp":1431280876000,"message":"` + lineNoData + `"}]}`

func TestReaderCloudWatch(t *testing.T) {
	control := `{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}`
	pretty := "{\n  \"messageType\": \"DATA_MESSAGE\",\n  \"logEvents\": [\n    {\"message\": \"" + lineDefault + "\"},\n" +
		"    {\"message\": \"2 123456789010 eni-1 - - - - - - - 1 2 - NOPE\"},\n    {\"message\": \"a {brace} \\\" and quote\"}\n  ]\n}\n"
	in := cwDoc + "\n" + // line 1
		control + cwDoc + "\n" + // line 2: Firehose concatenates documents without a separator
		pretty + // lines 3-10
		`{"messageType":"DATA_MESSAGE","logEvents":[{"message":"` + lineDefault + "\n" + // line 11: unclosed
		lineNoData + "\n" + // line 12
		`{"not":"cloudwatch"}` + "\n" + // line 13
		`{"logEvents":[{"message": 5}]}` + "\n" + // line 14
		`  {"logEvents":[]}` + "\n" + // line 15
		lineDefault // line 16
	want := []event{
		{1, lineDefault, false},
		{1, lineNoData, false},
		{2, lineDefault, false},
		{2, lineNoData, false},
		{3, lineDefault, false},
		{3, `line 3: log event 1: field log-status: invalid value "NOPE"`, true},
		{3, "line 3: log event 2: no header line or format", true},
		{11, "line 11: read CloudWatch Logs document: JSON document does not end on its line", true},
		{12, lineNoData, false},
		{13, "line 13: JSON document is not a CloudWatch Logs subscription event: no logEvents", true},
		{14, "line 14: decode CloudWatch Logs document: json: cannot unmarshal number", true},
		{16, lineDefault, false},
	}
	checkEvents(t, readEvents(t, strings.NewReader(in), ReaderOptions{}), want)
	checkEvents(t, readEvents(t, iotest.OneByteReader(strings.NewReader(in)), ReaderOptions{}), want)
	checkEvents(t, readEvents(t, bytes.NewReader(gzipped(t, []byte(in))), ReaderOptions{}), want)

	// A document cut off at the end of the input.
	checkEvents(t, readEvents(t, strings.NewReader("{\n"+cwDoc[1:len(cwDoc)-3]), ReaderOptions{}), []event{
		{1, "line 1: read CloudWatch Logs document: JSON document ends before its closing brace", true},
	})
	// A document larger than MaxJSONBytes is skipped as a whole.
	big := "{\n\"logEvents\":[" + strings.Repeat(`{"message":"x"},`, MaxJSONBytes/16+10) + `{"message":"x"}]}` + "\n" + lineDefault
	checkEvents(t, readEvents(t, strings.NewReader(big), ReaderOptions{}), []event{
		{1, "line 1: read CloudWatch Logs document: line too long", true},
		{3, lineDefault, false},
	})
}

func TestReaderAllocs(t *testing.T) {
	data := []byte(headerDefault + "\n" + strings.Repeat(lineDefault+"\n", 5000))
	rd := NewReader(bytes.NewReader(data), ReaderOptions{})
	var r Record
	for i := 0; i < 10; i++ { // past the header and the first ids
		if err := rd.Next(&r); err != nil {
			t.Fatal(err)
		}
	}
	n := testing.AllocsPerRun(1000, func() { sinkErr = rd.Next(&r) })
	if sinkErr != nil || n != 0 {
		t.Errorf("Reader.Next: %v allocations per record (err %v), want 0", n, sinkErr)
	}
}
