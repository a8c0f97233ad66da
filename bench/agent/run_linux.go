package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flowlog/flowlog/flow"
)

const (
	linkA, linkB = "flbA", "flbB"
	addrA, addrB = "10.99.0.1", "10.99.0.2"
	floodPort    = 9
	benchFormat  = "${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${flow-direction}"
)

// result is one row of RESULTS.md.
type result struct {
	Source           string
	Sent             uint64 // datagrams the sender's sendmmsg calls took
	TxPackets        uint64 // packets the sending veth end transmitted
	RxPackets        uint64 // packets the receiving end received
	Seconds          float64
	RecordedEgress   uint64 // flood packets in egress records (sending end)
	RecordedIngress  uint64 // flood packets in ingress records (receiving end)
	SkipData         int    // SKIPDATA records
	Lost             float64
	UserCPU, SysCPU  float64   // percent of one core over the flood
	IperfBitsPerSec  float64   // median of the runs
	IperfRuns        []float64 // every run, sorted
	AgentRSSKiB      int64
	FloodBytesPerPkt uint64
	RecordedBytesEgr uint64
	ExpectedBytesEgr uint64
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	flowlog := fs.String("flowlog", "", "flowlog binary")
	dur := fs.Duration("duration", 10*time.Second, "flood duration")
	iperfDur := fs.Duration("iperf", 5*time.Second, "duration of one iperf3 run")
	iperfRuns := fs.Int("iperf-runs", 3, "iperf3 runs per source (the median is reported)")
	sources := fs.String("sources", "afpacket,ebpf", "capture sources to measure")
	senders := fs.Int("senders", runtime.NumCPU(), "sending threads")
	size := fs.Int("size", 18, "UDP payload bytes")
	out := fs.String("out", "bench/agent/RESULTS.md", "results file")
	_ = fs.Parse(args)
	if *flowlog == "" {
		return errors.New("-flowlog: missing")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	load0 := readFile("/proc/loadavg")
	tag := strconv.Itoa(os.Getpid())
	nsA, nsB := "flbench-a-"+tag, "flbench-b-"+tag
	if err := setup(nsA, nsB); err != nil {
		teardown(nsA, nsB)
		return err
	}
	defer teardown(nsA, nsB)
	sinkCmd := exec.Command("ip", "netns", "exec", nsB, self, "sink", "-addr", fmt.Sprintf("%s:%d", addrB, floodPort))
	if err := sinkCmd.Start(); err != nil {
		return err
	}
	defer func() { _ = sinkCmd.Process.Kill(); _ = sinkCmd.Wait() }()
	time.Sleep(200 * time.Millisecond)

	var results []result
	for _, src := range append([]string{"none"}, strings.Split(*sources, ",")...) {
		fmt.Fprintf(os.Stderr, "benchagent: source %s\n", src)
		r, err := measure(*flowlog, self, src, nsA, nsB, *dur, *iperfDur, *iperfRuns, *senders, *size)
		if err != nil {
			return fmt.Errorf("source %s: %w", src, err)
		}
		results = append(results, r)
	}
	load1 := readFile("/proc/loadavg")
	return writeResults(*out, results, *dur, *iperfDur, *iperfRuns, *senders, *size, load0, load1)
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func setup(nsA, nsB string) error {
	steps := [][]string{
		{"ip", "netns", "add", nsA}, {"ip", "netns", "add", nsB},
		{"ip", "link", "add", linkA, "netns", nsA, "type", "veth", "peer", "name", linkB, "netns", nsB},
	}
	for _, p := range [][3]string{{nsA, linkA, addrA}, {nsB, linkB, addrB}} {
		ns, l, a := p[0], p[1], p[2]
		steps = append(steps,
			[]string{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf." + l + ".disable_ipv6=1"},
			[]string{"ip", "-n", ns, "addr", "add", a + "/24", "dev", l},
			[]string{"ip", "-n", ns, "link", "set", l, "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"})
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			return err
		}
	}
	// Static neighbours: no ARP during the measurement.
	macA, err := mac(nsA, linkA)
	if err != nil {
		return err
	}
	macB, err := mac(nsB, linkB)
	if err != nil {
		return err
	}
	if err := sh("ip", "-n", nsA, "neigh", "add", addrB, "lladdr", macB, "dev", linkA, "nud", "permanent"); err != nil {
		return err
	}
	return sh("ip", "-n", nsB, "neigh", "add", addrA, "lladdr", macA, "dev", linkB, "nud", "permanent")
}

func mac(ns, link string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/"+link+"/address").Output()
	return strings.TrimSpace(string(out)), err
}

func teardown(nsA, nsB string) {
	_ = sh("ip", "netns", "del", nsA)
	_ = sh("ip", "netns", "del", nsB)
}

func counter(ns, link, name string) uint64 {
	out, _ := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/"+link+"/statistics/"+name).Output()
	n, _ := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	return n
}

// agent is a running `flowlog agent`.
type agent struct {
	cmd     *exec.Cmd
	metrics string
	mu      sync.Mutex
	log     bytes.Buffer
}

func startAgent(flowlog, source, nsA, nsB, dest, spool string) (*agent, error) {
	a := &agent{cmd: exec.Command(flowlog, "agent", "--source", source, "--netns", nsA+","+nsB,
		"--interface", linkA+","+linkB, "--dest", dest, "--interval", "60", "--format", benchFormat,
		"--spool-dir", spool, "--metrics-address", "127.0.0.1:0", "--log-format", "json")}
	pipe, err := a.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	attached := make(chan struct{}, 2)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m)
			a.mu.Lock()
			a.log.Write(append(sc.Bytes(), '\n'))
			if m["msg"] == "agent started" {
				a.metrics, _ = m["metrics"].(string)
			}
			a.mu.Unlock()
			if m["msg"] == "attached" {
				attached <- struct{}{}
			}
		}
	}()
	for range 2 {
		select {
		case <-attached:
		case <-time.After(15 * time.Second):
			_ = a.cmd.Process.Kill()
			return nil, fmt.Errorf("agent did not attach:\n%s", a.log.String())
		}
	}
	return a, nil
}

