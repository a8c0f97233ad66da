package analyze

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// bigLog writes a log of many conversations whose format changes where
// objects of other flow logs were concatenated, with a few bad lines.
func bigLog(t *testing.T, blocks []string) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	var b strings.Builder
	flagsHeader := "version interface-id srcaddr dstaddr srcport dstport protocol tcp-flags packets bytes start end action log-status"
	for bi, kind := range blocks {
		switch kind {
		case "default":
			b.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
		case "flags":
			b.WriteString(flagsHeader + "\n")
		case "again":
			b.WriteString(flagsHeader + "\n") // the same header repeated
			kind = "flags"
		}
		for i := range 400 {
			port := 40000 + (bi*400+i)%3000
			host := fmt.Sprintf("10.0.%d.%d", rng.IntN(4), rng.IntN(50))
			switch {
			case i == 77:
				b.WriteString("2 this line is broken\n")
			case kind == "default":
				fmt.Fprintf(&b, "2 123456789012 eni-a %s 10.1.0.1 %d 443 6 %d %d 1700000000 1700000060 ACCEPT OK\n", host, port, 1+rng.IntN(9), 100+rng.IntN(900))
				fmt.Fprintf(&b, "2 123456789012 eni-a 10.1.0.1 %s 443 %d 6 %d %d 1700000000 1700000060 ACCEPT OK\n", host, port, 1+rng.IntN(9), 100+rng.IntN(900))
			default:
				fmt.Fprintf(&b, "3 eni-b 10.1.0.1 %s 443 %d 6 18 1 60 1700000000 1700000060 ACCEPT OK\n", host, port)
				fmt.Fprintf(&b, "3 eni-b %s 10.1.0.1 %d 443 6 %d 3 180 1700000000 1700000060 ACCEPT OK\n", host, port, []int{2, 3, 6}[rng.IntN(3)])
			}
		}
	}
	p := filepath.Join(t.TempDir(), "big.log")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestChunkedReadingAgrees reads files in pieces by several workers and
// whole by one, and wants the same reports and statistics — also when the
// format changes in the middle of the file, so that some pieces start in
// another format than they assumed.
func TestChunkedReadingAgrees(t *testing.T) {
	for _, blocks := range [][]string{
		{"flags", "again", "again", "again"},
		{"default", "flags", "default", "flags", "again"},
		{"flags", "default", "default", "default"},
	} {
		p := bigLog(t, blocks)
		in := listInputs(t, p)
		for _, piece := range []int64{4 << 10, 20 << 10, 1 << 30} {
			whole := ReadConfig{Workers: 1}
			split := ReadConfig{Workers: 4, chunkBytes: piece}
			e := newEngine(split, connFields, false)
			if cs := e.fileChunks(in[0], 4); (cs != nil) != (piece < 1<<30) {
				t.Fatalf("%v: pieces of %d bytes: %d chunks", blocks, piece, len(cs))
			}
			reports := map[string]func(rc ReadConfig, out *bytes.Buffer) (Stats, error){
				"connections": func(rc ReadConfig, out *bytes.Buffer) (Stats, error) {
					return Connections(context.Background(), in, rc, ConnOptions{Protocol: -1}, Output{W: out, Mode: ModeJSON})
				},
				"top": func(rc ReadConfig, out *bytes.Buffer) (Stats, error) {
					return Top(context.Background(), in, rc, TopOptions{By: []flow.FieldID{flow.FieldInterfaceID, flow.FieldSrcAddr, flow.FieldTCPFlags}}, Output{W: out, Mode: ModeJSON})
				},
				"summary": func(rc ReadConfig, out *bytes.Buffer) (Stats, error) {
					return Summarize(context.Background(), in, rc, Output{W: out, Mode: ModeJSON})
				},
			}
			for name, run := range reports {
				var a, b bytes.Buffer
				sa, err := run(whole, &a)
				if err != nil {
					t.Fatal(err)
				}
				sb, err := run(split, &b)
				if err != nil {
					t.Fatal(err)
				}
				if a.String() != b.String() {
					t.Fatalf("%v, pieces of %d bytes, %s:\nwhole:\n%s\nin pieces:\n%s", blocks, piece, name, a.String(), b.String())
				}
				if sa.Records != sb.Records || sa.Matched != sb.Matched || sa.SkippedLines != sb.SkippedLines || sa.Inputs != sb.Inputs || sa.Bytes != sb.Bytes || len(sb.Failed) != 0 {
					t.Fatalf("%v, pieces of %d bytes, %s: stats\nwhole %+v\npieces %+v", blocks, piece, name, sa, sb)
				}
				if sa.SkippedLines != int64(len(blocks)) {
					t.Fatalf("skipped %d lines, want %d", sa.SkippedLines, len(blocks))
				}
			}
		}
	}
}

func TestChunkedFilterKeepsOrder(t *testing.T) {
	p := bigLog(t, []string{"flags", "default", "again"})
	var a, b bytes.Buffer
	if _, err := Filter(context.Background(), listInputs(t, p), ReadConfig{Workers: 1}, Output{W: &a}); err != nil {
		t.Fatal(err)
	}
	if _, err := Filter(context.Background(), listInputs(t, p), ReadConfig{Workers: 4, chunkBytes: 4 << 10}, Output{W: &b}); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() || strings.Count(a.String(), "\n") != 3*(800-2)+3 {
		t.Fatalf("filter output differs or has %d lines", strings.Count(a.String(), "\n"))
	}
}
