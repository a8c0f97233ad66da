package pcapfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReadCorpus reads the largest corpus captures from memory, plain
// and gzipped, touching every packet's first byte as a decoder would.
func BenchmarkReadCorpus(b *testing.B) {
	for _, name := range []string{"ndpi-mix-a.pcap", "zeek-echo-connections.pcap", "ndpi-alexa-app.pcapng"} {
		raw, err := os.ReadFile(filepath.Join(corpusDir(b), name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) { benchmarkRead(b, raw, len(raw)) })
		b.Run(name+".gz", func(b *testing.B) { benchmarkRead(b, gzipped(b, raw), len(raw)) })
	}
}

var sinkByte byte

func benchmarkRead(b *testing.B, input []byte, decompressedLen int) {
	b.ReportAllocs()
	packets := 0
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(input))
		if err != nil {
			b.Fatal(err)
		}
		var p Packet
		for {
			if err := r.Next(&p); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			if len(p.Data) > 0 {
				sinkByte ^= p.Data[0]
			}
			packets++
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(packets)/sec, "packets/s")
	b.ReportMetric(float64(decompressedLen)*float64(b.N)/sec/1e6, "MB/s")
	b.ReportMetric(sec*1e9/float64(packets), "ns/packet")
}
