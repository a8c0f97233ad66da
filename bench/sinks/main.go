// Command sinks measures how fast the object destinations take records: it
// writes N default-format records, window by window as the flow table
// emits them (sorted by start, then Advance), to the directory destination
// or to an S3 bucket (a real S3 server: run.sh starts versitygw), as
// gzip'd text or Parquet, and prints one JSON line of results: records/s,
// uncompressed text bytes/s, bytes written/s, and the CPU time this process
// used (the server's is measured by run.sh).
//
// The records come from a pool generated before the clock starts and are
// shifted in time for each window, so the measurement is the destination's
// work: rendering, hashing, compressing (or Parquet encoding) and
// publishing.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/parquet"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/s3"
)

type result struct {
	Dest          string  `json:"dest"`
	FileFormat    string  `json:"file_format"`
	Compression   string  `json:"compression"`
	GzipLevel     int     `json:"gzip_level"`
	Records       int64   `json:"records"`
	Objects       int64   `json:"objects"`
	TextBytes     int64   `json:"text_bytes"`
	OutBytes      int64   `json:"out_bytes"`
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	RecordsPerSec float64 `json:"records_per_s"`
	RecordsPerCPU float64 `json:"records_per_cpu_s"`
	TextMBps      float64 `json:"text_mb_per_s"`
	OutMBps       float64 `json:"out_mb_per_s"`
	Ratio         float64 `json:"compression_ratio"`
	MaxRSSMB      float64 `json:"max_rss_mb"`
}

// profile is the -cpuprofile file.
var profile string

type destination interface {
	Write([]flow.Record) error
	Advance(int64) error
	Close() error
	Stats() sink.ObjectStats
}

type s3Dest struct{ *s3.Sink }

func (d s3Dest) Stats() sink.ObjectStats { return d.Sink.Stats().ObjectStats }

func main() {
	var (
		n        = flag.Int64("records", 10_000_000, "records to write")
		perWin   = flag.Int("window-records", 500_000, "records per 10-minute window")
		dest     = flag.String("dest", "dir", "dir or s3")
		root     = flag.String("root", "", "with -dest dir: directory to write under (emptied first)")
		endpoint = flag.String("endpoint", "", "with -dest s3: endpoint URL of the S3 server")
		bucket   = flag.String("bucket", "bench", "with -dest s3: bucket (created if missing)")
		access   = flag.String("access", "", "with -dest s3: access key")
		secret   = flag.String("secret", "", "with -dest s3: secret key")
		pq       = flag.Bool("parquet", false, "write Parquet objects")
		codec    = flag.String("codec", "gzip", "Parquet compression: gzip or zstd")
		level    = flag.Int("gzip-level", 0, "gzip level, 1-9; 0 is sink.DefaultGzipLevel")
		batch    = flag.Int("batch", 10_000, "records per Write")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the measured part to this `file`")
	)
	flag.Parse()
	profile = *cpuProf
	if err := run(*n, *perWin, *batch, *dest, *root, *endpoint, *bucket, *access, *secret, *pq, *codec, *level); err != nil {
		fmt.Fprintln(os.Stderr, "sinks:", err)
		os.Exit(1)
	}
}

