package main

import (
	"compress/gzip"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/bench/internal/gen"
)

// TestMain lets the test binary act as the launcher runJob starts.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == launchFlag {
		os.Exit(launch(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// The testdata files are what each tool wrote (read back through nfdump
// and ra for the binary formats) for the generated capture of 20 000
// packets and 200 conversations, recorded on 2026-11-26 with the Debian
// packages named in RESULTS.md. Every reader must find the generator's
// counts in them.
func TestReadersAgreeWithGenerator(t *testing.T) {
	st, err := gen.Generate(genSpec{Packets: 20000, Flows: 200}.config(), func(int64, []byte, uint32) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys != 395 {
		t.Fatalf("generator: %d keys, the testdata was recorded with 395 (generator version changed? re-record testdata)", st.Keys)
	}
	cases := []struct {
		file       string
		read       func(io.Reader) (Counts, error)
		frameBytes bool
		records    uint64
	}{
		{"flowlog.txt", readFlowlog, false, 395},
		{"softflowd-nfdump.csv.gz", readNfdumpCSV, false, 395},
		{"nfpcapd-nfdump.csv.gz", readNfdumpCSV, false, 3474}, // every ICMP and DNS packet its own record
		{"pmacctd.csv", func(r io.Reader) (Counts, error) {
			var c Counts
			ks := newKeySet()
			_, err := readPmacctCSV(r, &c, ks)
			ks.fill(&c)
			return c, err
		}, false, 397},
		{"argus-ra.csv", readArgusCSV, true, 435},
		{"tshark-conversations.txt", readTsharkConv, true, 200},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var r io.Reader = f
			if strings.HasSuffix(tc.file, ".gz") {
				if r, err = gzip.NewReader(f); err != nil {
					t.Fatal(err)
				}
			}
			c, err := tc.read(r)
			if err != nil {
				t.Fatal(err)
			}
			wantBytes := st.IPBytes
			if tc.frameBytes {
				wantBytes = st.WireBytes
			}
			if c.Packets != st.Packets || c.Keys != st.Keys || c.Records != tc.records {
				t.Errorf("got %d packets, %d keys, %d records; want %d, %d, %d", c.Packets, c.Keys, c.Records, st.Packets, st.Keys, tc.records)
			}
			switch {
			case c.BytesRounded:
				// tshark prints "14 kB": the sum of rounded values stays
				// within 1% here.
				if d := float64(c.Bytes)/float64(wantBytes) - 1; d > 0.01 || d < -0.01 {
					t.Errorf("bytes %d, want about %d", c.Bytes, wantBytes)
				}
			case c.Bytes != wantBytes:
				t.Errorf("bytes %d, want %d", c.Bytes, wantBytes)
			}
			if len(c.Unknown) > 0 {
				t.Errorf("unknown protocols %v", c.Unknown)
			}
		})
	}
}

func TestReadFlowlogCountsNoDataApart(t *testing.T) {
	in := "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n" +
		"2 000000000000 eni-1 10.0.0.1 10.0.0.2 1234 80 6 3 180 1200 1260 ACCEPT OK\n" +
		"2 000000000000 eni-1 10.0.0.2 10.0.0.1 80 1234 6 2 120 1200 1260 ACCEPT OK\n" +
		"2 000000000000 eni-1 10.0.0.2 10.0.0.1 0 0 1 1 84 1800 1800 ACCEPT OK\n" +
		"2 000000000000 eni-1 - - - - - - - 2400 3000 - NODATA\n" +
		"2 000000000000 eni-1 - - - - - - - 3000 3600 - SKIPDATA\n"
	c, err := readFlowlog(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Records: 3, Packets: 6, Bytes: 384, Keys: 3, NoData: 1, SkipData: 1, Windows: 2}
	if c.Records != want.Records || c.Packets != want.Packets || c.Bytes != want.Bytes || c.Keys != want.Keys ||
		c.NoData != want.NoData || c.SkipData != want.SkipData || c.Windows != want.Windows {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if _, err := readFlowlog(strings.NewReader("version srcaddr\n2 10.0.0.1\n")); err == nil {
		t.Error("a header without dstaddr, packets, … was accepted")
	}
}

// TestTruthFromCorpus checks the tsv truth on the corpus captures the
// benchmark uses, against the numbers all six tools agreed on (flowlog,
// softflowd, nfpcapd, pmacctd, argus and tshark, in the run that recorded
// RESULTS.md).
func TestTruthFromCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "corpora", "pcap")
	cases := []struct {
		name  string
		truth Truth
	}{
		{"zeek-echo-connections.pcap", Truth{Packets: 82582, IPBytes: 4356214, FrameBytes: 5512362, Keys: 1000, Records: 1000}},
		{"gopacket-cip.pcap", Truth{Packets: 26068, IPBytes: 2604042, FrameBytes: 2975574, Keys: 3171, Records: 3171}},
		// Timestamps over 23 years: records per window, and NODATA for
		// every empty window in between.
		{"ndpi-mix-a.pcap", Truth{Packets: 20484, IPBytes: 7235942, FrameBytes: 7539919, Keys: 1641, Records: 1732, NoData: 1238749}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tc.name+".packets.tsv"))
			if err != nil {
				t.Fatalf("the corpus is part of the checkout's surroundings (../shared): %v", err)
			}
			defer f.Close()
			got, err := truthFromTSV(f)
			if err != nil {
				t.Fatal(err)
			}
			w := tc.truth
			if got.Packets != w.Packets || got.IPBytes != w.IPBytes || got.FrameBytes != w.FrameBytes ||
				got.Keys != w.Keys || got.Records != w.Records || got.NoData != w.NoData {
				t.Errorf("got %+v\nwant %+v", got, w)
			}
		})
	}
	names, err := largestCorpus(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "zeek-echo-connections.pcap gopacket-cip.pcap ndpi-mix-a.pcap" {
		t.Errorf("largest captures %v", names)
	}
}

