package sinktest

import (
	"context"
	"testing"

	"github.com/flowlog/flowlog/internal/spool"
)

// StartSpool starts a spool of 60 s windows in a temporary directory in
// front of dest, retrying its failed calls with retry, as the agent puts
// one before every destination; it stops when t ends.
func StartSpool(t testing.TB, dest spool.Sink, retry spool.Retry) *spool.Spool {
	t.Helper()
	cfg := spool.DefaultConfig(t.TempDir())
	cfg.Interval = 60
	cfg.Retry = retry
	sp, err := spool.New(cfg, dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Stop)
	return sp
}
