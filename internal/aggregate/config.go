package aggregate

import "fmt"

// Limits and defaults of a Config.
const (
	// DefaultMaxFlows is the capacity used when Config.MaxFlows is 0.
	DefaultMaxFlows = 1 << 20

	// MaxMaxFlows is the largest capacity a table supports: its index slots
	// hold a 24-bit entry number next to an 8-bit hash tag (see index.go).
	// At about 84 bytes per flow that is 1.4 GB of flow table.
	MaxMaxFlows = 1<<24 - 1

	// DefaultLateness is the grace period used when Config.Lateness is 0.
	DefaultLateness = 5

	// NoLateness as Config.Lateness closes a window as soon as a packet of
	// a later window arrives.
	NoLateness = -1

	// MaxLateness bounds the grace period (one week): together with the
	// interval it bounds how many windows are open at once.
	MaxLateness = 7 * 24 * 3600
)

// Config sets up a Table.
type Config struct {
	// Interval is the aggregation window in seconds: 60 or 600 (spec §1).
	Interval int64

	// MaxFlows is the capacity: the most flow records (one key in one
	// window) held at once across all open windows. A packet that would
	// start a new record beyond it is counted as skipped and reported as
	// SKIPDATA. 0 means DefaultMaxFlows.
	MaxFlows int

	// Lateness is how many seconds a window stays open after its end, so
	// that packets out of order by up to that much still count in their own
	// window. 0 means DefaultLateness; NoLateness means none.
	Lateness int64
}

// DefaultConfig returns the configuration of a compatible flow log: 600 s
// windows, the default capacity and grace period.
func DefaultConfig() Config {
	return Config{Interval: 600, MaxFlows: DefaultMaxFlows, Lateness: DefaultLateness}
}

// Validate reports the first setting that a Table cannot use, naming it.
func (c Config) Validate() error {
	if c.Interval != 60 && c.Interval != 600 {
		return fmt.Errorf("invalid interval %d: must be 60 or 600 seconds", c.Interval)
	}
	if c.MaxFlows < 0 || c.MaxFlows > MaxMaxFlows {
		return fmt.Errorf("invalid max-flows %d: must be between 1 and %d (0 for the default %d)",
			c.MaxFlows, MaxMaxFlows, DefaultMaxFlows)
	}
	if c.Lateness < NoLateness || c.Lateness > MaxLateness {
		return fmt.Errorf("invalid lateness %d: must be between 0 and %d seconds (%d for none)",
			c.Lateness, MaxLateness, NoLateness)
	}
	return nil
}

// maxFlows is the capacity with the default applied.
func (c Config) maxFlows() int {
	if c.MaxFlows == 0 {
		return DefaultMaxFlows
	}
	return c.MaxFlows
}

// lateness is the grace period in seconds with the default applied.
func (c Config) lateness() int64 {
	switch c.Lateness {
	case 0:
		return DefaultLateness
	case NoLateness:
		return 0
	}
	return c.Lateness
}
