package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record is everything one run of the command measured; it is written as
// JSON (the quick mode's baseline) and rendered as the Markdown report.
type Record struct {
	Started    time.Time     `json:"started"`
	Finished   time.Time     `json:"finished"`
	Command    string        `json:"command"`
	Commit     string        `json:"commit,omitempty"`
	Quick      bool          `json:"quick"`
	Machine    Machine       `json:"machine"`
	Pinning    string        `json:"pinning"`
	LoadBefore string        `json:"load_before"`
	LoadAfter  string        `json:"load_after"`
	Runs       int           `json:"runs"`
	Tools      []ToolInfo    `json:"tools"`
	Inputs     []InputResult `json:"inputs"`
}

// Machine describes where the record was made. Kind is what the quick mode
// matches on: the same CPU model and core count.
type Machine struct {
	CPU    string  `json:"cpu"`
	Cores  int     `json:"cores"`
	MemGiB float64 `json:"mem_gib"`
	Kernel string  `json:"kernel"`
	Go     string  `json:"go"`
}

// Kind is the machine kind a baseline is valid for.
func (m Machine) Kind() string { return fmt.Sprintf("%s × %d", m.CPU, m.Cores) }

// ToolInfo is a tool as it was run.
type ToolInfo struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Package    string `json:"package,omitempty"`
	Script     string `json:"script"`
	Command    string `json:"command"`
	Job        string `json:"job"`
	Bytes      string `json:"bytes"`
	Directions string `json:"directions"`
	Notes      string `json:"notes"`
}

// InputResult is every tool's runs on one input.
type InputResult struct {
	Input Input        `json:"input"`
	Tools []ToolResult `json:"tools"`
}

// ToolResult is one tool's runs on one input and what it wrote.
type ToolResult struct {
	Tool   string   `json:"tool"`
	Runs   []Usage  `json:"runs"`
	Failed []string `json:"failed,omitempty"`
	Counts *Counts  `json:"counts,omitempty"`
	// ParseError says why the output could not be read.
	ParseError  string `json:"parse_error,omitempty"`
	OutputBytes int64  `json:"output_bytes"`
}

func newRecord(o options, tools []Tool) Record {
	rec := Record{Started: time.Now().UTC(), Command: o.commandLine, Quick: o.quick, Machine: machine(), Pinning: o.pinning, Runs: o.runs}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		rec.Commit = strings.TrimSpace(string(out))
	}
	for _, t := range tools {
		info := ToolInfo{Name: t.Name, Version: t.Version(), Package: t.Package, Script: t.script(),
			Command: scriptCommand(t.script()), Job: t.Job, Bytes: t.Bytes, Directions: t.Directions, Notes: t.Notes}
		if t.Name == "flowlog" {
			info.Version = firstLine(o.flowlog, "version")
		}
		var debs []string
		for _, pkg := range strings.Split(t.Package, " + ") {
			if pkg == "" {
				continue
			}
			if v := debVersion(pkg); v != "" {
				name, _, _ := strings.Cut(pkg, " ")
				debs = append(debs, name+" "+v)
			}
		}
		if len(debs) > 0 {
			info.Package = "Debian " + strings.Join(debs, ", ")
		}
		rec.Tools = append(rec.Tools, info)
	}
	return rec
}

// scriptCommand is a runner script as the report shows it: whole, its
// comments being the reasons for every option.
func scriptCommand(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(string(b), "#!/usr/bin/env bash\n"))
}

func measureInput(ctx context.Context, o options, tools []Tool, in *Input, logf func(string, ...any)) (InputResult, error) {
	res := InputResult{Input: *in, Tools: make([]ToolResult, len(tools))}
	if err := warm(in.Path); err != nil {
		return res, err
	}
	for i, t := range tools {
		res.Tools[i].Tool = t.Name
	}
	base := os.Environ()
	for r := 0; r < o.runs; r++ {
		// Interleaved: every tool once per round, the order rotated each
		// round so no tool always runs right after the same neighbour.
		for j := range tools {
			i := (j + r) % len(tools)
			t, tr := tools[i], &res.Tools[i]
			dir := filepath.Join(o.outDir, in.Name, t.Name)
			if err := os.RemoveAll(dir); err != nil {
				return res, err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return res, err
			}
			port, err := freeUDPPort()
			if err != nil {
				return res, err
			}
			env := append(slices.Clone(base), "FLOWLOG="+o.flowlog, "PORT="+strconv.Itoa(port),
				"PMACCT_CACHE_ENTRIES="+strconv.Itoa(pmacctCacheEntries(in.Truth.Keys)),
				"PMACCT_PIPE_SIZE="+strconv.FormatUint(max(64<<20, 256*in.Truth.Packets), 10))
			u, err := runLogged(ctx, o, t, in, dir, env)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if err != nil {
				tr.Failed = append(tr.Failed, err.Error())
				logf("   %-10s %-22s run %d/%d FAILED: %v", t.Name, in.Name, r+1, o.runs, err)
				continue
			}
			tr.Runs = append(tr.Runs, u)
			logf("   %-10s %-22s run %d/%d: wall %6.2fs  cpu %6.2fs  rss %6.1f MiB  (%.2f M pkts/s)",
				t.Name, in.Name, r+1, o.runs, u.Wall.Seconds(), u.CPU().Seconds(), float64(u.MaxRSS)/(1<<20),
				float64(in.Truth.Packets)/u.Wall.Seconds()/1e6)
			if tr.Counts == nil && tr.ParseError == "" {
				tr.OutputBytes = dirSize(dir)
				c, err := t.Parse(dir)
				if err != nil {
					tr.ParseError = err.Error()
					logf("   %-10s %-22s output unreadable: %v", t.Name, in.Name, err)
				} else {
					tr.Counts = &c
					logf("   %-10s %-22s wrote %s", t.Name, in.Name, c)
				}
			}
		}
	}
	return res, nil
}

// runLogged runs one tool once, its script's output kept in dir.
func runLogged(ctx context.Context, o options, t Tool, in *Input, dir string, env []string) (Usage, error) {
	stdout, err := os.Create(filepath.Join(dir, "script.out"))
	if err != nil {
		return Usage{}, err
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "script.err"))
	if err != nil {
		return Usage{}, err
	}
	defer stderr.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	u, err := runJob(ctx, t.script(), []string{in.Path, dir}, env, stdout, stderr)
	if err != nil {
		return u, fmt.Errorf("%w%s", err, logTail(dir))
	}
	return u, nil
}

// logTail quotes the last lines of the logs in dir, for a failure message.
func logTail(dir string) string {
	var tail []string
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	logs = append(logs, filepath.Join(dir, "script.err"))
	for _, name := range logs {
		b, err := os.ReadFile(name)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 3 {
			lines = lines[len(lines)-3:]
		}
		tail = append(tail, filepath.Base(name)+": "+strings.Join(lines, " / "))
	}
	if len(tail) == 0 {
		return ""
	}
	return " (" + strings.Join(tail, "; ") + ")"
}

// pmacctCacheEntries follows pmacct's CONFIG-KEYS advice for
// print_cache_entries: about one bucket per 8 to 10 entries, a prime, at
// least the default 16411.
func pmacctCacheEntries(keys uint64) int {
	n := max(16411, int(keys/8))
	for !isPrime(n) {
		n++
	}
	return n
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// freeUDPPort finds a UDP port free on the loopback address.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "?", Kernel: "?"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemGiB = kb / (1 << 20)
			}
		}
		f.Close()
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

func readRecord(path string) (Record, error) {
	var rec Record
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("read %s: %w", path, err)
	}
	return rec, nil
}
