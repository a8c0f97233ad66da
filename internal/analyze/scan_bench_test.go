package analyze

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// benchLines returns n default-format lines with varied addresses and ports.
func benchLines(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = fmt.Appendf(nil, "2 123456789012 eni-0a1b2c3d4e5f67890 10.%d.%d.%d 172.31.%d.%d %d %d 6 %d %d 1700000000 1700000060 ACCEPT OK",
			i%7, i%251, i%13, i%17, i%101, 1024+i%50000, []int{443, 80, 22, 53, 5432}[i%5], 1+i%90, 40+i%150000)
	}
	return lines
}

func BenchmarkScan(b *testing.B) {
	lines := benchLines(4096)
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	for _, c := range []struct {
		name string
		need flow.FieldSet
	}{
		{"top-srcaddr-dstport-bytes", flow.FieldSet(0).With(flow.FieldSrcAddr).With(flow.FieldDstPort).With(flow.FieldBytes).With(flow.FieldLogStatus)},
		{"all", allFields()},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := NewScanner(flow.DefaultFormat(), c.need)
			var r flow.Record
			b.SetBytes(int64(size))
			c0 := cpuTime()
			for b.Loop() {
				for _, l := range lines {
					if err := s.Scan(l, &r); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/(cpuTime()-c0).Seconds()/1e6, "MB/cpu-s")
		})
	}
	b.Run("ParseRecord", func(b *testing.B) {
		var r flow.Record
		b.SetBytes(int64(size))
		c0 := cpuTime()
		for b.Loop() {
			for _, l := range lines {
				if err := flow.DefaultFormat().ParseRecord(l, &r); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(size)*float64(b.N)/(cpuTime()-c0).Seconds()/1e6, "MB/cpu-s")
	})
	b.Run("IndexByte-only", func(b *testing.B) {
		buf := bytes.Join(lines, []byte("\n"))
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			rest := buf
			for len(rest) > 0 {
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					break
				}
				rest = rest[i+1:]
			}
		}
	})
}
