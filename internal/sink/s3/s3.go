// Package s3 owns the S3 destination: objects of a flow log in a bucket,
// under the key layout and object cutting of AWS (sink.Layout,
// sink.ObjectWriter; spec §5), as gzip'd text or Parquet, with
// aws-sdk-go-v2 and its standard credential chain, against AWS or any
// S3-compatible server (an endpoint URL and path-style addressing).
//
// An object is gathered in memory while its period is open (its name is a
// hash of its content, so it cannot be uploaded before it is complete) and
// uploaded when it is published: a single PutObject up to PartSize, a
// multipart upload in parts of PartSize above. A failed multipart upload
// is aborted, so an object is either complete under its final key or
// absent; S3 never shows a partial object. Throttling, server errors and
// broken connections are retried by the SDK's retryer with exponential
// backoff and jitter; what still fails is returned, and the records are
// delivered again by the spool in front (internal/spool), under the same
// names. A permission error matches ErrAccessDenied and names the bucket
// and key.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/parquet"
	"github.com/flowlog/flowlog/internal/sink"
)

// DefaultPartSize is the size of the parts of a multipart upload, and the
// largest object uploaded with a single PutObject. A 75 MB text object
// compresses to about 10 MB: most objects are one PutObject.
const DefaultPartSize = 16 << 20

// MinPartSize is the smallest part S3 accepts (but for the last).
const MinPartSize = manager.MinUploadPartSize

// DefaultConcurrency is how many parts of one object are uploaded at once.
const DefaultConcurrency = 4

// DefaultCallTimeout bounds the upload of one object, retries included.
const DefaultCallTimeout = 5 * time.Minute

// ErrAccessDenied is matched (errors.Is) by errors of calls the credentials
// are not allowed to make (AccessDenied) or that were refused for the
// credentials themselves (unknown access key, bad signature, expired
// token).
var ErrAccessDenied = errors.New("access denied")

// Error is a failed S3 call about one object.
type Error struct {
	Op     string // "PutObject" (single or multipart upload), "HeadBucket", …
	Bucket string
	Key    string // "" for bucket operations
	Err    error  // the SDK's error
	denied bool
}

func (e *Error) Error() string {
	where := "s3://" + e.Bucket
	if e.Key != "" {
		where += "/" + e.Key
	}
	if e.denied {
		return fmt.Sprintf("s3 %s %s: access denied: the credentials in use need s3:PutObject on bucket %s (and s3:AbortMultipartUpload for large objects): %v", e.Op, where, e.Bucket, e.Err)
	}
	var ae smithy.APIError
	if errors.As(e.Err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		return fmt.Sprintf("s3 %s %s: bucket %s does not exist: %v", e.Op, where, e.Bucket, e.Err)
	}
	return fmt.Sprintf("s3 %s %s: %v", e.Op, where, e.Err)
}

// Unwrap returns the SDK's error, and ErrAccessDenied for permission
// errors.
func (e *Error) Unwrap() []error {
	if e.denied {
		return []error{ErrAccessDenied, e.Err}
	}
	return []error{e.Err}
}

func wrapErr(op, bucket, key string, err error) error {
	e := &Error{Op: op, Bucket: bucket, Key: key, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
			"InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "Forbidden",
			// versitygw's answer to an unknown access key.
			"XAdminUserNotFound":
			e.denied = true
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden {
		e.denied = true
	}
	return e
}

// Location is a bucket and the prefix of a flow log's keys in it.
type Location struct {
	Bucket string
	Prefix string // "" or a folder path without leading or trailing '/'
}

// ParseLocation reads the location of an s3 destination
// (sink.ParseDestination gives "bucket/prefix" for s3://bucket/prefix and
// arn:aws:s3:::bucket/prefix) and checks the bucket name against S3's
// rules: 3 to 63 lowercase letters, digits, '.' and '-', starting and
// ending with a letter or digit.
func ParseLocation(location string) (Location, error) {
	bucket, prefix, _ := strings.Cut(location, "/")
	if !validBucket(bucket) {
		return Location{}, fmt.Errorf("s3 bucket %q: want 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", bucket)
	}
	return Location{Bucket: bucket, Prefix: strings.Trim(prefix, "/")}, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		end := i == 0 || i == len(b)-1
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case (c == '.' || c == '-') && !end:
		default:
			return false
		}
	}
	return true
}

