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
//
//	go run ./bench/analyze/genlog -size 2GiB -parquet -o bench/out/analyze-2GiB-parquet/
//
// With -parquet, the same records (same -size and -seed: the text log's
// records, in its order) go to Parquet objects in the output directory,
// written by internal/parquet as `flowlog read --file-format parquet` and
// the S3 sink write them: AWS's schema, gzip column chunks (-parquet-compression
// zstd for the other codec AWS offers), and an object cut where the sink
// cuts one, when its text form would pass 75 MB (sink.DefaultMaxObjectBytes).
// The synthetic timeline would put only ~11 MB in each 5-minute period;
// objects are cut by size alone, as for a VPC busy enough for reading speed
// to matter: each is one row group of ~660 000 records.
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

	"github.com/flowlog/flowlog/flow"
	flparquet "github.com/flowlog/flowlog/internal/parquet"
	"github.com/flowlog/flowlog/internal/sink"
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
	// Parquet writes Parquet objects of at most MaxObjectBytes of text
	// each instead of text.
	Parquet        bool
	Codec          flparquet.Codec
	MaxObjectBytes int64
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
	fs.BoolVar(&cfg.Parquet, "parquet", false, "write the same records as Parquet objects in the -o directory")
	var codec, maxObject string
	fs.StringVar(&codec, "parquet-compression", "gzip", "with -parquet: column chunk compression, gzip or zstd")
	fs.StringVar(&maxObject, "max-object", strconv.Itoa(sink.DefaultMaxObjectBytes), "with -parquet: cut an object when its text form would pass this many bytes (the sink's default)")
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
	if cfg.Parquet {
		if cfg.Parts > 0 {
			return fmt.Errorf("-parts and -parquet: Parquet objects are cut by -max-object")
		}
		if cfg.Codec, err = flparquet.ParseCodec(codec); err != nil {
			return err
		}
		if cfg.MaxObjectBytes, err = parseSize(maxObject); err != nil {
			return err
		}
		return runParquet(cfg, out, stderr)
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

// runParquet writes the records of Generate as Parquet objects under dir.
func runParquet(cfg Config, dir string, stderr io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pw := &parquetObjects{cfg: cfg, dir: dir, format: flow.DefaultFormat()}
	records, err := Generate(cfg, []io.Writer{pw})
	if cerr := pw.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "genlog: wrote %d records (%d bytes as text) in %d Parquet object(s) of %d bytes under %s\n",
		records, cfg.Size, pw.objects, pw.written, dir)
	return nil
}

// parquetObjects is the io.Writer Generate writes its lines to (one Write
// per line, the header first) when the output is Parquet: each line is
// parsed back into a record and written to the current object, which is
// cut as the sink cuts one (sink.ObjectConfig.MaxObjectBytes: when its text,
// header line included, would pass the limit).
type parquetObjects struct {
	cfg     Config
	dir     string
	format  *flow.Format
	rec     flow.Record
	f       *os.File
	bw      *bufio.Writer
	w       *flparquet.Writer
	text    int64 // text bytes of the current object, header included
	objects int
	written int64 // Parquet bytes of the closed objects
}

func (p *parquetObjects) Write(line []byte) (int, error) {
	if string(line) == header {
		return len(line), nil
	}
	if p.w != nil && p.text+int64(len(line)) > p.cfg.MaxObjectBytes {
		if err := p.close(); err != nil {
			return 0, err
		}
	}
	if p.w == nil {
		if err := p.open(); err != nil {
			return 0, err
		}
	}
	if err := p.format.ParseRecord(line[:len(line)-1], &p.rec); err != nil {
		return 0, fmt.Errorf("parse generated line %q: %w", line, err)
	}
	if err := p.w.WriteRecord(&p.rec); err != nil {
		return 0, err
	}
	p.text += int64(len(line))
	return len(line), nil
}

func (p *parquetObjects) open() error {
	f, err := os.Create(filepath.Join(p.dir, fmt.Sprintf("part-%03d.log.parquet", p.objects)))
	if err != nil {
		return err
	}
	p.f, p.bw = f, bufio.NewWriterSize(f, 1<<20)
	p.w, err = flparquet.NewWriter(p.bw, p.format, flparquet.WriterConfig{Codec: p.cfg.Codec})
	if err != nil {
		f.Close()
		return err
	}
	p.text = int64(len(header))
	return nil
}

// close finishes the current object, if any.
func (p *parquetObjects) close() error {
	if p.w == nil {
		return nil
	}
	err := p.w.Close()
	if ferr := p.bw.Flush(); err == nil {
		err = ferr
	}
	if fi, serr := p.f.Stat(); serr == nil {
		p.written += fi.Size()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	p.w = nil
	p.objects++
	return err
}
