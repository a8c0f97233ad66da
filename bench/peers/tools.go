package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// Tool is one flow exporter under test: the script that runs it
// (tools/<Name>.sh, which holds its exact options and why), how to read
// what it wrote, and what its numbers mean.
type Tool struct {
	Name string
	// Binaries must be on PATH (flowlog is given by -flowlog instead).
	Binaries []string
	// Package is the Debian package it comes from.
	Package string
	// Bytes tells what the tool counts as a flow's bytes: "IP" (the IP
	// total length, like AWS) or "frame" (the whole frame, link layer
	// included).
	Bytes string
	// Directions is "uni" when a record is one direction, "bi" when a
	// record holds both directions (counted as two unidirectional flows
	// when both saw packets).
	Directions string
	// Job says what the measured job is, for the report.
	Job string
	// Parse reads the output directory of one run.
	Parse func(dir string) (Counts, error)
	// Version reports the installed version.
	Version func() string
	// Notes explain, for the agreement table, how the tool's counts relate
	// to the truth.
	Notes string
}

// Counts is what one tool wrote for one input, reduced to comparable sums.
type Counts struct {
	// Records are the flow records written (for flowlog, OK records only;
	// NODATA and SKIPDATA are counted apart).
	Records uint64 `json:"records"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// BytesRounded is set when the tool prints rounded byte counts
	// (tshark's "14 kB"): Bytes is then a sum of rounded values.
	BytesRounded bool `json:"bytes_rounded,omitempty"`
	// Keys counts distinct unidirectional flows (see Key).
	Keys uint64 `json:"keys"`
	// NoData and SkipData are flowlog's NODATA and SKIPDATA records.
	NoData   uint64 `json:"nodata,omitempty"`
	SkipData uint64 `json:"skipdata,omitempty"`
	// Unknown lists protocol names the reader could not map to numbers.
	Unknown []string `json:"unknown,omitempty"`
	// Windows counts the 600 s windows with records, where the tool has
	// windows (flowlog, pmacct's time bins).
	Windows uint64 `json:"windows,omitempty"`
}

var allTools = []Tool{
	{
		Name: "flowlog", Bytes: "IP", Directions: "uni",
		Job:     "flowlog read → AWS records as text in one file",
		Parse:   parseFlowlog,
		Version: func() string { return "" }, // filled from the binary by newRecord
		Notes:   "Must equal the truth exactly: IP bytes, one record per direction, interface and 600 s window.",
	},
	{
		Name: "softflowd", Binaries: []string{"softflowd", "nfcapd", "nfdump"}, Package: "softflowd (+ nfdump for nfcapd)",
		Bytes: "IP", Directions: "uni",
		Job:   "softflowd → NetFlow v9 over loopback → nfcapd → nfdump file; CPU of both processes",
		Parse: func(dir string) (Counts, error) { return parseNfdump(dir + "/nf") },
		Version: func() string {
			return firstMatch(`softflowd version [0-9.]+`, "softflowd", "-h") + "; " + firstLine("nfcapd", "-V")
		},
		Notes: "Tracks flows both ways but exports one NetFlow record per direction. Counts the bytes after the link-layer header, " +
			"which is the IP length except for frames padded to Ethernet's 60-byte minimum: a 40-byte TCP ACK counts 46 bytes. " +
			"ICMP type/code is put in the port fields (undone here).",
	},
	{
		Name: "nfpcapd", Binaries: []string{"nfpcapd", "nfdump"}, Package: "nfdump",
		Bytes: "IP", Directions: "uni",
		Job:     "nfpcapd → nfdump files",
		Parse:   func(dir string) (Counts, error) { return parseNfdump(dir + "/nf") },
		Version: func() string { return firstLine("nfpcapd", "-V") },
		Notes: "One record per direction, IP bytes. It writes every ICMP packet and every DNS (port 53) packet as a flow of its own " +
			"(so more records than flows); the distinct keys still match.",
	},
	{
		Name: "pmacctd", Binaries: []string{"pmacctd"}, Package: "pmacct",
		Bytes: "IP", Directions: "uni",
		Job:     "pmacctd core + print plugin → CSV per 600 s bin",
		Parse:   parsePmacct,
		Version: func() string { return firstLine("pmacctd", "-V") },
		Notes: "One row per direction and 600 s time bin, IP bytes. It files the first packets of a capture under the bin before " +
			"the first packet's (its first purge starts a bin early), so a flow at the very start can have two rows: a few more records, same flows. " +
			"Its wall time includes 2 s of sleep before it reads a savefile (it logs \"PCAP capture file, sleeping for 2 seconds\") and the wait for its plugin to write and exit; its CPU time does not.",
	},
	{
		Name: "argus", Binaries: []string{"argus", "ra"}, Package: "argus-server + argus-client",
		Bytes: "frame", Directions: "bi",
		Job:   "argus → argus file",
		Parse: parseArgus,
		Version: func() string {
			return firstMatch(`Argus Version [0-9.]+`, "argus", "-h") + "; " + firstMatch(`Ra Version [0-9.]+`, "ra", "-h")
		},
		Notes: "Bidirectional records (both directions in one record); counts frame bytes (link layer included). " +
			"ARP flows (keyed by IP address) are left out here. " +
			"Its built-in idle timeouts end quiet flows early, and an ICMP echo exchange is keyed by id and sequence: more records, same keys.",
	},
	{
		Name: "tshark", Binaries: []string{"tshark"}, Package: "tshark",
		Bytes: "frame", Directions: "bi",
		Job:     "tshark conversation tables → text file",
		Parse:   parseTshark,
		Version: func() string { return firstLine("tshark", "-v") },
		Notes: "Bidirectional conversations; frame bytes, printed rounded (\"14 kB\"), so its byte sum is approximate. " +
			"Non-TCP/UDP traffic is tabled by address pair only, so two such protocols between one pair count once.",
	},
}

func toolNames() []string {
	var names []string
	for _, t := range allTools {
		names = append(names, t.Name)
	}
	return names
}

func toolByName(name string) (Tool, bool) {
	for _, t := range allTools {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}

// script is the runner of the tool, relative to the repository root.
func (t Tool) script() string { return "bench/peers/tools/" + t.Name + ".sh" }

// missing names the first binary of t not on PATH, or "".
func (t Tool) missing() string {
	for _, b := range t.Binaries {
		if _, err := exec.LookPath(b); err != nil {
			return b
		}
	}
	return ""
}

// firstLine runs a command and returns the first non-empty line of its
// combined output, or "?" when it cannot run.
func firstLine(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Running as user") {
			return l
		}
	}
	return "?"
}

func firstMatch(pattern, name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	if m := regexp.MustCompile(pattern).Find(out); m != nil {
		return string(m)
	}
	return firstLine(name, args...)
}

// debVersion is the installed Debian version of a package, or "".
func debVersion(pkg string) string {
	name, _, _ := strings.Cut(pkg, " ")
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", name).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// fileSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			if e.IsDir() {
				n += dirSize(dir + "/" + e.Name())
			} else {
				n += fi.Size()
			}
		}
	}
	return n
}

func (c Counts) String() string {
	return fmt.Sprintf("%d records, %d packets, %d bytes, %d keys", c.Records, c.Packets, c.Bytes, c.Keys)
}
