// Package audit owns the server's audit trail, CloudTrail-like: every API
// call of `flowlog serve`, allowed or refused, as one JSON line in
// DATA_DIR/audit/audit.log, rotated by size (audit.log.1 is the newest
// rotated file), and the reader behind `flowlog audit`.
//
// Writing never blocks a request on the disk: lines are appended to a
// memory buffer that a goroutine writes out at least every second and at
// Stop. Only when that buffer holds more than Config.MaxPending bytes (a
// disk stalled for a long time) do requests wait, because an audit trail
// that drops lines is not one.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// FileName is the current audit file in Config.Dir; rotated files add .1,
// .2, … (.1 the newest).
const FileName = "audit.log"

// Config says where and how the trail is written.
type Config struct {
	// Dir is the audit directory (DATA_DIR/audit).
	Dir string
	// MaxBytes rotates the file once it is this large.
	MaxBytes int64
	// Keep is how many rotated files are kept; older ones are deleted.
	Keep int
	// FlushInterval bounds how long a line stays in memory.
	FlushInterval time.Duration
	// MaxPending bounds the memory buffer; past it, callers wait.
	MaxPending int
}

// Defaults of a Config.
const (
	DefaultMaxBytes      = 64 << 20
	DefaultKeep          = 10
	DefaultFlushInterval = time.Second
	DefaultMaxPending    = 8 << 20
)

// DefaultConfig is the trail under dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{Dir: filepath.Join(dataDir, "audit"), MaxBytes: DefaultMaxBytes, Keep: DefaultKeep, FlushInterval: DefaultFlushInterval, MaxPending: DefaultMaxPending}
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("audit dir: empty")
	case c.MaxBytes <= 0:
		return fmt.Errorf("audit max bytes: %d is not positive", c.MaxBytes)
	case c.Keep < 1:
		return fmt.Errorf("audit keep: %d, want at least 1 rotated file", c.Keep)
	case c.FlushInterval <= 0 || c.FlushInterval > time.Second:
		return fmt.Errorf("audit flush interval: %s, want (0, 1s]", c.FlushInterval)
	case c.MaxPending <= 0:
		return fmt.Errorf("audit max pending: %d is not positive", c.MaxPending)
	}
	return nil
}

// Event is one line of the trail.
type Event struct {
	Time        time.Time `json:"time"`
	RequestID   string    `json:"requestId"`
	Principal   string    `json:"principal,omitempty"`
	AccessKeyID string    `json:"accessKeyId,omitempty"`
	SourceIP    string    `json:"sourceIp,omitempty"`
	Service     string    `json:"service,omitempty"`
	Action      string    `json:"action,omitempty"`
	Resources   []string  `json:"resources,omitempty"`
	// Result is ResultAllowed, ResultDenied or ResultError.
	Result       string `json:"result"`
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// Results.
const (
	// ResultAllowed: authorized and served.
	ResultAllowed = "allowed"
	// ResultDenied: refused by authentication or authorization.
	ResultDenied = "denied"
	// ResultError: authorized (or not yet authorized) but failed: bad
	// parameters, missing entity, server error.
	ResultError = "error"
)

// deniedCodes are the error codes of refusals, per API.
var deniedCodes = map[string]bool{
	"AccessDenied": true, "UnauthorizedOperation": true, "AccessDeniedException": true,
	"AuthFailure": true, "SignatureDoesNotMatch": true, "InvalidClientTokenId": true,
	"UnrecognizedClientException": true, "MissingAuthenticationTokenException": true,
	"IncompleteSignature": true, "ExpiredToken": true,
}

// EventOf is the line for a call.
func EventOf(call *api.Call, resources []string, err error) Event {
	e := Event{Time: call.Time.UTC(), RequestID: call.RequestID, Principal: call.Principal.ARN, AccessKeyID: call.Principal.AccessKeyID,
		Service: call.Service, Action: call.Action, Resources: resources, Result: ResultAllowed}
	if call.SourceIP.IsValid() {
		e.SourceIP = call.SourceIP.String()
	}
	if err != nil {
		ae := api.AsError(err)
		e.ErrorCode, e.ErrorMessage, e.Result = ae.Code, ae.Message, ResultError
		if deniedCodes[ae.Code] {
			e.Result = ResultDenied
		}
	}
	return e
}

// Log is the trail writer; it implements api.Auditor.
type Log struct {
	cfg Config

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	stopped bool
	kick    chan struct{}

	fileMu sync.Mutex // file and size; held while writing or rotating
	file   *os.File
	size   int64

	done chan struct{}
	stop context.CancelFunc
	err  error // first write error, reported by Stop
}

// New opens (creating) the trail's directory and file.
func New(cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l := &Log{cfg: cfg, kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) path() string { return filepath.Join(l.cfg.Dir, FileName) }

func (l *Log) open() error {
	f, err := os.OpenFile(l.path(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open audit log: %w", err)
	}
	l.file, l.size = f, fi.Size()
	return nil
}

// Start runs the flusher until ctx ends or Stop.
func (l *Log) Start(ctx context.Context) {
	ctx, l.stop = context.WithCancel(ctx)
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.cfg.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-l.kick:
			}
			l.flush()
		}
	}()
}

