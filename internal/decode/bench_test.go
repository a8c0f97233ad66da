package decode

import (
	"path/filepath"
	"testing"
)

func benchmarkFrames(b *testing.B, frames []corpusFrame, resolve bool) {
	if len(frames) == 0 {
		b.Fatal("no frames")
	}
	fragments := NewFragments(4096)
	var p Packet
	var recorded, n int
	for b.Loop() {
		fr := &frames[n%len(frames)]
		n++
		if Decode(fr.link, fr.data, &p) == nil {
			recorded++
			if resolve {
				fragments.Resolve(&p)
			}
		}
	}
	sinkPacket = p
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
	if recorded == 0 {
		b.Fatal("no frame decoded")
	}
}

// BenchmarkDecode decodes corpus frames held in memory, one frame per
// iteration, cycling through the set.
func BenchmarkDecode(b *testing.B) {
	b.Run("ethernet-ipv4-tcp", func(b *testing.B) {
		benchmarkFrames(b, loadCorpusFrames(b, "zeek-echo-connections.pcap", 20000), false)
	})
	b.Run("vlan-ipv4-tcp", func(b *testing.B) {
		benchmarkFrames(b, loadCorpusFrames(b, "zeek-vlan-qinqinq.pcap", 0), false)
	})
	b.Run("pppoe-qinq", func(b *testing.B) {
		benchmarkFrames(b, loadCorpusFrames(b, "zeek-pppoe-over-qinq.pcap", 0), false)
	})
	b.Run("ipv6", func(b *testing.B) {
		var frames []corpusFrame
		for _, name := range []string{"zeek-icmp6.pcap", "zeek-ipv6-fragmented-dns.pcap", "libpcap-ipv6_ext_headers.pcap", "tcpdump-babel.pcap", "zeek-ech.pcap"} {
			frames = append(frames, loadCorpusFrames(b, name, 0)...)
		}
		benchmarkFrames(b, frames, true)
	})
	b.Run("corpus-mix", func(b *testing.B) {
		var frames []corpusFrame
		for _, capture := range corpusCaptures(b) {
			frames = append(frames, loadCorpusFrames(b, filepath.Base(capture), 2000)...)
		}
		benchmarkFrames(b, frames, true)
	})
}