// cpu returns the process's user and system CPU time.
func cpu(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	// Fields after the command: state is index 0, utime 11, stime 12.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut) * time.Second / hz, time.Duration(st) * time.Second / hz
}

func rssKiB(pid int) int64 {
	for _, line := range strings.Split(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func measure(flowlog, self, source, nsA, nsB string, dur, iperfDur time.Duration, iperfRuns, senders, size int) (result, error) {
	r := result{Source: source, FloodBytesPerPkt: uint64(size + 28)}
	tmp, err := os.MkdirTemp("", "benchagent-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	dest := filepath.Join(tmp, "dest")
	var a *agent
	if source != "none" {
		if a, err = startAgent(flowlog, source, nsA, nsB, dest, filepath.Join(tmp, "spool")); err != nil {
			return r, err
		}
		defer func() { _ = a.cmd.Process.Kill() }()
		time.Sleep(time.Second)
	}
	tx0, rx0 := counter(nsA, linkA, "tx_packets"), counter(nsB, linkB, "rx_packets")
	var u0, s0 time.Duration
	if a != nil {
		u0, s0 = cpu(a.cmd.Process.Pid)
	}
	began := time.Now()
	out, err := exec.Command("ip", "netns", "exec", nsA, self, "flood", "-src", addrA, "-dst", fmt.Sprintf("%s:%d", addrB, floodPort),
		"-duration", dur.String(), "-senders", strconv.Itoa(senders), "-size", strconv.Itoa(size)).Output()
	if err != nil {
		return r, fmt.Errorf("flood: %v", err)
	}
	var fr floodResult
	if err := json.Unmarshal(out, &fr); err != nil {
		return r, fmt.Errorf("flood output %q: %v", out, err)
	}
	wall := time.Since(began)
	if a != nil {
		u1, s1 := cpu(a.cmd.Process.Pid)
		r.UserCPU = 100 * (u1 - u0).Seconds() / wall.Seconds()
		r.SysCPU = 100 * (s1 - s0).Seconds() / wall.Seconds()
	}
	time.Sleep(1500 * time.Millisecond) // the last drain
	r.Sent, r.Seconds = fr.Sent, fr.Seconds
	r.TxPackets, r.RxPackets = counter(nsA, linkA, "tx_packets")-tx0, counter(nsB, linkB, "rx_packets")-rx0

	var runs []float64
	for range iperfRuns {
		bps, _, err := iperf(nsA, nsB, iperfDur)
		if err != nil {
			return r, err
		}
		runs = append(runs, bps)
	}
	slices.Sort(runs)
	r.IperfBitsPerSec = runs[len(runs)/2]
	r.IperfRuns = runs
	if a == nil {
		return r, nil
	}
	r.Lost = metric(a.metrics, "flowlog_lost_packets_total")
	r.AgentRSSKiB = rssKiB(a.cmd.Process.Pid)
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	if err := a.cmd.Wait(); err != nil {
		return r, fmt.Errorf("agent exit: %v\n%s", err, a.log.String())
	}
	egr, ingr, egrBytes, skip, err := countRecords(dest)
	if err != nil {
		return r, err
	}
	r.RecordedEgress, r.RecordedIngress, r.RecordedBytesEgr, r.SkipData = egr, ingr, egrBytes, skip
	r.ExpectedBytesEgr = r.TxPackets * r.FloodBytesPerPkt
	return r, nil
}

// metric reads one unlabelled value from /metrics.
func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

// iperf runs an iperf3 TCP test from nsA to nsB.
func iperf(nsA, nsB string, d time.Duration) (bps, retransmits float64, err error) {
	srv := exec.Command("ip", "netns", "exec", nsB, "iperf3", "-s", "-1", "-B", addrB, "-p", "5299")
	if err := srv.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	out, err := exec.Command("ip", "netns", "exec", nsA, "iperf3", "-c", addrB, "-p", "5299", "-t",
		strconv.Itoa(int(d.Seconds())), "-J").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("iperf3: %v %s", err, out)
	}
	var j struct {
		End struct {
			SumSent struct {
				Retransmits float64 `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return 0, 0, err
	}
	return j.End.SumReceived.BitsPerSecond, j.End.SumSent.Retransmits, nil
}

// countRecords sums the flood's packets in the records under dir, by
// direction, and counts SKIPDATA records.
func countRecords(dir string) (egress, ingress, egressBytes uint64, skip int, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log.gz") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		rd := flow.NewReader(zr, flow.ReaderOptions{})
		for {
			var rec flow.Record
			if err := rd.Next(&rec); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if rec.LogStatus == flow.LogStatusSkipData {
				skip++
			}
			if rec.LogStatus != flow.LogStatusOK || rec.Protocol != 17 || rec.DstPort != floodPort {
				continue
			}
			switch rec.FlowDirection {
			case flow.DirectionEgress:
				egress += rec.Packets
				egressBytes += rec.Bytes
			case flow.DirectionIngress:
				ingress += rec.Packets
			}
		}
	})
	return
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if strings.HasPrefix(line, "model name") {
			_, v, _ := strings.Cut(line, ":")
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func pct(a, b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f%%", 100*float64(a)/float64(b))
}

func writeResults(path string, rs []result, dur, iperfDur time.Duration, iperfRuns, senders, size int, load0, load1 string) error {
	var b strings.Builder
	uname, _ := exec.Command("uname", "-r").Output()
	fmt.Fprintf(&b, "# Live agent benchmark\n\n")
	fmt.Fprintf(&b, "Written by `bench/agent/run.sh` on %s.\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), kernel %s. Load average before: %s; after: %s.\n",
		runtime.NumCPU(), cpuModel(), strings.TrimSpace(string(uname)), load0, load1)
	fmt.Fprintf(&b, "Other work on the machine at the same time makes these numbers noisy; the load averages above say how busy it was.\n\n")
	fmt.Fprintf(&b, "Setup: two network namespaces joined by a veth pair; a Go sender (`benchagent flood`, sendmmsg, %d threads) sends %d-byte UDP payloads (%d-byte IP packets) for %s to a socket that never reads; then iperf3 runs one TCP stream for %s, %d times (the median is shown, every run below). The agent (`flowlog agent`, 60 s interval, directory destination behind the spool) captures both ends of the veth; \"none\" is the same run without it.\n\n",
		senders, size, size+28, dur, iperfDur, iperfRuns)
	fmt.Fprintf(&b, "| source | packets/s sent | packets on the veth | recorded egress (sender end) | recorded ingress (receiver end) | accounted | lost (SKIPDATA) | agent CPU user | agent CPU system | agent peak RSS | iperf3 TCP | vs none |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var base float64
	for _, r := range rs {
		if r.Source == "none" {
			base = r.IperfBitsPerSec
		}
		pps := float64(r.TxPackets) / r.Seconds
		vs := "-"
		if r.Source != "none" && base > 0 {
			vs = fmt.Sprintf("%+.1f%%", 100*(r.IperfBitsPerSec-base)/base)
		}
		if r.Source == "none" {
			fmt.Fprintf(&b, "| none | %.0f | %d | - | - | - | - | - | - | - | %.2f Gbit/s | - |\n", pps, r.TxPackets, r.IperfBitsPerSec/1e9)
			continue
		}
		lost := "-"
		if r.Lost >= 0 {
			lost = fmt.Sprintf("%.0f packets, %d records", r.Lost, r.SkipData)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %d | %d (%s) | %d (%s) | %s | %s | %.2f%% | %.2f%% | %d MiB | %.2f Gbit/s | %s |\n",
			r.Source, pps, r.TxPackets, r.RecordedEgress, pct(r.RecordedEgress, r.TxPackets), r.RecordedIngress, pct(r.RecordedIngress, r.RxPackets),
			pct(r.RecordedEgress+r.RecordedIngress, r.TxPackets+r.RxPackets), lost, r.UserCPU, r.SysCPU, r.AgentRSSKiB/1024,
			r.IperfBitsPerSec/1e9, vs)
	}
	fmt.Fprintf(&b, "\nColumns: *packets on the veth* is the sending end's tx_packets counter over the flood (the receiving end's rx_packets is the ingress reference); *accounted* is recorded packets of both ends over packets that crossed them; *lost* are packets the source reported lost (ring drops, flow map full), written as SKIPDATA records; *agent CPU* is the agent process's utime and stime from /proc/PID/stat over the flood, in percent of one core (the eBPF programs run in the sender's softirq and are not in it); iperf3 is the receiver's rate of one TCP stream, *vs none* its change against the run without the agent.\n")
	fmt.Fprintf(&b, "\nByte check (egress, sender end): recorded %s.\n", bytesCheck(rs))
	fmt.Fprintf(&b, "\niperf3 runs (Gbit/s):")
	for _, r := range rs {
		var runs []string
		for _, v := range r.IperfRuns {
			runs = append(runs, fmt.Sprintf("%.2f", v/1e9))
		}
		fmt.Fprintf(&b, " %s %s;", r.Source, strings.Join(runs, ", "))
	}
	fmt.Fprintf(&b, " on a busy 2-core machine these vary by tens of percent from run to run, so a difference of a few percent is not measurable here.\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func bytesCheck(rs []result) string {
	var parts []string
	for _, r := range rs {
		if r.Source == "none" {
			continue
		}
		want := r.RecordedEgress * r.FloodBytesPerPkt
		ok := "equal to"
		if r.RecordedBytesEgr != want {
			ok = "NOT equal to"
		}
		parts = append(parts, fmt.Sprintf("%s %d bytes, %s packets × %d", r.Source, r.RecordedBytesEgr, ok, r.FloodBytesPerPkt))
	}
	return strings.Join(parts, "; ")
}
