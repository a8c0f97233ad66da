package pipeline

import (
	"io"
	"net/netip"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// BenchmarkStreamSinkText renders a window of default-format records, 30%
// of them IPv6 like the generated benchmark capture, to io.Discard: the
// part of `flowlog read > file` that is rendering and buffering.
func BenchmarkStreamSinkText(b *testing.B) {
	recs := make([]flow.Record, 1024)
	for i := range recs {
		r := &recs[i]
		r.Present = flow.DefaultFormat().Set()
		r.Version, r.AccountID, r.InterfaceID = 2, "123456789012", "eni-0123456789abcdef0"
		r.SrcAddr = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 17})
		r.DstAddr = netip.AddrFrom4([4]byte{198, 18, byte(i), 200})
		if i%10 < 3 {
			r.SrcAddr = netip.AddrFrom16([16]byte{0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
			r.DstAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, byte(i)})
		}
		r.SrcPort, r.DstPort, r.Protocol = uint16(32768+i), 443, 6
		r.Packets, r.Bytes = uint64(3+i%50), uint64(180+i*37)
		r.Start, r.End = 1764115200+int64(i%60), 1764115260+int64(i%60)
		r.Action, r.LogStatus = flow.ActionAccept, flow.LogStatusOK
	}
	s := NewStreamSink(io.Discard, flow.DefaultFormat(), false, true)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
