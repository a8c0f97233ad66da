package afpacket

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Config sets up the rings of a Source.
type Config struct {
	// Fanout is the number of sockets, rings and goroutines per interface,
	// joined in a PACKET_FANOUT_HASH group: the kernel spreads packets by
	// flow hash, so a flow's packets (and an IP datagram's fragments) stay
	// on one socket. 0 means one per CPU.
	Fanout int `yaml:"fanout"`
	// BlockSize is the size of one ring block in bytes: a multiple of the
	// page size, and a power of two. 0 means 1 MiB.
	BlockSize int `yaml:"block-size"`
	// Blocks is the number of blocks in each ring. 0 means 8: with the
	// default block size and snap length a ring holds about 25,000 packets.
	Blocks int `yaml:"blocks"`
	// SnapLen is how many bytes of each packet are copied into the ring.
	// Records need only the headers (lengths come from the IP header), so
	// 0 means 256: Ethernet, two VLAN tags, IPv6 with extension headers,
	// and TCP with options.
	SnapLen int `yaml:"snap-length"`
	// BlockTimeout hands a partly filled block to user space after this
	// long, so quiet interfaces are counted promptly; it is also how long
	// Detach waits for the last packets. 0 means 100 ms.
	BlockTimeout time.Duration `yaml:"block-timeout"`
}

// Defaults of a Config.
const (
	DefaultBlockSize    = 1 << 20
	DefaultBlocks       = 8
	DefaultSnapLen      = 256
	DefaultBlockTimeout = 100 * time.Millisecond
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{BlockSize: DefaultBlockSize, Blocks: DefaultBlocks, SnapLen: DefaultSnapLen, BlockTimeout: DefaultBlockTimeout}
}

// Validate reports every setting a Source cannot use, naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	page := os.Getpagesize()
	if c.Fanout < 0 || c.Fanout > 256 {
		errs = append(errs, fmt.Errorf("fanout %d: want 1 to 256 sockets per interface (0 for one per CPU)", c.Fanout))
	}
	if c.BlockSize != 0 && (c.BlockSize < page || c.BlockSize%page != 0 || c.BlockSize&(c.BlockSize-1) != 0 || c.BlockSize > 1<<26) {
		errs = append(errs, fmt.Errorf("block-size %d: want a power of two from the page size (%d) to 64 MiB", c.BlockSize, page))
	}
	if c.Blocks < 0 || c.Blocks > 1<<16 {
		errs = append(errs, fmt.Errorf("blocks %d: want 1 to 65536", c.Blocks))
	}
	if c.SnapLen != 0 && (c.SnapLen < 64 || c.SnapLen > 65535) {
		errs = append(errs, fmt.Errorf("snap-length %d: want 64 to 65535 bytes", c.SnapLen))
	}
	if c.BlockTimeout < 0 || c.BlockTimeout > 10*time.Second || c.BlockTimeout != 0 && c.BlockTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("block-timeout %s: want 1ms to 10s", c.BlockTimeout))
	}
	if c.blockSize() < c.snapLen()+128 {
		errs = append(errs, fmt.Errorf("block-size %d: smaller than one packet of snap-length %d", c.blockSize(), c.snapLen()))
	}
	return errors.Join(errs...)
}

func (c Config) blockSize() int { return orDefault(c.BlockSize, DefaultBlockSize) }
func (c Config) blocks() int    { return orDefault(c.Blocks, DefaultBlocks) }
func (c Config) snapLen() int   { return orDefault(c.SnapLen, DefaultSnapLen) }
func (c Config) blockTimeout() time.Duration {
	if c.BlockTimeout == 0 {
		return DefaultBlockTimeout
	}
	return c.BlockTimeout
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}
