// Package firehose owns the Kinesis Data Firehose API of `flowlog serve`
// (AWS JSON 1.1, X-Amz-Target Firehose_20150804.*): DirectPut delivery
// streams with an S3 or extended S3 destination, PutRecord and
// PutRecordBatch with AWS's limits, tags, and the deliverer that writes
// each stream's buffered records as objects named as Firehose names them,
// so that flowlog's kinesis-data-firehose destination works self-hosted.
//
// Durability: PutRecord and PutRecordBatch answer only after the accepted
// records are committed to the server's SQLite store (table
// firehose_records, one row per call), so an acknowledged record survives
// a crash. The deliverer (Start) writes a stream's buffered rows as one
// object when they reach the stream's SizeInMBs or the oldest has waited
// IntervalInSeconds, then deletes them: delivery is at least once (a
// crash between the write and the delete writes the object again, as
// Firehose may). Stopping leaves what is buffered for the next start.
//
// Roles: with Options.Roles (the IAM service) the deliverer acts as each
// stream's RoleARN, as Firehose does: it assumes the role for
// firehose.amazonaws.com and writes an object only when the session may
// s3:PutObject arn:aws:s3:::BUCKET/KEY. A refused role fails the
// delivery with AWS's S3.AccessDenied error; the rows stay and are
// retried, so fixing the role delivers them (once each: nothing was
// written). UpdateDestination changes a stream's destination under its
// VersionId.
package firehose

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Limits of the API, as AWS documents them.
const (
	MaxBatchRecords = 500
	MaxBatchBytes   = 4 << 20   // the records' data in one PutRecordBatch
	MaxRecordBytes  = 1_024_000 // one record's data
	MaxTags         = 50
	// DefaultMaxStreams is the account's delivery stream quota (AWS: 5,000
	// DirectPut streams per region at most).
	DefaultMaxStreams = 5000
	// Default buffering hints, as AWS's for S3 destinations.
	DefaultSizeInMBs         = 5
	DefaultIntervalInSeconds = 300
)

// Options configure a Service.
type Options struct {
	// AccountID and Region name delivery streams in ARNs.
	AccountID, Region string
	// Buckets receives the objects. Nil means DirBuckets{Dir: BucketsDir}.
	Buckets Buckets
	// BucketsDir is where DirBuckets writes when Buckets is nil.
	BucketsDir string
	Logger     *slog.Logger
	// Now is the clock of arrival times, buffering intervals and retries;
	// nil means time.Now.
	Now func() time.Time
	// MaxStreams is the delivery stream quota; 0 means DefaultMaxStreams.
	MaxStreams int
	// Tick is how often the deliverer looks for streams whose interval
	// has passed; 0 means a second.
	Tick time.Duration
	// RetryMin and RetryMax bound the backoff between failed deliveries
	// of a stream (doubling from RetryMin); 0 means 1 s and 1 min.
	RetryMin, RetryMax time.Duration
	// Roles, when set, makes the deliverer act as each stream's RoleARN:
	// an object is written only when the role trusts ServicePrincipal and
	// may s3:PutObject it. Nil writes every stream's objects (no IAM).
	Roles Roles
}

// Validate reports the first option New cannot use.
func (o Options) Validate() error {
	if o.Buckets == nil && o.BucketsDir == "" {
		return errors.New("firehose.buckets-dir: empty, and no other bucket writer is configured")
	}
	if o.MaxStreams < 0 || o.Tick < 0 || o.RetryMin < 0 || o.RetryMax < 0 {
		return errors.New("firehose options: negative limit or duration")
	}
	return nil
}

// Service is the Firehose API and its deliverer.
type Service struct {
	db      *sql.DB
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	buckets Buckets

	// wmu orders changes of firehose_records with the buffers' accounts
	// below: a put commits and counts under it, a delivery deletes and
	// recounts under it, so the counts are exact.
	wmu  sync.Mutex
	mu   sync.Mutex // guards bufs
	bufs map[int64]*buffer
	wake chan struct{}

	roles    Roles
	smu      sync.Mutex // guards sessions
	sessions map[string]roleSession

	stop context.CancelFunc
	done chan struct{}
}