// DefaultRetryer retries throttling (SlowDown, 503), server errors and
// broken connections up to 5 attempts with exponential backoff and jitter
// up to 20 s, without a retry quota: a destination slower than the records
// must wait, not fail. Past it, the spool in front retries the object.
func DefaultRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 5
		o.MaxBackoff = 20 * time.Second
		o.RateLimiter = ratelimit.None
	})
}

// Config configures a Sink.
type Config struct {
	// Bucket receives the objects.
	Bucket string
	// Layout names the objects (Layout.Prefix is the destination's
	// prefix); Layout.Parquet writes Parquet objects.
	Layout sink.Layout
	// Format renders the records (the flow log's format); Parquet objects
	// need a *flow.Format.
	Format sink.Renderer
	// Client calls S3 (NewClient, or s3.NewFromConfig).
	Client *awss3.Client
	// MaxObjectBytes, GzipLevel, ParquetCompression and PublishOnAdvance
	// are those of sink.ObjectConfig.
	MaxObjectBytes     int64
	GzipLevel          int
	ParquetCompression parquet.Codec
	PublishOnAdvance   bool
	// PartSize is the size of the parts of a multipart upload and the
	// largest object uploaded with one PutObject; 0 means DefaultPartSize.
	// At least MinPartSize.
	PartSize int64
	// Concurrency is how many parts of one object are uploaded at once; 0
	// means DefaultConcurrency.
	Concurrency int
	// Retryer retries each call; nil means DefaultRetryer().
	Retryer aws.Retryer
	// CallTimeout bounds the upload of one object, retries included; 0
	// means DefaultCallTimeout.
	CallTimeout time.Duration
}

// Validate reports the first setting of c a Sink cannot use, naming its key.
func (c Config) Validate() error {
	if !validBucket(c.Bucket) {
		return fmt.Errorf("s3 bucket %q: want 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", c.Bucket)
	}
	if c.Client == nil {
		return errors.New("s3 client: missing")
	}
	if c.PartSize != 0 && c.PartSize < MinPartSize {
		return fmt.Errorf("s3 part size %d: want at least %d (5 MiB, the smallest part S3 accepts)", c.PartSize, MinPartSize)
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("s3 concurrency %d: negative", c.Concurrency)
	}
	if c.CallTimeout < 0 {
		return fmt.Errorf("s3 call timeout %s: negative", c.CallTimeout)
	}
	return nil
}

// Stats counts what a Sink uploaded.
type Stats struct {
	sink.ObjectStats
	// Multipart is how many objects went up as multipart uploads.
	Multipart int64
	// Aborted is how many multipart uploads were aborted after an error.
	Aborted int64
}

// Sink writes a flow log's records to S3 objects. Write, Advance, Close and
// Reset are called by one goroutine (or serialized by the ObjectWriter's
// lock); Stats and Published from any.
type Sink struct {
	w     *sink.ObjectWriter
	store *store
}

// New validates cfg and returns a Sink. It makes no call to S3: a missing
// bucket or permission shows at the first upload.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Retryer == nil {
		cfg.Retryer = DefaultRetryer()
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	retryer := cfg.Retryer
	st := &store{cfg: cfg}
	st.uploader = manager.NewUploader(cfg.Client, func(u *manager.Uploader) {
		u.PartSize = cfg.PartSize
		u.Concurrency = cfg.Concurrency
		u.LeavePartsOnError = false // abort: an object is complete or absent
		u.ClientOptions = append(u.ClientOptions, func(o *awss3.Options) { o.Retryer = retryer })
	})
	w, err := sink.NewObjectWriter(sink.ObjectConfig{
		Layout:             cfg.Layout,
		Format:             cfg.Format,
		MaxObjectBytes:     cfg.MaxObjectBytes,
		GzipLevel:          cfg.GzipLevel,
		ParquetCompression: cfg.ParquetCompression,
		PublishOnAdvance:   cfg.PublishOnAdvance,
	}, st)
	if err != nil {
		return nil, err
	}
	return &Sink{w: w, store: st}, nil
}

