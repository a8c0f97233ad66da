package firehose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/flowlog/flowlog/internal/awsconf"
	"github.com/klauspost/compress/gzip"
)

// Buckets stores delivered objects.
type Buckets interface {
	// Put writes body as bucket/key, atomically: a reader sees the whole
	// object or none.
	Put(ctx context.Context, bucket, key string, body []byte) error
}

// DirBuckets writes bucket B's objects under Dir/B/, key slashes being
// directories.
type DirBuckets struct {
	Dir string
}

// CheckPrefix refuses a prefix whose keys would not be clean relative
// paths ("..", ".", empty segments, a leading slash): CreateDeliveryStream
// asks, rather than have every delivery fail.
func (d DirBuckets) CheckPrefix(prefix string) error {
	key := prefix + "2006/01/02/15/x"
	if clean := filepath.Clean("/" + key); clean != "/"+key {
		return fmt.Errorf("prefix %q: keys under it are not clean paths in the buckets directory (no \"..\", \".\", \"//\" or leading \"/\")", prefix)
	}
	return nil
}

// Put implements Buckets: a temporary file in the object's directory,
// synced, then renamed to its name.
func (d DirBuckets) Put(_ context.Context, bucket, key string, body []byte) error {
	// Keys come from the stream's prefix: refuse what would leave the
	// bucket's directory.
	clean := filepath.Clean("/" + key)
	if key == "" || strings.HasSuffix(key, "/") || clean != "/"+key {
		return fmt.Errorf("write object %s/%s: the key is not a clean relative path", bucket, key)
	}
	path := filepath.Join(d.Dir, bucket, filepath.FromSlash(key))
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write object: %w", err)
	}
	f, err := os.CreateTemp(dir, ".firehose-*.tmp")
	if err != nil {
		return fmt.Errorf("write object: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write object %s: %w", path, err)
	}
	return nil
}

// S3Buckets puts objects into S3 (or an S3-compatible server) with one
// PutObject each.
type S3Buckets struct {
	Client *awss3.Client
}

// Put implements Buckets.
func (b S3Buckets) Put(ctx context.Context, bucket, key string, body []byte) error {
	_, err := b.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// ObjectKey names an object as Firehose does:
// PREFIX YYYY/MM/DD/HH/ STREAM-1-YYYY-MM-DD-HH-MM-SS-UUID, ".gz" when
// gzipped, at the UTC time of the oldest record's arrival.
func ObjectKey(prefix, stream string, arrival time.Time, uuid string, gz bool) string {
	t := arrival.UTC()
	b := make([]byte, 0, len(prefix)+len(stream)+80)
	b = append(b, prefix...)
	b = appendInt(b, t.Year(), 4)
	b = append(b, '/')
	b = appendInt(b, int(t.Month()), 2)
	b = append(b, '/')
	b = appendInt(b, t.Day(), 2)
	b = append(b, '/')
	b = appendInt(b, t.Hour(), 2)
	b = append(b, '/')
	b = append(b, stream...)
	b = append(b, "-1-"...)
	b = t.AppendFormat(b, "2006-01-02-15-04-05")
	b = append(b, '-')
	b = append(b, uuid...)
	if gz {
		b = append(b, ".gz"...)
	}
	return string(b)
}

func appendInt(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// Start runs the deliverer until ctx ends or Stop is called.
func (s *Service) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	s.stop = cancel
	s.done = make(chan struct{})
	go s.run(ctx)
}

// Stop stops the deliverer and waits for it: a delivery in progress is
// abandoned (its records stay buffered for the next start).
func (s *Service) Stop() error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	<-s.done
	return nil
}

func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		s.deliverDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// deliverDue delivers every stream whose buffer is full or whose oldest
// record has waited its interval, until none is.
func (s *Service) deliverDue(ctx context.Context) {
	streams := map[int64]*stream{}
	for ctx.Err() == nil {
		progress := false
		for _, id := range s.bufferedStreams() {
			st := streams[id]
			if st == nil {
				var err error
				if st, err = s.streamByID(ctx, id); err != nil {
					s.log.Error("read delivery stream", "err", err)
					continue
				}
				if st == nil {
					s.mu.Lock()
					delete(s.bufs, id)
					s.mu.Unlock()
					continue
				}
				streams[id] = st
			}
			if !s.due(st) {
				continue
			}
			if s.deliver(ctx, st) {
				progress = true
			}
		}
		if !progress {
			return
		}
	}
}

func (s *Service) bufferedStreams() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.bufs))
	for id, b := range s.bufs {
		if b.bytes > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *Service) due(st *stream) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bufs[st.ID]
	if b == nil || b.bytes == 0 || now.Before(b.retryAt) {
		return false
	}
	return b.bytes >= st.limit() || !now.Before(b.oldest.Add(time.Duration(st.IntervalS)*time.Second))
}

