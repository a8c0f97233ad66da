// Command genlog writes a synthetic flow log for the analyzer benchmark:
// default-format records (v2, with a header line) of a skewed population
// of talkers — a few hosts send most of the bytes, as in real VPCs — with
// some IPv6, rejected traffic and NODATA windows, deterministic for a
// seed.
//
//	go run ./bench/analyze/genlog -size 2GiB -o bench/out/analyze-2g.log
//	go run ./bench/analyze/genlog -size 2GiB -parts 8 -o bench/out/analyze-2g-parts/
//
// With -parts, the records are spread over that many files in the output
// directory, each with its header (many objects, as AWS delivers them).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "genlog:", err)
		os.Exit(1)
	}
}

// parseSize reads 2GiB, 500MB, 1e9 or a plain number of bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes such as 2GiB", s)
	}
	return int64(f * mult), nil
}

// Config describes the log.
type Config struct {
	Size       int64 // bytes to write (the last record may end a little past it)
	Parts      int
	Hosts      int // distinct source addresses
	Interfaces int
	Seed       uint64
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("genlog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var size, out string
	fs.StringVar(&size, "size", "2GiB", "bytes of log to write")
	fs.StringVar(&out, "o", "", "output file (a directory with -parts)")
	fs.IntVar(&cfg.Parts, "parts", 0, "spread the records over this many files in the -o directory")
	fs.IntVar(&cfg.Hosts, "hosts", 100_000, "distinct source addresses (Zipf-distributed)")
	fs.IntVar(&cfg.Interfaces, "interfaces", 50, "distinct interface ids")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Size, err = parseSize(size); err != nil {
		return err
	}
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	var ws []io.Writer
	var closers []func() error
	n := max(cfg.Parts, 1)
	for i := range n {
		path := out
		if cfg.Parts > 0 {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			path = filepath.Join(out, fmt.Sprintf("part-%03d.log", i))
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		ws = append(ws, bw)
		closers = append(closers, func() error {
			if err := bw.Flush(); err != nil {
				return err
			}
			return f.Close()
		})
	}
	records, err := Generate(cfg, ws)
	for _, c := range closers {
		if cerr := c(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "genlog: wrote %d records, %d bytes, in %d file(s) under %s\n", records, cfg.Size, n, out)
	return nil
}

const header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"

// Generate writes records round-robin to ws until cfg.Size bytes of
// records are written (headers aside), and returns the number of records.
func Generate(cfg Config, ws []io.Writer) (int64, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	addr := func(i int) []byte {
		if i%20 == 7 { // 5% IPv6
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			return []byte(netip.AddrFrom16(b).String())
		}
		return []byte(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String())
	}
	hosts := make([][]byte, cfg.Hosts)
	for i := range hosts {
		hosts[i] = addr(i + 1)
	}
	servers := make([][]byte, 5000)
	for i := range servers {
		servers[i] = []byte(netip.AddrFrom4([4]byte{172, 31, byte(i >> 8), byte(i)}).String())
	}
	ifaces := make([][]byte, cfg.Interfaces)
	for i := range ifaces {
		ifaces[i] = fmt.Appendf(nil, "eni-%017x", uint64(i+1)*0x9e3779b97f4a7c15>>4)
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(cfg.Seed, 1)), 1.2, 1, uint64(cfg.Hosts-1))
	ports := []int{443, 80, 22, 53, 5432, 3306, 6379, 8080, 3389, 25}

	// Only record bytes count toward the size, so that one file and
	// several parts hold the same records.
	var written, records int64
	for _, w := range ws {
		if _, err := io.WriteString(w, header); err != nil {
			return 0, err
		}
	}
	line := make([]byte, 0, 256)
	start := int64(1718900000)
	for written < cfg.Size {
		w := ws[records%int64(len(ws))]
		iface := ifaces[rng.IntN(len(ifaces))]
		line = append(line[:0], "2 123456789012 "...)
		line = append(line, iface...)
		if records%1000 == 999 {
			line = append(line, " - - - - - - - "...)
			line = strconv.AppendInt(line, start, 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, start+59, 10)
			line = append(line, " - NODATA\n"...)
		} else {
			src := hosts[zipf.Uint64()]
			dst := servers[rng.IntN(len(servers))]
			port := ports[int(math.Min(float64(len(ports)-1), rng.ExpFloat64()*2))]
			proto := 6
			if port == 53 {
				proto = 17
			}
			packets := 1 + rng.IntN(200)
			bytes := packets * (40 + rng.IntN(1400))
			line = append(line, ' ')
			line = append(line, src...)
			line = append(line, ' ')
			line = append(line, dst...)
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(32768+rng.IntN(28000)), 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(port), 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(proto), 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(packets), 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(bytes), 10)
			s := start + int64(rng.IntN(60))
			line = append(line, ' ')
			line = strconv.AppendInt(line, s, 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, s+int64(rng.IntN(60)), 10)
			if rng.IntN(20) == 0 {
				line = append(line, " REJECT OK\n"...)
			} else {
				line = append(line, " ACCEPT OK\n"...)
			}
		}
		if _, err := w.Write(line); err != nil {
			return 0, err
		}
		written += int64(len(line))
		records++
		if records%20000 == 0 {
			start += 60
		}
	}
	return records, nil
}
