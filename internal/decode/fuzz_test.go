package decode

import (
	"bytes"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary frames of every link type to Decode and checks
// what must hold for any input: no panic, only sentinel errors, a zero
// Packet on error, and records consistent with rules 1-6.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases() {
		f.Add(tc.link, tc.frame)
	}
	for _, capture := range corpusCaptures(f) {
		for _, fr := range loadCorpusFrames(f, filepath.Base(capture), 40) {
			f.Add(fr.link, fr.data)
		}
	}
	fragments := NewFragments(64)
	f.Fuzz(func(t *testing.T, link uint32, data []byte) {
		original := bytes.Clone(data)
		var p Packet
		err := Decode(link, data, &p)
		if !bytes.Equal(data, original) {
			t.Fatal("Decode modified its input")
		}
		var again Packet
		if err2 := Decode(link, data, &again); err2 != err || again != p {
			t.Fatalf("Decode is not deterministic: %+v %v, then %+v %v", p, err, again, err2)
		}
		if err != nil {
			switch err {
			case ErrNotIP, ErrTruncated, ErrMalformed, ErrUnsupportedLink:
			default:
				t.Fatalf("non-sentinel error %v", err)
			}
			if p != (Packet{}) {
				t.Fatalf("error %v left %+v", err, p)
			}
			return
		}
		if !p.Src.IsValid() || !p.Dst.IsValid() || p.Src.Zone() != "" {
			t.Fatalf("invalid addresses %+v", p)
		}
		if p.IPv6 {
			if !p.Src.Is6() || !p.Dst.Is6() || p.Length < 40 {
				t.Fatalf("IPv6 record %+v", p)
			}
		} else if !p.Src.Is4() || !p.Dst.Is4() || p.Length < 20 {
			t.Fatalf("IPv4 record %+v", p)
		}
		if p.Length > uint32(len(data)) && p.Length > 65535+40 {
			t.Fatalf("length %d beyond any header's reach", p.Length)
		}
		if !hasPorts(p.Protocol) || p.Fragment == FragmentLater {
			if p.SrcPort != 0 || p.DstPort != 0 {
				t.Fatalf("ports on protocol %d fragment %v: %+v", p.Protocol, p.Fragment, p)
			}
		}
		if (p.Protocol != protoTCP || p.Fragment == FragmentLater) && p.TCPFlags != 0 {
			t.Fatalf("tcp flags on protocol %d fragment %v", p.Protocol, p.Fragment)
		}
		if p.Fragment == FragmentNone && p.FragID != 0 {
			t.Fatalf("fragment id %d on an unfragmented packet", p.FragID)
		}
		if p.Fragment > FragmentLater {
			t.Fatalf("fragment %d", p.Fragment)
		}
		fragments.Resolve(&p)
		if p.Fragment == FragmentLater && p.TCPFlags != 0 {
			t.Fatal("Resolve left TCP flags on a later fragment")
		}
	})
}