// deliver writes one object of the stream's oldest rows (up to its size
// limit, at least one row) and deletes them; false when it failed.
func (s *Service) deliver(ctx context.Context, st *stream) bool {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, arrival, data FROM firehose_records WHERE stream_id = ? ORDER BY seq`, st.ID)
	if err != nil {
		s.failed(ctx, st, fmt.Errorf("read records: %w", err))
		return false
	}
	var body []byte
	var last, oldest int64
	for rows.Next() {
		var seq, arrival int64
		var data []byte
		if err = rows.Scan(&seq, &arrival, &data); err != nil {
			break
		}
		if last != 0 && int64(len(body)+len(data)) > st.limit() {
			break
		}
		if last == 0 || arrival < oldest {
			oldest = arrival
		}
		body = append(body, data...)
		last = seq
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		s.failed(ctx, st, fmt.Errorf("read records: %w", err))
		return false
	}
	if last == 0 {
		return false // delivered meanwhile, or deleted
	}
	gz := st.Compression == "GZIP"
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, err := zw.Write(body)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			s.failed(ctx, st, fmt.Errorf("gzip object: %w", err))
			return false
		}
		body = buf.Bytes()
	}
	key := ObjectKey(st.Prefix, st.Name, time.UnixMilli(oldest), newUUID(), gz)
	started := time.Now()
	// The stream's role decides, as the role's session would be decided
	// by S3: nothing is written when it may not (the rows stay).
	if err := s.authorizePut(ctx, st, key); err != nil {
		s.failed(ctx, st, err)
		return false
	}
	if err := s.buckets.Put(ctx, st.Bucket(), key, body); err != nil {
		s.failed(ctx, st, err)
		return false
	}
	// The object is written: delete its rows and recount what is left.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var left, next sqlNullInt
	_, err = s.db.ExecContext(ctx, `DELETE FROM firehose_records WHERE stream_id = ? AND seq <= ?`, st.ID, last)
	if err == nil {
		err = s.db.QueryRowContext(ctx, `SELECT SUM(size), MIN(arrival) FROM firehose_records WHERE stream_id = ?`, st.ID).Scan(&left, &next)
	}
	if err != nil {
		// The object will be written again: at least once.
		s.failed(ctx, st, fmt.Errorf("delete delivered records: %w", err))
		return false
	}
	s.mu.Lock()
	if b := s.bufs[st.ID]; b != nil {
		b.bytes = left.v
		b.oldest = time.Time{}
		if left.ok {
			b.oldest = time.UnixMilli(next.v)
		}
		b.retryAt, b.backoff, b.lastErr = time.Time{}, 0, ""
	}
	s.mu.Unlock()
	s.log.Debug("delivered", "stream", st.Name, "bucket", st.Bucket(), "key", key, "bytes", len(body), "took", time.Since(started))
	return true
}

// sqlNullInt scans an integer that may be NULL (an aggregate of no rows).
type sqlNullInt struct {
	v  int64
	ok bool
}

func (n *sqlNullInt) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		n.v, n.ok = 0, false
	case int64:
		n.v, n.ok = v, true
	default:
		return fmt.Errorf("scan %T as an integer", src)
	}
	return nil
}

// failed records a failed delivery and schedules the next attempt.
func (s *Service) failed(ctx context.Context, st *stream, err error) {
	if ctx.Err() != nil {
		return // stopping: the records stay for the next start
	}
	now := s.now()
	de := classify(err)
	s.mu.Lock()
	b := s.bufs[st.ID]
	var wait time.Duration
	if b != nil {
		if b.backoff == 0 {
			b.backoff = s.opts.RetryMin
		} else if b.backoff *= 2; b.backoff > s.opts.RetryMax {
			b.backoff = s.opts.RetryMax
		}
		wait = b.backoff
		b.retryAt = now.Add(wait)
		b.lastErr, b.lastErrAt = de.Error(), now
	}
	s.mu.Unlock()
	s.log.Warn("delivery failed; retrying", "stream", st.Name, "bucket", st.Bucket(), "role", st.RoleARN, "retry-in", wait, "code", de.code, "err", err)
}

// NewS3Buckets returns S3Buckets for the S3 server at endpointURL
// (path-style; "" or "aws" means AWS's S3), signing for region ("" means
// the standard configuration, else us-east-1) with creds (nil means the
// standard credential chain of the environment).
func NewS3Buckets(ctx context.Context, endpointURL, region string, creds aws.CredentialsProvider) (S3Buckets, error) {
	cfg, err := awsconf.Load(ctx, awsconf.Overrides{Region: region, Credentials: creds})
	if err != nil {
		return S3Buckets{}, fmt.Errorf("firehose.s3-endpoint-url: %w", err)
	}
	custom := endpointURL != "" && endpointURL != "aws"
	if cfg.Region == "" {
		if !custom {
			return S3Buckets{}, errors.New("firehose.s3-region: not set, and no region in the AWS configuration")
		}
		cfg.Region = "us-east-1"
	}
	return S3Buckets{Client: awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if custom {
			o.BaseEndpoint = aws.String(endpointURL)
			o.UsePathStyle = true
		}
	})}, nil
}