// TestLaunchAccountsForOrphans runs a real job whose child outlives it:
// the launcher must wait for it (wall time) and count its CPU time.
func TestLaunchAccountsForOrphans(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "job.sh")
	// The background loop burns CPU for about 0.3 s after the script exits.
	body := "#!/usr/bin/env bash\n( n=0; while ((n < 300000)); do n=$((n+1)); done; echo done >\"$2/orphan\" ) &\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := runJob(t.Context(), script, []string{"in", dir}, os.Environ(), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "orphan")); err != nil {
		t.Fatalf("the job ended before its orphan: %v", err)
	}
	if u.CPU() < 50*time.Millisecond {
		t.Errorf("CPU %v: the orphan's time was not counted", u.CPU())
	}
	if u.Wall < u.CPU()/2 || u.MaxRSS < 1<<20 {
		t.Errorf("implausible usage %+v", u)
	}

	// A failing job is an error, with its usage still measured.
	if err := os.WriteFile(script, []byte("#!/usr/bin/env bash\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := runJob(t.Context(), script, nil, os.Environ(), io.Discard, io.Discard); err == nil {
		t.Error("exit 3 was not an error")
	}
}

// testRecord is a record as two runs would leave it: flowlog and two peers
// on two inputs.
func testRecord(flowlogCPU time.Duration, softflowdCPU time.Duration) Record {
	usage := func(wall, cpu time.Duration, rss int64) Usage {
		return Usage{Wall: wall, User: cpu * 3 / 4, Sys: cpu / 4, MaxRSS: rss, PeakPrivate: rss / 2, Samples: 5}
	}
	truth := Truth{Packets: 10_000_000, IPBytes: 5e9, FrameBytes: 5.14e9, Keys: 1_905_588, Records: 1_905_588}
	exact := &Counts{Records: truth.Records, Packets: truth.Packets, Bytes: truth.IPBytes, Keys: truth.Keys}
	rec := Record{
		Finished: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
		Machine:  Machine{CPU: "Test CPU", Cores: 2, MemGiB: 23.4},
		Runs:     3, LoadBefore: "6.50 6.00 5.00", LoadAfter: "6.00 6.00 5.00", Command: "bench/run",
		Tools: []ToolInfo{{Name: "flowlog", Bytes: "IP", Directions: "uni"}, {Name: "softflowd", Bytes: "IP", Directions: "uni"},
			{Name: "argus", Bytes: "frame", Directions: "bi"}},
	}
	for _, name := range []string{"gen-10M-1M", "gen-1M-10k"} {
		ir := InputResult{Input: Input{Name: name, Source: "generated: …", Truth: truth}}
		ir.Tools = []ToolResult{
			{Tool: "flowlog", Counts: exact, Runs: []Usage{
				usage(2*time.Second, flowlogCPU, 300<<20), usage(3*time.Second, flowlogCPU, 300<<20), usage(4*time.Second, flowlogCPU+time.Second, 300<<20)}},
			{Tool: "softflowd", Counts: exact, Runs: []Usage{
				usage(9*time.Second, softflowdCPU, 200<<20), usage(10*time.Second, softflowdCPU, 200<<20), usage(11*time.Second, softflowdCPU, 200<<20)}},
			{Tool: "argus", Counts: &Counts{Records: 1_080_852, Packets: truth.Packets, Bytes: truth.FrameBytes, Keys: truth.Keys},
				Runs: []Usage{usage(20*time.Second, 14*time.Second, 2<<30)}},
		}
		rec.Inputs = append(rec.Inputs, ir)
	}
	return rec
}