// buffer is what the deliverer knows of one stream's undelivered rows.
type buffer struct {
	bytes  int64
	oldest time.Time // arrival of the oldest row; zero when empty
	// retryAt and backoff pace deliveries after a failure; lastErr is
	// shown by DescribeDeliveryStream until a delivery succeeds.
	retryAt   time.Time
	backoff   time.Duration
	lastErr   string
	lastErrAt time.Time
}

const schema = `
CREATE TABLE IF NOT EXISTS firehose_streams (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	created INTEGER NOT NULL, -- unix ms
	extended INTEGER NOT NULL, -- 1: ExtendedS3DestinationConfiguration
	role_arn TEXT NOT NULL,
	bucket_arn TEXT NOT NULL,
	prefix TEXT NOT NULL,
	error_prefix TEXT NOT NULL,
	size_mb INTEGER NOT NULL,
	interval_s INTEGER NOT NULL,
	compression TEXT NOT NULL,
	version INTEGER NOT NULL DEFAULT 1, -- VersionId, incremented by UpdateDestination
	updated INTEGER NOT NULL DEFAULT 0 -- unix ms of the last UpdateDestination; 0: never
);
CREATE TABLE IF NOT EXISTS firehose_tags (
	stream_id INTEGER NOT NULL REFERENCES firehose_streams(id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (stream_id, key)
);
-- One row per accepted PutRecord/PutRecordBatch: the accepted records'
-- data concatenated (Firehose adds no separator), so a call costs one
-- insert. Stream ids are never reused (AUTOINCREMENT): rows of a deleted
-- stream cannot reach a new stream of the same name.
CREATE TABLE IF NOT EXISTS firehose_records (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	stream_id INTEGER NOT NULL,
	arrival INTEGER NOT NULL, -- unix ms
	size INTEGER NOT NULL,
	data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS firehose_records_stream ON firehose_records (stream_id, seq);
`

