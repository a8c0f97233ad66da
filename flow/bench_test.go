package flow

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func benchRecord(b *testing.B, f *Format, line string) Record {
	var r Record
	if err := f.ParseRecord([]byte(line), &r); err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkAppendDefault(b *testing.B) {
	d := DefaultFormat()
	r := benchRecord(b, d, lineDefault)
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(lineDefault)))
	b.ReportAllocs()
	for b.Loop() {
		buf = d.Append(buf[:0], &r)
	}
	sinkBytes = buf
}

func BenchmarkAppendJSONDefault(b *testing.B) {
	d := DefaultFormat()
	r := benchRecord(b, d, lineDefault)
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(d.AppendJSON(nil, &r))))
	b.ReportAllocs()
	for b.Loop() {
		buf = d.AppendJSON(buf[:0], &r)
	}
	sinkBytes = buf
}

func BenchmarkAppendV5(b *testing.B) {
	f := mustParse(b, fmtV5Path)
	r := benchRecord(b, f, lineV5)
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(lineV5)))
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], &r)
	}
	sinkBytes = buf
}

func BenchmarkParseRecordDefault(b *testing.B) {
	d := DefaultFormat()
	line := []byte(lineDefault)
	var r Record
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.ParseRecord(line, &r); err != nil {
			b.Fatal(err)
		}
	}
	sinkRecord = r
}

func BenchmarkParseRecordDefaultIPv6(b *testing.B) {
	d := DefaultFormat()
	line := []byte(lineV6Addr)
	var r Record
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.ParseRecord(line, &r); err != nil {
			b.Fatal(err)
		}
	}
	sinkRecord = r
}

func BenchmarkParseRecordV5(b *testing.B) {
	f := mustParse(b, fmtV5Path)
	line := []byte(lineV5)
	var r Record
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.ParseRecord(line, &r); err != nil {
			b.Fatal(err)
		}
	}
	sinkRecord = r
}

// benchLog is a text object of n default-format records whose addresses,
// ports and counts vary, as a real log's do.
func benchLog(n int) []byte {
	d := DefaultFormat()
	var r Record
	if err := d.ParseRecord([]byte(lineDefault), &r); err != nil {
		panic(err)
	}
	out := []byte(headerDefault + "\n")
	for i := range n {
		r.SrcAddr = r.SrcAddr.Next()
		r.SrcPort = uint16(1024 + i%60000)
		r.Packets = uint64(i % 1000)
		r.Bytes = uint64(i * 97 % 1500000)
		out = d.Append(out, &r)
		out = append(out, '\n')
	}
	return out
}

// benchmarkReader reads data (size bytes once decompressed) whole.
func benchmarkReader(b *testing.B, data []byte, size, records int) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var r Record
	for b.Loop() {
		rd := NewReader(bytes.NewReader(data), ReaderOptions{})
		n := 0
		for {
			err := rd.Next(&r)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != records {
			b.Fatalf("%d records, want %d", n, records)
		}
	}
	sinkRecord = r
}

func BenchmarkReaderText(b *testing.B) {
	const n = 100000
	data := benchLog(n)
	benchmarkReader(b, data, len(data), n)
}

func BenchmarkReaderGzip(b *testing.B) {
	const n = 100000
	data := benchLog(n)
	benchmarkReader(b, gzipped(b, data), len(data), n)
}

func BenchmarkReaderCloudWatch(b *testing.B) {
	var sb strings.Builder
	const docs, perDoc = 100, 1000
	for range docs {
		sb.WriteString(`{"messageType":"DATA_MESSAGE","logEvents":[`)
		for i := range perDoc {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"id":"1","timestamp":1418530010000,"message":"` + lineDefault + `"}`)
		}
		sb.WriteString("]}\n")
	}
	benchmarkReader(b, []byte(sb.String()), sb.Len(), docs*perDoc)
}