// Write appends records to the objects of their periods; see
// sink.ObjectWriter.Write.
func (s *Sink) Write(recs []flow.Record) error { return s.w.Write(recs) }

// Advance declares that every record with End < watermark has been written
// and uploads the objects of the periods that end at or before it.
func (s *Sink) Advance(watermark int64) error { return s.w.Advance(watermark) }

// Close uploads every object still open.
func (s *Sink) Close() error { return s.w.Close() }

// Reset drops the objects still open, for a spool's retry; see
// sink.ObjectWriter.Reset.
func (s *Sink) Reset() error { return s.w.Reset() }

// Published returns the keys of the uploaded objects in upload order.
func (s *Sink) Published() []string { return s.w.Published() }

// Stats returns what was uploaded and lost so far.
func (s *Sink) Stats() Stats {
	st := Stats{ObjectStats: s.w.Stats()}
	s.store.mu.Lock()
	st.Multipart, st.Aborted = s.store.multipart, s.store.aborted
	s.store.mu.Unlock()
	return st
}

// store gathers each object in memory and uploads it when it is published.
type store struct {
	cfg      Config
	uploader *manager.Uploader

	mu        sync.Mutex
	spare     []*bytes.Buffer // buffers of published objects, for the next
	multipart int64
	aborted   int64
}

// maxSpare bounds the buffers kept for reuse: about as many objects as are
// open at once (two periods of a 10-minute window, one of them cut).
const maxSpare = 3

func (s *store) Create(folder string) (sink.Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf *bytes.Buffer
	if n := len(s.spare); n > 0 {
		buf, s.spare = s.spare[n-1], s.spare[:n-1]
		buf.Reset()
	} else {
		buf = new(bytes.Buffer)
	}
	return &pending{store: s, folder: folder, buf: buf}, nil
}

func (s *store) recycle(buf *bytes.Buffer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.spare) < maxSpare && buf.Cap() <= 4*int(s.cfg.PartSize) {
		s.spare = append(s.spare, buf)
	}
}

// pending is one object gathered in memory.
type pending struct {
	store  *store
	folder string
	buf    *bytes.Buffer
}

func (p *pending) Write(b []byte) (int, error) { return p.buf.Write(b) }

// Publish uploads the object under key: one PutObject, or a multipart
// upload that is completed or aborted.
func (p *pending) Publish(key string) error {
	s := p.store
	if path.Dir(key) != p.folder {
		return fmt.Errorf("key %s is not in folder %s", key, p.folder)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	size := int64(p.buf.Len())
	_, err := s.uploader.Upload(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(p.buf.Bytes()),
		ContentLength: aws.Int64(size),
	})
	multipart := size > s.cfg.PartSize
	s.mu.Lock()
	if multipart {
		s.multipart++
	}
	var mf manager.MultiUploadFailure
	if err != nil && errors.As(err, &mf) {
		s.aborted++
	}
	s.mu.Unlock()
	if err != nil {
		return wrapErr("PutObject", s.cfg.Bucket, key, err)
	}
	buf := p.buf
	p.buf = nil
	s.recycle(buf)
	return nil
}

// Discard drops the gathered bytes; nothing was uploaded yet, or a failed
// multipart upload was already aborted.
func (p *pending) Discard() error {
	if p.buf != nil {
		p.store.recycle(p.buf)
		p.buf = nil
	}
	return nil
}