// New creates the service's tables if needed, loads the buffers' state
// from the store, and returns the service. Start runs its deliverer.
func New(ctx context.Context, db *sql.DB, opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("new firehose service: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AccountID == "" {
		opts.AccountID = api.DefaultAccountID
	}
	if opts.Region == "" {
		opts.Region = api.DefaultRegion
	}
	if opts.MaxStreams == 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.Tick == 0 {
		opts.Tick = time.Second
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = time.Minute
	}
	if opts.Buckets == nil {
		opts.Buckets = DirBuckets{Dir: opts.BucketsDir}
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create firehose tables: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	s := &Service{db: db, opts: opts, log: opts.Logger, now: opts.Now, buckets: opts.Buckets,
		bufs: map[int64]*buffer{}, wake: make(chan struct{}, 1), roles: opts.Roles, sessions: map[string]roleSession{}}
	rows, err := db.QueryContext(ctx, `SELECT stream_id, SUM(size), MIN(arrival) FROM firehose_records GROUP BY stream_id`)
	if err != nil {
		return nil, fmt.Errorf("read firehose buffers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, size, oldest int64
		if err := rows.Scan(&id, &size, &oldest); err != nil {
			return nil, fmt.Errorf("read firehose buffers: %w", err)
		}
		s.bufs[id] = &buffer{bytes: size, oldest: time.UnixMilli(oldest)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read firehose buffers: %w", err)
	}
	return s, nil
}

// migrate adds the columns a store made before UpdateDestination lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('firehose_streams')`)
	if err != nil {
		return fmt.Errorf("read firehose_streams columns: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("read firehose_streams columns: %w", err)
		}
		have[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read firehose_streams columns: %w", err)
	}
	for _, c := range []struct{ name, def string }{
		{"version", "INTEGER NOT NULL DEFAULT 1"},
		{"updated", "INTEGER NOT NULL DEFAULT 0"},
	} {
		if have[c.name] {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE firehose_streams ADD COLUMN `+c.name+` `+c.def); err != nil {
			return fmt.Errorf("add column firehose_streams.%s: %w", c.name, err)
		}
	}
	return nil
}

// Info implements api.Service.
func (s *Service) Info() api.ServiceInfo {
	return api.ServiceInfo{SigningName: "firehose", Protocol: api.ProtocolJSON11, TargetPrefix: "Firehose_20150804"}
}

// StreamARN is a delivery stream's ARN.
func (s *Service) StreamARN(name string) string {
	return "arn:aws:firehose:" + s.opts.Region + ":" + s.opts.AccountID + ":deliverystream/" + name
}

// Resources implements api.Service: the delivery stream's ARN for every
// call that names one; ListDeliveryStreams acts on "*", as in AWS's
// authorization reference.
func (s *Service) Resources(_ context.Context, call *api.Call) ([]string, error) {
	if call.Action == "ListDeliveryStreams" {
		return nil, nil
	}
	name, err := streamName(call.Body)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, nil // the operation refuses it with its own error
	}
	return []string{s.StreamARN(name)}, nil
}

// streamName reads the DeliveryStreamName of a request body. SDKs send
// it first: reading stops there rather than scanning (and checking) a
// PutRecordBatch's megabytes of records twice; the operation's own
// decoding checks the rest.
func streamName(body []byte) (string, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return fullStreamName(body)
	}
	for d.More() {
		key, err := d.Token()
		if err != nil {
			return fullStreamName(body)
		}
		if key == "DeliveryStreamName" {
			var name string
			if err := d.Decode(&name); err != nil {
				return fullStreamName(body)
			}
			return name, nil
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return fullStreamName(body)
		}
	}
	return fullStreamName(body)
}

// fullStreamName decodes the whole body, for AWS's error on a body that
// is not JSON of the right shape (and encoding/json's rules on member
// names' case).
func fullStreamName(body []byte) (string, error) {
	var t struct {
		DeliveryStreamName string
	}
	err := decode(body, &t)
	return t.DeliveryStreamName, err
}

// Serve implements api.Service.
func (s *Service) Serve(ctx context.Context, call *api.Call) (any, error) {
	switch call.Action {
	case "CreateDeliveryStream":
		return s.createDeliveryStream(ctx, call.Body)
	case "DescribeDeliveryStream":
		return s.describeDeliveryStream(ctx, call.Body)
	case "ListDeliveryStreams":
		return s.listDeliveryStreams(ctx, call.Body)
	case "DeleteDeliveryStream":
		return s.deleteDeliveryStream(ctx, call.Body)
	case "UpdateDestination":
		return s.updateDestination(ctx, call)
	case "PutRecord":
		return s.putRecord(ctx, call.Body)
	case "PutRecordBatch":
		return s.putRecordBatch(ctx, call.Body)
	case "TagDeliveryStream":
		return s.tagDeliveryStream(ctx, call.Body)
	case "UntagDeliveryStream":
		return s.untagDeliveryStream(ctx, call.Body)
	case "ListTagsForDeliveryStream":
		return s.listTagsForDeliveryStream(ctx, call.Body)
	}
	return nil, &api.Error{Status: http.StatusBadRequest, Code: "UnknownOperationException", Message: "Operation " + call.Action + " is not supported by this server"}
}

// decode reads a JSON request body into v; a body that is not JSON of
// v's shape is a SerializationException, as AWS answers.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil // the CLI sends {} or nothing for no parameters
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return api.Errorf("SerializationException", "field %s: want %s, found JSON %s", te.Field, te.Type, te.Value)
		}
		return api.Errorf("SerializationException", "request body: %v", err)
	}
	return nil
}

// decodeNamed decodes a request naming a delivery stream, and refuses
// one whose name is not the name Resources read (and the call was
// authorized for): a body naming the stream twice.
func decodeNamed(body []byte, v any, name *string) error {
	if err := decode(body, v); err != nil {
		return err
	}
	if n, err := streamName(body); err != nil || n != *name {
		return api.Errorf("SerializationException", "request body: DeliveryStreamName is given more than once")
	}
	return nil
}

func invalid(format string, args ...any) *api.Error {
	return api.Errorf("InvalidArgumentException", format, args...)
}

// validation is AWS's wording of a request that breaks the model.
func validation(value, member, constraint string) *api.Error {
	return invalid("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

func missing(member string) *api.Error {
	return invalid("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

func (s *Service) notFound(name string) *api.Error {
	return &api.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException",
		Message: "Firehose " + name + " under account " + s.opts.AccountID + " not found."}
}

// checkStreamName applies the model's DeliveryStreamName rules.
func checkStreamName(name string) error {
	if name == "" {
		return missing("deliveryStreamName")
	}
	if len(name) > 64 {
		return validation(name, "deliveryStreamName", "Member must have length less than or equal to 64")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return validation(name, "deliveryStreamName", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
		}
	}
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
