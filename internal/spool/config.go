package spool

import (
	"errors"
	"fmt"
	"time"

	"github.com/flowlog/flowlog/internal/sink"
)

// Defaults of a Config.
const (
	// DefaultMaxBytes bounds the spool directory: 1 GiB holds about five
	// million records of a destination that is down.
	DefaultMaxBytes = 1 << 30
	// DefaultSegmentBytes is the size at which a segment file is closed and
	// a new one started; acknowledged segments are deleted whole.
	DefaultSegmentBytes = 16 << 20
	// MinMaxBytes is the smallest bound Validate accepts.
	MinMaxBytes = 64 << 10
	// DefaultRetryInitial and DefaultRetryMax bound the backoff between
	// delivery attempts.
	DefaultRetryInitial = 200 * time.Millisecond
	DefaultRetryMax     = 30 * time.Second
)

// SyncPolicy says when the spool calls fsync on the segment it appends to.
type SyncPolicy string

const (
	// SyncAdvance (the default) syncs when a window's watermark is spooled:
	// the records of a window are on disk before Advance returns. Records
	// are in the page cache as soon as Write returns, so a crash of the
	// process (SIGKILL, panic) loses nothing at any point; a crash of the
	// machine may lose the window being written.
	SyncAdvance SyncPolicy = "advance"
	// SyncAlways syncs after every Write and Advance.
	SyncAlways SyncPolicy = "always"
	// SyncNone leaves writing back to the kernel: safe against a process
	// crash, not against a power failure.
	SyncNone SyncPolicy = "none"
)

// Config configures a Spool. The YAML keys are those under `spool:` in the
// agent's configuration.
type Config struct {
	// Dir is the spool directory (spool.dir). It is created if missing and
	// used by one process at a time.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the segment files in Dir (spool.max_bytes). Beyond
	// it, whole batches are dropped and reported as SKIPDATA.
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes is the size of a segment file (spool.segment_bytes);
	// at most a quarter of MaxBytes is used, so acknowledged segments free
	// space in steps.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// Sync is when to fsync (spool.sync): advance, always or none.
	Sync SyncPolicy `yaml:"sync"`
	// Retry bounds the backoff between delivery attempts (spool.retry).
	Retry Retry `yaml:"retry"`

	// Interval is the flow log's aggregation interval in seconds (60 or
	// 600): SKIPDATA records made for dropped batches cover its windows.
	Interval int64 `yaml:"-"`
	// Durable tells, for the watermark of an Advance the destination
	// accepted, the End time below which every record written to it before
	// that Advance is durable there. Nil means all of them: streams
	// (Kafka, CloudWatch Logs) deliver everything by the time Advance
	// returns. Object destinations keep the current period's object open
	// past Advance: use ObjectDurable.
	Durable func(watermark int64) int64 `yaml:"-"`
	// OnError, if set, is called with each problem the spool handles
	// itself: a failed delivery attempt, a full disk or spool, a corrupt
	// segment. Calls do not overlap; they are made with the spool's lock
	// held, so OnError must not call the Spool. Stats keeps the latest
	// problem too.
	OnError func(error) `yaml:"-"`
}

// Retry is the backoff between delivery attempts: the first retry waits
// about Initial, each next one twice as long up to Max, each wait drawn
// at random between half and all of that (jitter, so many agents that lost
// one destination do not retry in step).
type Retry struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}

// DefaultConfig returns the defaults, for a spool in dir of a flow log
// with 600 s windows.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:          dir,
		MaxBytes:     DefaultMaxBytes,
		SegmentBytes: DefaultSegmentBytes,
		Sync:         SyncAdvance,
		Retry:        Retry{Initial: DefaultRetryInitial, Max: DefaultRetryMax},
		Interval:     600,
	}
}

// Validate reports the first setting a Spool cannot use, naming its key.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("spool.dir: empty")
	}
	if c.MaxBytes < MinMaxBytes {
		return fmt.Errorf("spool.max_bytes %d: want at least %d", c.MaxBytes, MinMaxBytes)
	}
	if c.SegmentBytes < 4<<10 {
		return fmt.Errorf("spool.segment_bytes %d: want at least 4096", c.SegmentBytes)
	}
	switch c.Sync {
	case SyncAdvance, SyncAlways, SyncNone:
	default:
		return fmt.Errorf("spool.sync %q: want advance, always or none", c.Sync)
	}
	if c.Retry.Initial <= 0 || c.Retry.Max < c.Retry.Initial {
		return fmt.Errorf("spool.retry: initial %v and max %v: want 0 < initial <= max", c.Retry.Initial, c.Retry.Max)
	}
	if c.Interval != 60 && c.Interval != 600 {
		return fmt.Errorf("interval %d: want 60 or 600 seconds", c.Interval)
	}
	return nil
}

// segmentBytes is the segment size in use.
func (c Config) segmentBytes() int64 { return max(4<<10, min(c.SegmentBytes, c.MaxBytes/4)) }

// reserveBytes is the part of MaxBytes only SKIPDATA records and
// watermarks may use, so that the report of a loss always fits.
func (c Config) reserveBytes() int64 { return c.MaxBytes / 8 }

// ObjectDurable is Config.Durable for destinations that write objects in
// the S3 layout (sink.ObjectWriter: the directory and S3 destinations).
// Advance(watermark) publishes the objects of the periods that end by the
// watermark, so records ending before the period the watermark falls in
// are durable; the records of that period wait for a later Advance.
func ObjectDurable(watermark int64) int64 { return sink.PeriodOf(watermark) }