func run(n int64, perWin, batch int, destKind, root, endpoint, bucket, access, secret string, pq bool, codec string, level int) error {
	c, err := parquet.ParseCodec(codec)
	if err != nil {
		return err
	}
	layout := sink.Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-0123456789abcdef0", Parquet: pq}
	var d destination
	switch destKind {
	case "dir":
		if root == "" {
			return fmt.Errorf("-root: missing")
		}
		if err := os.RemoveAll(root); err != nil {
			return err
		}
		dir, err := sink.NewDir(sink.DirConfig{Root: root, Layout: layout, Format: flow.DefaultFormat(), GzipLevel: level, ParquetCompression: c})
		if err != nil {
			return err
		}
		d = dir
	case "s3":
		client, err := s3.NewClient(context.Background(), s3.ClientConfig{EndpointURL: endpoint, PathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
		if err != nil {
			return err
		}
		_, _ = client.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
		layout.Prefix = fmt.Sprintf("run-%d", time.Now().UnixNano())
		s, err := s3.New(s3.Config{Bucket: bucket, Layout: layout, Format: flow.DefaultFormat(), Client: client, GzipLevel: level, ParquetCompression: c})
		if err != nil {
			return err
		}
		d = s3Dest{s}
	default:
		return fmt.Errorf("-dest %q: want dir or s3", destKind)
	}

	pool := records(min(int64(perWin), n))
	win := make([]flow.Record, len(pool))
	runtime.GC()

	t0 := int64(1_700_000_400) // a multiple of 600
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	began, cpu0 := time.Now(), cpuTime()
	var written int64
	for w := int64(0); written < n; w++ {
		shift := t0 + w*600
		k := int(min(int64(len(pool)), n-written))
		for i := range k {
			win[i] = pool[i]
			win[i].Start += shift
			win[i].End += shift
		}
		for i := 0; i < k; i += batch {
			if err := d.Write(win[i:min(i+batch, k)]); err != nil {
				return err
			}
		}
		written += int64(k)
		if err := d.Advance(shift + 600); err != nil {
			return err
		}
	}
	if err := d.Close(); err != nil {
		return err
	}
	elapsed, cpu := time.Since(began).Seconds(), cpuTime()-cpu0
	st := d.Stats()
	format, comp := "plain-text", "gzip"
	if pq {
		format, comp = "parquet", string(c)
	}
	if level == 0 {
		level = sink.DefaultGzipLevel
	}
	r := result{
		Dest: destKind, FileFormat: format, Compression: comp, GzipLevel: level,
		Records: st.Records, Objects: st.Objects, TextBytes: st.UncompressedBytes, OutBytes: st.Bytes,
		Seconds: elapsed, CPUSeconds: cpu,
		RecordsPerSec: float64(st.Records) / elapsed, RecordsPerCPU: float64(st.Records) / cpu,
		TextMBps: float64(st.UncompressedBytes) / elapsed / 1e6, OutMBps: float64(st.Bytes) / elapsed / 1e6,
		Ratio: float64(st.UncompressedBytes) / float64(st.Bytes), MaxRSSMB: maxRSS(),
	}
	if st.Records != n {
		return fmt.Errorf("published %d records, wrote %d", st.Records, n)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// records returns n default-format OK records of one 10-minute window
// starting at time 0, sorted by start as the flow table emits them: a few
// hundred interfaces, addresses from a /16 talking to the world, ports and
// counts spread like server traffic.
func records(n int64) []flow.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	fields := flow.DefaultFormat().Set()
	recs := make([]flow.Record, n)
	enis := make([]string, 300)
	for i := range enis {
		enis[i] = fmt.Sprintf("eni-%017x", rng.Uint64()>>(64-68+4))
	}
	for i := range recs {
		s := rng.Int64N(600)
		e := s + rng.Int64N(600-s)
		r := &recs[i]
		*r = flow.Record{
			Present: fields, Version: 2, AccountID: "123456789012", InterfaceID: enis[rng.IntN(len(enis))],
			SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			DstAddr: netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}),
			SrcPort: uint16(32768 + rng.IntN(28000)), DstPort: []uint16{443, 80, 53, 22, 123, 5432}[rng.IntN(6)],
			Protocol: []uint8{6, 6, 6, 17, 1}[rng.IntN(5)], Packets: 1 + uint64(rng.ExpFloat64()*20),
			Start: s, End: e, Action: flow.ActionAccept, LogStatus: flow.LogStatusOK,
		}
		r.Bytes = r.Packets * (40 + rng.Uint64N(1460))
		if rng.IntN(20) == 0 {
			r.Action = flow.ActionReject
		}
	}
	slices.SortStableFunc(recs, func(a, b flow.Record) int { return int(a.Start - b.Start) })
	return recs
}

func cpuTime() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func maxRSS() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}