func TestReportAndChart(t *testing.T) {
	rec := testRecord(2*time.Second, 8*time.Second)
	md, err := report(rec, options{chart: "bench/peers/results/throughput.svg", results: filepath.Join(t.TempDir(), "none.md")})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| gen-10M-1M | 3.00 s / 2.00 s | 3.3× / 4.0× | 6.7× / 7.0× |", // ratios: peer median / flowlog median
		"| ≥ 3× the fastest peer (wall) | gen-10M-1M | 3.3× against softflowd | met |",
		"| peak RSS ≤ the leanest peer | gen-10M-1M | flowlog 300 MiB, leanest softflowd 200 MiB | **missed** |",
		"| flowlog agrees with the truth exactly | gen-10M-1M | packets, bytes, flows, records, NODATA all equal | met |",
		"**Load**: the 1-minute load average was",
		"![packets per second per tool and input](peers/results/throughput.svg)",
		readPathBegin, readPathEnd,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Count(md, "≥ 3× the fastest peer (wall)") != 1 {
		t.Error("the 3× target must be checked on the large generated capture only")
	}

	// A flowlog that disagrees with the truth is reported precisely.
	bad := testRecord(2*time.Second, 8*time.Second)
	c := *bad.Inputs[0].Tools[0].Counts
	c.Packets--
	bad.Inputs[0].Tools[0].Counts = &c
	md, err = report(bad, options{chart: "x.svg"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "**MISMATCH** on gen-10M-1M: packets 9999999, truth 10000000 (-1, -0.00%)") {
		t.Error("report does not state the mismatch precisely")
	}

	svg := chartSVG(rec)
	dec := xml.NewDecoder(strings.NewReader(svg))
	rects := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// Background + 3 legend swatches + 2 inputs × 3 tools × 2 panels.
	if rects != 1+3+12 {
		t.Errorf("chart has %d rects, want %d", rects, 1+3+12)
	}
}

func TestReadPathReportIsKept(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "RESULTS.md")
	standalone := "# Read-path benchmark results\n\n## Machine\n\n```\n# not a heading\n```\n"
	if err := os.WriteFile(results, []byte(standalone), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readPathReport(options{results: results})
	if err != nil {
		t.Fatal(err)
	}
	if want := "## Read-path benchmark results\n\n### Machine\n\n```\n# not a heading\n```\n"; got != want {
		t.Errorf("standalone report demoted to %q, want %q", got, want)
	}
	// Once inside the combined report it is carried over as it is.
	md, err := report(testRecord(time.Second, 4*time.Second), options{results: results, chart: "c.svg"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(results, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := readPathReport(options{results: results})
	if err != nil {
		t.Fatal(err)
	}
	if again != strings.TrimSpace(got) {
		t.Errorf("read-path section changed when carried over:\n%q\n%q", again, got)
	}
}

func TestCompareWarnsOnRegression(t *testing.T) {
	base := testRecord(2*time.Second, 8*time.Second)
	for _, tc := range []struct {
		name          string
		flowlog, peer time.Duration
		warn          string
	}{
		{"same", 2 * time.Second, 8 * time.Second, ""},
		{"slightly slower", 2200 * time.Millisecond, 8 * time.Second, ""},
		{"40% less throughput", 3400 * time.Millisecond, 13 * time.Second, "WARNING: flowlog throughput on gen-10M-1M fell 41%"},
		{"advantage over softflowd lost", 2 * time.Second, 4 * time.Second, "WARNING: flowlog's CPU advantage over softflowd on gen-10M-1M fell from 4.0× to 2.0× (50%)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := compare(testRecord(tc.flowlog, tc.peer), base, 0.30)
			if tc.warn == "" && strings.Contains(out, "WARNING") {
				t.Errorf("unexpected warning:\n%s", out)
			}
			if tc.warn != "" && !strings.Contains(out, tc.warn) {
				t.Errorf("want %q in:\n%s", tc.warn, out)
			}
		})
	}
	other := testRecord(2*time.Second, 8*time.Second)
	other.Machine.CPU = "Another CPU"
	if out := compare(other, base, 0.30); !strings.Contains(out, "no comparable baseline") {
		t.Errorf("another machine kind was compared:\n%s", out)
	}
}

func TestPmacctCacheEntries(t *testing.T) {
	for keys, want := range map[uint64]int{100: 16411, 1_905_588: 238201} {
		if got := pmacctCacheEntries(keys); got != want {
			t.Errorf("pmacctCacheEntries(%d) = %d, want %d", keys, got, want)
		}
	}
}

func TestMemoryPerFlow(t *testing.T) {
	input := func(name string, keys uint64, flowlogRSS, softflowdRSS int64) InputResult {
		run := func(rss int64) []Usage {
			return []Usage{{Wall: time.Second, MaxRSS: rss, PeakPrivate: rss / 2, Samples: 5}}
		}
		return InputResult{Input: Input{Name: name, Source: "generated: …", Truth: Truth{Packets: 1_000_000, Keys: keys}},
			Tools: []ToolResult{{Tool: "flowlog", Runs: run(flowlogRSS)}, {Tool: "softflowd", Runs: run(softflowdRSS)}}}
	}
	rec := Record{Inputs: []InputResult{
		input("gen-1M-1M", 1_010_000, 130<<20, 290<<20),
		input("gen-1M-10k", 10_000, 30<<20, 10<<20),
		{Input: Input{Name: "corpus", Source: "corpus: x", Truth: Truth{Packets: 1_000_000, Keys: 5}}},
	}}
	var b strings.Builder
	writeMemoryPerFlow(&b, rec)
	for _, want := range []string{
		// (130-30) MiB over 1 M added flows; private memory is half of it.
		"| flowlog | gen-1M-10k → gen-1M-1M | 30.0 MiB | 130 MiB | 105 B | 52 B |",
		"| softflowd | gen-1M-10k → gen-1M-1M | 10.0 MiB | 290 MiB | 294 B | 147 B |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("memory section lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "corpus") {
		t.Error("corpus inputs are not generated pairs")
	}

	b.Reset()
	writeMemoryTargets(&b, rec)
	for _, want := range []string{
		"| peak RSS per flow ≤ the leanest peer's | gen-1M-10k → gen-1M-1M | flowlog 105 B, leanest softflowd 294 B | met |",
		"| ≤ 128 B per flow (design.md; peak RSS) | gen-1M-10k → gen-1M-1M | flowlog 105 B | met |",
		"| private memory per flow ≤ the leanest peer's | gen-1M-10k → gen-1M-1M | flowlog 52 B, leanest softflowd 147 B | met |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("memory targets lack %q:\n%s", want, b.String())
		}
	}
	// flowlog at 300 MiB and softflowd at 200 MiB for 1 M flows: 283 B per
	// flow against 199, and over the design's 128.
	rec.Inputs[0] = input("gen-1M-1M", 1_010_000, 300<<20, 200<<20)
	b.Reset()
	writeMemoryTargets(&b, rec)
	for _, want := range []string{
		"| peak RSS per flow ≤ the leanest peer's | gen-1M-10k → gen-1M-1M | flowlog 283 B, leanest softflowd 199 B | **missed** |",
		"| ≤ 128 B per flow (design.md; peak RSS) | gen-1M-10k → gen-1M-1M | flowlog 283 B | **missed** |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("memory targets lack %q:\n%s", want, b.String())
		}
	}

	// With no pair of generated inputs there is no section.
	b.Reset()
	writeMemoryPerFlow(&b, Record{Inputs: rec.Inputs[:1]})
	if b.Len() != 0 {
		t.Errorf("section without a pair: %q", b.String())
	}
}
