package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Input is one flow log object to read: a local file, standard input or
// an S3 object.
type Input struct {
	Name string // path, s3://bucket/key, or "standard input"
	Size int64  // bytes; -1 when unknown
	src  source
	// poll marks a poll of a followed log group or topic: it is listed
	// again at each poll, with the events or messages that arrived since.
	poll bool
}

// source opens an input's bytes.
type source interface {
	// open returns the input as a stream.
	open(ctx context.Context) (io.ReadCloser, error)
}

// fileSource is a local file.
type fileSource struct{ path string }

func (s fileSource) open(context.Context) (io.ReadCloser, error) { return os.Open(s.path) }

// readerSource is a stream given to the analyzer (standard input).
type readerSource struct{ r io.Reader }

// open reads the stream in its own goroutine, so that a report can stop
// when its context ends even while the stream blocks (a pipe whose writer
// is slow or stuck): Ctrl-C must print what was read so far.
func (s readerSource) open(ctx context.Context) (io.ReadCloser, error) {
	return newCtxReader(ctx, s.r), nil
}

// ctxReader is a stream read ahead by a goroutine, whose Read returns as
// soon as its context ends.
type ctxReader struct {
	ctx   context.Context
	ch    chan []byte
	free  chan []byte
	errc  chan error
	cur   []byte
	spare []byte
	err   error
	stop  chan struct{}
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader {
	c := &ctxReader{ctx: ctx, ch: make(chan []byte), free: make(chan []byte, 2), errc: make(chan error, 1), stop: make(chan struct{})}
	c.free <- make([]byte, 64<<10)
	c.free <- make([]byte, 64<<10)
	go func() {
		for {
			var buf []byte
			select {
			case buf = <-c.free:
			case <-c.stop:
				return
			}
			n, err := r.Read(buf[:cap(buf)])
			if n > 0 {
				select {
				case c.ch <- buf[:n]:
				case <-c.stop:
					return
				}
			} else {
				c.free <- buf
			}
			if err != nil {
				c.errc <- err
				close(c.ch)
				return
			}
		}
	}()
	return c
}

func (c *ctxReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.spare != nil {
			c.free <- c.spare
			c.spare = nil
		}
		if c.err != nil {
			return 0, c.err
		}
		select {
		case b, ok := <-c.ch:
			if !ok {
				c.err = <-c.errc
				continue
			}
			c.cur, c.spare = b, b
		case <-c.ctx.Done():
			c.err = c.ctx.Err()
			return 0, c.err
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// Close stops the read-ahead (a Read blocked in the stream itself stays
// blocked until the stream returns, then its goroutine ends).
func (c *ctxReader) Close() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	return nil
}

// StdinName is the name standard input goes by in messages.
const StdinName = "standard input"

// ReaderInput returns an Input that reads r (standard input, a pipe).
func ReaderInput(name string, r io.Reader) Input {
	return Input{Name: name, Size: -1, src: readerSource{r}}
}

// FileInput returns an Input that reads the local file at path.
func FileInput(path string) (Input, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Input{}, err
	}
	if fi.IsDir() {
		return Input{}, fmt.Errorf("%s is a directory", path)
	}
	return Input{Name: path, Size: fi.Size(), src: fileSource{path}}, nil
}

// Lister lists the inputs an argument names: a file, standard input
// ("-"), a directory tree, an S3 prefix, a CloudWatch Logs log group, a
// Kafka topic, or a glob pattern.
type Lister struct {
	Stdin io.Reader // what "-" reads
	Range TimeRange // prunes AWS-layout folders and objects that cannot hold records in the range
	S3    *S3       // opens s3:// arguments; nil: they are errors
	// CloudWatch reads cloudwatch:// and log group ARN arguments; nil:
	// they are errors.
	CloudWatch *CloudWatch
	// Kafka reads kafka:// arguments; nil: they are errors.
	Kafka *Kafka
}

// List calls fn for each input arg names, in key order. Directories and
// S3 prefixes are walked; in the AWS layout, folders and objects whose
// date, hour and name time cannot hold records in l.Range are skipped
// without being read (or, for folders, listed), and the log trees of other
// AWS services (AWSLogs/ACCOUNT/CloudTrail, …) are left out.
func (l *Lister) List(ctx context.Context, arg string, fn func(Input) error) error {
	switch {
	case arg == "-":
		if l.Stdin == nil {
			return errors.New("standard input is not available")
		}
		return fn(ReaderInput(StdinName, l.Stdin))
	case strings.HasPrefix(arg, "s3://"):
		if l.S3 == nil {
			return fmt.Errorf("%s: S3 is not configured", arg)
		}
		return l.S3.walk(ctx, arg, l.Range, fn)
	case IsCloudWatch(arg):
		if l.CloudWatch == nil {
			return fmt.Errorf("%s: CloudWatch Logs is not configured", arg)
		}
		return l.CloudWatch.list(ctx, arg, l.Range, fn)
	case strings.HasPrefix(arg, KafkaScheme):
		if l.Kafka == nil {
			return fmt.Errorf("%s: Kafka is not configured", arg)
		}
		return l.Kafka.list(ctx, arg, l.Range, fn)
	}
	fi, err := os.Stat(arg)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && strings.ContainsAny(arg, "*?[") {
			matches, gerr := filepath.Glob(arg)
			if gerr != nil {
				return fmt.Errorf("pattern %s: %w", arg, gerr)
			}
			if len(matches) == 0 {
				return fmt.Errorf("%s: no file matches", arg)
			}
			for _, m := range matches {
				if err := l.List(ctx, m, fn); err != nil {
					return err
				}
			}
			return nil
		}
		return err
	}
	if !fi.IsDir() {
		if !l.keep(arg, false) {
			return nil
		}
		return fn(Input{Name: arg, Size: fi.Size(), src: fileSource{arg}})
	}
	return l.walkDir(ctx, arg, fn)
}

// keep reports whether the file or folder at p may hold records in range.
func (l *Lister) keep(p string, isDir bool) bool {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	key := filepath.ToSlash(abs)
	if isDir && otherAWSService(key) {
		return false
	}
	if l.Range.IsZero() {
		return true
	}
	span, ok := layoutSpan(key, isDir)
	return !ok || span.mayMatch(l.Range)
}

func (l *Lister) walkDir(ctx context.Context, dir string, fn func(Input) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		typ := e.Type()
		if typ&fs.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			typ = fi.Mode().Type()
		}
		switch {
		case typ.IsDir():
			if l.keep(p, true) {
				if err := l.walkDir(ctx, p, fn); err != nil {
					return err
				}
			}
		case typ.IsRegular():
			if !logFileName(e.Name()) || !l.keep(p, false) {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				continue // removed since the listing
			}
			if err := fn(Input{Name: p, Size: fi.Size(), src: fileSource{p}}); err != nil {
				return err
			}
		}
	}
	return nil
}
