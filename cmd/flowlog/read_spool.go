package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/spool"
)

// spoolOptions are the --spool flags of `flowlog read`.
type spoolOptions struct {
	dir      string
	maxBytes int64
}

func addSpoolFlags(f *pflag.FlagSet, o *spoolOptions) {
	f.StringVar(&o.dir, "spool", "", "with --dest: spool records in this `directory` before delivery; records a previous run left there are delivered first")
	f.Int64Var(&o.maxBytes, "spool-max-bytes", spool.DefaultMaxBytes, "with --spool: bound of the spool in `bytes`; batches beyond it are dropped and reported as SKIPDATA records")
}

// spooled is a destination behind a started spool.
type spooled struct {
	sp   *spool.Spool
	dir  string
	errw io.Writer
}

// wrapSpool puts out behind a spool in o.spool.dir, started with ctx; nil
// without --spool. Close on the returned destination's sink waits until
// the spool is delivered (or ctx ends); stop must be called afterwards.
func wrapSpool(ctx context.Context, o *readOptions, cfg pipeline.ReadConfig, out destination, errw io.Writer) (destination, *spooled, error) {
	so := &o.spool
	if so.dir == "" {
		return out, nil, nil
	}
	if o.dest == "" {
		return out, nil, usageError{errors.New("--spool needs --dest: records on standard output are not spooled")}
	}
	sc := spool.DefaultConfig(so.dir)
	sc.MaxBytes = so.maxBytes
	sc.Interval = cfg.Aggregate.Interval
	if kind, _, err := sink.ParseDestination(o.dest); err == nil && (kind == sink.DestinationFile || kind == sink.DestinationS3) {
		sc.Durable = spool.ObjectDurable
	}
	var last time.Time
	sc.OnError = func(err error) {
		// A destination that is down fails every few seconds: say so now
		// and then, not every time.
		if now := time.Now(); now.Sub(last) >= 5*time.Second {
			last = now
			fmt.Fprintf(errw, "flowlog: warning: %v\n", err)
		}
	}
	sp, err := spool.New(sc, out.sink)
	if err != nil {
		return out, nil, usageError{fmt.Errorf("--spool: %w", err)}
	}
	if err := sp.Start(ctx); err != nil {
		return out, nil, fmt.Errorf("--spool: %w", err)
	}
	out.sink = sp
	return out, &spooled{sp: sp, dir: so.dir, errw: errw}, nil
}

// stop stops the spool and reports what it did.
func (s *spooled) stop() {
	if s == nil {
		return
	}
	s.sp.Stop()
	st := s.sp.Stats()
	fmt.Fprintf(s.errw, "flowlog: spool %s: %d records spooled, %d delivered (%d retries), %d bytes left to deliver", s.dir, st.SpooledRecords, st.DeliveredRecords, st.Retries, st.BacklogBytes)
	if st.DroppedBatches > 0 {
		fmt.Fprintf(s.errw, "; %d batches (%d records) dropped for lack of space, reported as %d SKIPDATA records", st.DroppedBatches, st.DroppedRecords, st.SkipDataRecords)
	}
	if st.Quarantined > 0 {
		fmt.Fprintf(s.errw, "; %d corrupt segments quarantined (%d bytes lost)", st.Quarantined, st.CorruptBytes)
	}
	fmt.Fprintln(s.errw)
}