// Stop writes every buffered line, syncs and closes the file. Lines
// audited after Stop are written synchronously while the file is open,
// then dropped.
func (l *Log) Stop() error {
	if l.stop != nil {
		l.stop()
		<-l.done
	}
	l.flush()
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if l.file == nil {
		return l.err
	}
	err := errors.Join(l.err, l.file.Sync(), l.file.Close())
	l.file = nil
	if err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

// Audit implements api.Auditor.
func (l *Log) Audit(call *api.Call, resources []string, err error) {
	l.Write(EventOf(call, resources, err))
}

// Write appends e to the trail.
func (l *Log) Write(e Event) {
	line, err := json.Marshal(e)
	if err != nil {
		return // an Event always marshals
	}
	line = append(line, '\n')
	l.mu.Lock()
	for len(l.pending) > l.cfg.MaxPending && !l.stopped {
		l.cond.Wait()
	}
	l.pending = append(l.pending, line...)
	n, stopped := len(l.pending), l.stopped
	l.mu.Unlock()
	if stopped {
		l.flush()
		return
	}
	if n > 256<<10 {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// flush writes the buffered lines and rotates when the file is full.
func (l *Log) flush() {
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	l.mu.Lock()
	buf := l.pending
	l.pending = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	if len(buf) == 0 || l.file == nil {
		return
	}
	// Cut at line ends so that no file grows past MaxBytes (but for a
	// single line longer than that).
	for len(buf) > 0 && l.file != nil {
		chunk := buf
		if room := l.cfg.MaxBytes - l.size; int64(len(chunk)) > room {
			cut := -1
			if room > 0 {
				cut = bytes.LastIndexByte(chunk[:room], '\n')
			}
			switch {
			case cut >= 0:
				chunk = chunk[:cut+1]
			case l.size > 0:
				chunk = nil // the next line does not fit: rotate first
			default:
				chunk = chunk[:bytes.IndexByte(chunk, '\n')+1]
			}
		}
		if len(chunk) > 0 {
			n, err := l.file.Write(chunk)
			l.size += int64(n)
			if err != nil {
				l.fail(fmt.Errorf("write audit log %s: %w", l.path(), err))
				return
			}
			buf = buf[len(chunk):]
		}
		if len(buf) > 0 || l.size >= l.cfg.MaxBytes {
			if err := l.file.Sync(); err != nil {
				l.fail(fmt.Errorf("sync audit log %s: %w", l.path(), err))
			}
			if err := l.rotate(); err != nil {
				l.fail(err)
				return
			}
		}
	}
	if l.file != nil {
		if err := l.file.Sync(); err != nil {
			l.fail(fmt.Errorf("sync audit log %s: %w", l.path(), err))
		}
	}
}

func (l *Log) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// rotate shifts audit.log.(k) to .(k+1), dropping the oldest, and starts
// a new audit.log. Called with fileMu held.
func (l *Log) rotate() error {
	if err := l.file.Close(); err != nil {
		return fmt.Errorf("rotate audit log: %w", err)
	}
	l.file = nil
	base := l.path()
	os.Remove(base + "." + strconv.Itoa(l.cfg.Keep))
	for k := l.cfg.Keep - 1; k >= 1; k-- {
		from := base + "." + strconv.Itoa(k)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, base+"."+strconv.Itoa(k+1)); err != nil {
				return fmt.Errorf("rotate audit log: %w", err)
			}
		}
	}
	if err := os.Rename(base, base+".1"); err != nil {
		return fmt.Errorf("rotate audit log: %w", err)
	}
	return l.open()
}
