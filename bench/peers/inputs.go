package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/bench/internal/gen"
)

// genSpec is one generated capture: the generator's defaults (30% of the
// conversations over IPv6, seed 1, 600 s from an aligned start) with the
// given size.
type genSpec struct {
	Packets int
	Flows   int
}

func (g genSpec) config() gen.Config {
	return gen.Config{Packets: g.Packets, Flows: g.Flows, IPv6: 0.3, Seed: 1, Duration: 600 * time.Second}
}

// Input is one capture every tool reads, with what it holds.
type Input struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Source string `json:"source"` // how it was made
	Size   int64  `json:"size"`
	Truth  Truth  `json:"truth"`
}

// Truth is what a capture holds, from a source independent of the tools:
// the generator's own counts, or tshark's per-packet table of a corpus
// capture.
type Truth struct {
	From string `json:"from"`
	// Packets are the IP packets a flow exporter records.
	Packets uint64 `json:"packets"`
	// IPBytes is the sum of their IP total lengths (what AWS counts);
	// FrameBytes the sum of their frame lengths on the wire (link layer
	// included), what some tools count instead.
	IPBytes    uint64 `json:"ip_bytes"`
	FrameBytes uint64 `json:"frame_bytes"`
	// Keys counts unidirectional flows: distinct (source, destination,
	// ports, protocol), ports 0 for every protocol but TCP, UDP and SCTP.
	Keys uint64 `json:"keys"`
	// Records is the number of AWS records: one per key, interface and
	// 600 s window.
	Records uint64 `json:"records"`
	// FirstWindow and LastWindow bound the windows with packets (Unix s).
	FirstWindow int64 `json:"first_window"`
	LastWindow  int64 `json:"last_window"`
	// NoData is the number of NODATA records AWS writes: for each
	// interface, every window from the first to the last without packets.
	NoData uint64 `json:"nodata"`
}

func prepareInputs(o options, logf func(string, ...any)) ([]Input, error) {
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return nil, err
	}
	var inputs []Input
	for _, g := range o.gens {
		in, err := generated(g, filepath.Dir(o.outDir), logf)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, in)
	}
	if o.corpusTop > 0 {
		names, err := largestCorpus(o.corpusDir, o.corpusTop)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			path := filepath.Join(o.corpusDir, name)
			tsv, err := os.Open(path + ".packets.tsv")
			if err != nil {
				return nil, err
			}
			t, err := truthFromTSV(tsv)
			tsv.Close()
			if err != nil {
				return nil, fmt.Errorf("truth of %s: %w", name, err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				return nil, err
			}
			abs, _ := filepath.Abs(path)
			inputs = append(inputs, Input{Name: strings.TrimSuffix(strings.TrimSuffix(name, ".pcapng"), ".pcap"),
				Path: abs, Source: "corpus: " + name, Size: fi.Size(), Truth: t})
			logf("== corpus %s: %d IP packets, %d unidirectional flows (truth from %s.packets.tsv)", name, t.Packets, t.Keys, name)
		}
	}
	return inputs, nil
}

// generated writes (or reuses) a generated capture in dir, named by every
// setting as gencap names it, and takes its truth from the generator.
func generated(g genSpec, dir string, logf func(string, ...any)) (Input, error) {
	cfg := g.config()
	if err := cfg.Validate(); err != nil {
		return Input{}, err
	}
	path, err := filepath.Abs(filepath.Join(dir, cfg.FileName()))
	if err != nil {
		return Input{}, err
	}
	statsPath := path + ".stats.json"
	var st gen.Stats
	if _, err := os.Stat(path); err == nil {
		if b, err := os.ReadFile(statsPath); err == nil && json.Unmarshal(b, &st) == nil && st.Packets == uint64(cfg.Packets) {
			logf("== generated capture kept: %s", path)
		} else {
			// The capture was written by gencap (or an older run): take the
			// generator's counts again without writing anything.
			if st, err = gen.Generate(cfg, func(int64, []byte, uint32) error { return nil }); err != nil {
				return Input{}, err
			}
		}
	} else {
		logf("== generating %s", path)
		if st, err = gen.WriteFile(path, cfg); err != nil {
			return Input{}, err
		}
	}
	if err := writeJSON(statsPath, st); err != nil {
		return Input{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Input{}, err
	}
	// One 600 s window, aligned: every key is one AWS record.
	w := cfg.Start
	if w.IsZero() {
		w = gen.DefaultStart
	}
	if w.Unix()%600 != 0 || cfg.Duration > 600*time.Second {
		return Input{}, fmt.Errorf("generated capture %s spans more than one 600 s window", path)
	}
	return Input{
		Name:   fmt.Sprintf("gen-%s-%s", shortCount(g.Packets), shortCount(g.Flows)),
		Path:   path,
		Source: fmt.Sprintf("generated: %d packets, %d conversations, 30%% IPv6, seed 1, 600 s (bench/internal/gen v%d)", g.Packets, g.Flows, gen.Version),
		Size:   fi.Size(),
		Truth: Truth{From: "generator counts", Packets: st.Packets, IPBytes: st.IPBytes, FrameBytes: st.WireBytes,
			Keys: st.Keys, Records: st.Keys, FirstWindow: w.Unix(), LastWindow: w.Unix()},
	}, nil
}

// shortCount writes 1000000 as 1M and 10000 as 10k.
func shortCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// largestCorpus names the n captures of MANIFEST.tsv with the most packets
// that tshark could read (a packets.tsv with rows).
func largestCorpus(dir string, n int) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type entry struct {
		name    string
		packets int
	}
	var entries []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	col := map[string]int{}
	for line := 0; sc.Scan(); line++ {
		fields := strings.Split(sc.Text(), "\t")
		if line == 0 {
			for i, name := range fields {
				col[name] = i
			}
			if _, ok := col["packets"]; !ok {
				return nil, fmt.Errorf("MANIFEST.tsv: no packets column")
			}
			continue
		}
		if len(fields) <= col["packets"] {
			continue
		}
		p, err := strconv.Atoi(fields[col["packets"]])
		if err != nil {
			continue
		}
		entries = append(entries, entry{fields[col["file"]], p})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].packets > entries[j].packets })
	var names []string
	for _, e := range entries {
		if len(names) == n {
			break
		}
		names = append(names, e.name)
	}
	if len(names) == 0 {
		return nil, errors.New("MANIFEST.tsv lists no capture")
	}
	return names, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// warm reads a capture once so every tool finds it in the page cache.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}
