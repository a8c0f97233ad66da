package parquet

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// allFieldsFormat is every known field in spec order, the widest format AWS
// writes.
func allFieldsFormat(t testing.TB) *flow.Format {
	t.Helper()
	var b strings.Builder
	for i := range flow.Fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("${" + flow.Fields[i].Name + "}")
	}
	f, err := flow.ParseFormat(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// randomValue returns a text value of the field named name, "-" now and
// then, from rng: every kind of value the field takes, edge values included.
func randomValue(rng *rand.Rand, name string) string {
	if rng.IntN(8) == 0 {
		return "-"
	}
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	num := func(max uint64) string { return strconv.FormatUint(rng.Uint64N(max+1), 10) }
	switch name {
	case "version":
		return pick("2", "3", "5", "8")
	case "account-id":
		return pick("123456789012", "000000000000", "unknown")
	case "interface-id":
		return pick("eni-0123456789abcdef0", "eni-1235b8ca", "eni-"+strconv.FormatUint(rng.Uint64(), 16))
	case "srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr":
		if rng.IntN(3) == 0 {
			return pick("2001:db8::1", "fe80::1ff:fe23:4567:890a", "::", "2600:1f18:abcd:1234::"+strconv.FormatUint(rng.Uint64N(65536), 16))
		}
		return strconv.Itoa(rng.IntN(256)) + "." + strconv.Itoa(rng.IntN(256)) + "." + strconv.Itoa(rng.IntN(256)) + "." + strconv.Itoa(rng.IntN(256))
	case "srcport", "dstport":
		return pick("0", "22", "443", "65535", num(65535))
	case "protocol":
		return pick("1", "6", "17", "58", "255", num(255))
	case "packets", "bytes":
		return pick("0", "1", "18446744073709551615"[:19], num(1<<40))
	case "start", "end":
		return pick("0", "1431280876", "9223372036854775807", strconv.FormatInt(1700000000+rng.Int64N(1e6), 10))
	case "action":
		return pick("ACCEPT", "REJECT")
	case "log-status":
		return pick("OK", "NODATA", "SKIPDATA")
	case "tcp-flags":
		return pick("0", "1", "2", "3", "18", "19", "255")
	case "type":
		return pick("IPv4", "IPv6", "EFA")
	case "flow-direction":
		return pick("ingress", "egress")
	case "traffic-path":
		return pick("1", "2", "8", num(255))
	case "region":
		return pick("us-east-1", "eu-west-3", "local")
	}
	// Other strings: ids, names, ARNs, now and then non-ASCII UTF-8.
	return pick(name+"-"+strconv.FormatUint(rng.Uint64N(1000), 10),
		"arn:aws:ecs:us-east-1:123456789012:task/"+strconv.FormatUint(rng.Uint64(), 36),
		"żółw-ключ-"+strconv.Itoa(rng.IntN(10)), "x")
}

// randomRecords returns n records of format f parsed from random lines.
func randomRecords(t testing.TB, seed uint64, f *flow.Format, n int) []flow.Record {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	names := strings.Fields(f.Header())
	recs := make([]flow.Record, n)
	var line []byte
	for i := range recs {
		line = line[:0]
		for j, name := range names {
			if j > 0 {
				line = append(line, ' ')
			}
			line = append(line, randomValue(rng, name)...)
		}
		if err := f.ParseRecord(line, &recs[i]); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
	}
	return recs
}

// corpusDir finds ../shared/corpora beside the module root.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "corpora")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

// logSet is the records of one format read from a flow log.
type logSet struct {
	name   string
	format *flow.Format
	recs   []flow.Record
}

// corpusLogs reads every AWS sample and public flow log of the corpora into
// sets of one format each (a file whose header changes gives several).
func corpusLogs(t testing.TB) []logSet {
	t.Helper()
	var files []string
	for _, pattern := range []string{"aws-samples/*.log", "aws-logs/*.log", "aws-logs/*.json"} {
		m, _ := filepath.Glob(filepath.Join(corpusDir(t), pattern))
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found %d corpus logs, want the corpora's flow logs", len(files))
	}
	var sets []logSet
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rd := flow.NewReader(bytes.NewReader(data), flow.ReaderOptions{})
		for {
			var r flow.Record
			err := rd.Next(&r)
			if errors.Is(err, io.EOF) {
				break
			}
			var le *flow.LineError
			if errors.As(err, &le) {
				continue // lines the corpora hold broken on purpose
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			f := rd.Format()
			if n := len(sets); n == 0 || sets[n-1].name != filepath.Base(file) || sets[n-1].format.Header() != f.Header() {
				sets = append(sets, logSet{name: filepath.Base(file), format: f})
			}
			sets[len(sets)-1].recs = append(sets[len(sets)-1].recs, r)
		}
	}
	return sets
}

// writeFile writes recs of format f as a Parquet file.
func writeFile(t testing.TB, f *flow.Format, recs []flow.Record, cfg WriterConfig) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Rows() != int64(len(recs)) {
		t.Fatalf("Rows() = %d, wrote %d", w.Rows(), len(recs))
	}
	return buf.Bytes()
}

// readAll reads every record of a Parquet file with Reader.
func readAll(t testing.TB, data []byte) (*flow.Format, []flow.Record) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out []flow.Record
	buf := make([]flow.Record, 100)
	for {
		n, err := rd.Read(buf)
		for i := range n {
			r := buf[i]
			r.Extra = append([]string(nil), r.Extra...)
			out = append(out, r)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if rd.NumRows() != int64(len(out)) {
		t.Fatalf("NumRows() = %d, read %d", rd.NumRows(), len(out))
	}
	return rd.Format(), out
}

// lines renders recs in format f, one text line each.
func lines(f *flow.Format, recs []flow.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = string(f.Append(nil, &recs[i]))
	}
	return out
}
