// Package logs owns the CloudWatch Logs API of `flowlog serve` (AWS JSON
// 1.1, X-Amz-Target Logs_20140328.*): log groups with retention and tags,
// log streams, PutLogEvents with AWS's batch rules, GetLogEvents with
// forward/backward tokens, and FilterLogEvents with CloudWatch's filter
// pattern syntax (Pattern), so that flowlog's cloud-watch-logs
// destination works self-hosted and people read records with `aws logs`.
//
// Everything is stored in the server's SQLite store (tables logs_*):
// events are indexed by (stream, timestamp) for GetLogEvents and by
// (group, timestamp) for FilterLogEvents. A sweeper (Start) deletes
// events older than their group's retention and the events of deleted
// groups and streams, in small transactions, and keeps storedBytes
// current.
package logs

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Limits of the API, as AWS documents them.
const (
	MaxBatchEvents     = 10_000
	MaxBatchBytes      = 1_048_576 // messages in UTF-8 plus EventOverheadBytes each
	EventOverheadBytes = 26
	MaxEventBytes      = 262_144 // one event, overhead included
	MaxBatchSpan       = 24 * time.Hour
	// MaxPastAge and MaxFutureAge bound an event's timestamp against the
	// time it arrives; events outside are rejected (rejectedLogEventsInfo).
	MaxPastAge   = 14 * 24 * time.Hour
	MaxFutureAge = 2 * time.Hour
	// MaxResponseBytes bounds the messages of one GetLogEvents or
	// FilterLogEvents answer.
	MaxResponseBytes = 1_048_576
	// DefaultMaxLogGroups is the account's log group quota (AWS: 1,000,000).
	DefaultMaxLogGroups = 1_000_000
)

// RetentionDays are the values PutRetentionPolicy accepts.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// Options configure a Service.
type Options struct {
	// AccountID and Region name resources in ARNs.
	AccountID, Region string
	Logger            *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxLogGroups is the log group quota; 0 means DefaultMaxLogGroups.
	MaxLogGroups int
	// SweepInterval is how often Start's sweeper runs; 0 means a minute.
	SweepInterval time.Duration
	// FilterScanTime bounds how long one FilterLogEvents call searches
	// before it answers with what it found and a nextToken, as AWS does
	// on large groups; 0 means 5 s.
	FilterScanTime time.Duration
}

// Service is the CloudWatch Logs API.
type Service struct {
	db    *sql.DB
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	sweep chan struct{} // wakes the sweeper after a delete
}

const schema = `
CREATE TABLE IF NOT EXISTS logs_groups (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	creation_time INTEGER NOT NULL,
	retention_days INTEGER,
	kms_key_id TEXT NOT NULL DEFAULT '',
	stored_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS logs_group_tags (
	group_id INTEGER NOT NULL REFERENCES logs_groups(id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (group_id, key)
);
CREATE TABLE IF NOT EXISTS logs_streams (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id INTEGER NOT NULL REFERENCES logs_groups(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	creation_time INTEGER NOT NULL,
	first_event INTEGER,
	last_event INTEGER,
	last_ingestion INTEGER,
	stored_bytes INTEGER NOT NULL DEFAULT 0,
	puts INTEGER NOT NULL DEFAULT 0,
	UNIQUE (group_id, name)
);
CREATE INDEX IF NOT EXISTS logs_streams_last_event ON logs_streams (group_id, last_event);
-- Events carry no foreign key: inserting 10,000 of them must not check
-- 10,000 parents, and deleting a group must not delete millions of rows
-- in one transaction. Events of deleted groups and streams are listed in
-- logs_trash and deleted by the sweeper; ids are never reused
-- (AUTOINCREMENT), so they are invisible until then.
CREATE TABLE IF NOT EXISTS logs_events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id INTEGER NOT NULL,
	stream_id INTEGER NOT NULL,
	ts INTEGER NOT NULL,
	ingestion INTEGER NOT NULL,
	size INTEGER NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_events_stream ON logs_events (stream_id, ts);
CREATE INDEX IF NOT EXISTS logs_events_group ON logs_events (group_id, ts);
CREATE TABLE IF NOT EXISTS logs_trash (
	group_id INTEGER NOT NULL,
	stream_id INTEGER NOT NULL DEFAULT 0 -- 0: the whole group
);
`

// New creates the service's tables if needed and returns the service.
func New(ctx context.Context, db *sql.DB, opts Options) (*Service, error) {
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
	if opts.MaxLogGroups == 0 {
		opts.MaxLogGroups = DefaultMaxLogGroups
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.FilterScanTime == 0 {
		opts.FilterScanTime = 5 * time.Second
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create logs tables: %w", err)
	}
	return &Service{db: db, opts: opts, log: opts.Logger, now: opts.Now, sweep: make(chan struct{}, 1)}, nil
}

// Info implements api.Service.
func (s *Service) Info() api.ServiceInfo {
	return api.ServiceInfo{SigningName: "logs", Protocol: api.ProtocolJSON11, TargetPrefix: "Logs_20140328"}
}

// GroupARN is a log group's ARN without the trailing ":*" (the form of
// logGroupArn and of the tagging actions' authorization).
func (s *Service) GroupARN(group string) string {
	return "arn:aws:logs:" + s.opts.Region + ":" + s.opts.AccountID + ":log-group:" + group
}

// StreamARN is a log stream's ARN.
func (s *Service) StreamARN(group, stream string) string {
	return s.GroupARN(group) + ":log-stream:" + stream
}

// target is what Resources needs of any request.
type target struct {
	LogGroupName       string `json:"logGroupName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
	LogStreamName      string `json:"logStreamName"`
	ResourceARN        string `json:"resourceArn"`
}

// Resources implements api.Service: the log group's ARN, or the log
// stream's for calls on one stream.
func (s *Service) Resources(_ context.Context, call *api.Call) ([]string, error) {
	var t target
	if call.Action == "PutLogEvents" {
		// The body is up to 1 MiB of events: decoded once, here, for
		// Serve too.
		in, err := decodePut(call.Body)
		if err != nil {
			return nil, err
		}
		call.Input = in
		t = in.target
	} else if err := decode(call.Body, &t); err != nil {
		return nil, err
	}
	group := t.LogGroupName
	if group == "" && t.LogGroupIdentifier != "" {
		group = groupFromIdentifier(t.LogGroupIdentifier)
	}
	switch call.Action {
	case "CreateLogStream", "DeleteLogStream", "PutLogEvents", "GetLogEvents":
		if group != "" && t.LogStreamName != "" {
			return []string{s.StreamARN(group, t.LogStreamName)}, nil
		}
	case "TagResource", "UntagResource", "ListTagsForResource":
		if t.ResourceARN != "" {
			return []string{strings.TrimSuffix(t.ResourceARN, ":*")}, nil
		}
	case "DescribeLogGroups":
		return []string{s.GroupARN("*")}, nil
	}
	// Every other action names the group with a trailing ":*", as the
	// ARN DescribeLogGroups answers: the CloudWatch Logs documentation
	// ("CloudWatch Logs resources and operations") tells policy writers to
	// use that form for all actions but the three tagging ones above.
	if group != "" {
		return []string{s.GroupARN(group) + ":*"}, nil
	}
	return nil, nil
}

// Serve implements api.Service.
func (s *Service) Serve(ctx context.Context, call *api.Call) (any, error) {
	switch call.Action {
	case "CreateLogGroup":
		return s.createLogGroup(ctx, call.Body)
	case "DeleteLogGroup":
		return s.deleteLogGroup(ctx, call.Body)
	case "DescribeLogGroups":
		return s.describeLogGroups(ctx, call.Body)
	case "PutRetentionPolicy":
		return s.putRetentionPolicy(ctx, call.Body)
	case "DeleteRetentionPolicy":
		return s.deleteRetentionPolicy(ctx, call.Body)
	case "CreateLogStream":
		return s.createLogStream(ctx, call.Body)
	case "DeleteLogStream":
		return s.deleteLogStream(ctx, call.Body)
	case "DescribeLogStreams":
		return s.describeLogStreams(ctx, call.Body)
	case "PutLogEvents":
		return s.putLogEvents(ctx, call)
	case "GetLogEvents":
		return s.getLogEvents(ctx, call.Body)
	case "FilterLogEvents":
		return s.filterLogEvents(ctx, call.Body)
	case "TagLogGroup":
		return s.tagLogGroup(ctx, call.Body)
	case "UntagLogGroup":
		return s.untagLogGroup(ctx, call.Body)
	case "ListTagsLogGroup":
		return s.listTagsLogGroup(ctx, call.Body)
	case "TagResource":
		return s.tagResource(ctx, call.Body)
	case "UntagResource":
		return s.untagResource(ctx, call.Body)
	case "ListTagsForResource":
		return s.listTagsForResource(ctx, call.Body)
	}
	return nil, &api.Error{Status: 400, Code: "UnknownOperationException", Message: "Operation " + call.Action + " is not supported by this server"}
}

// decode reads a JSON request body into v; a body that is not JSON of
// v's shape is a SerializationException, as AWS answers.
func decode(body []byte, v any) error {
	return serializationError(unmarshal(body, v))
}

// unmarshal is json.Unmarshal, except that an empty body is no parameters.
func unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil // the CLI sends {} or nothing for no parameters
	}
	return json.Unmarshal(body, v)
}

// serializationError is AWS's answer to a body unmarshal could not read
// (nil for nil).
func serializationError(err error) error {
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return api.Errorf("SerializationException", "field %s: want %s, found JSON %s", te.Field, te.Type, te.Value)
	}
	return api.Errorf("SerializationException", "request body: %v", err)
}

func invalid(format string, args ...any) *api.Error {
	return api.Errorf("InvalidParameterException", format, args...)
}

// validation is AWS's wording of a request that breaks the model.
func validation(value, member, constraint string) *api.Error {
	return invalid("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

var (
	groupNamePattern  = regexp.MustCompile(`^[.\-_/#A-Za-z0-9]+$`)
	streamNamePattern = regexp.MustCompile(`^[^:*]*$`)
)

func checkGroupName(name, member string) error {
	switch {
	case name == "":
		return invalid("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	case len(name) > 512:
		return validation(name, member, "Member must have length less than or equal to 512")
	case !groupNamePattern.MatchString(name):
		return validation(name, member, `Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+`)
	}
	return nil
}

func checkStreamName(name, member string) error {
	switch {
	case name == "":
		return invalid("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	case len(name) > 512:
		return validation(name, member, "Member must have length less than or equal to 512")
	case !streamNamePattern.MatchString(name):
		return validation(name, member, "Member must satisfy regular expression pattern: [^:*]*")
	}
	return nil
}

// groupFromIdentifier reads a logGroupIdentifier: a name or an ARN
// (arn:aws:logs:REGION:ACCOUNT:log-group:NAME, optionally ending in :*).
func groupFromIdentifier(id string) string {
	if rest, ok := strings.CutPrefix(id, "arn:"); ok {
		parts := strings.SplitN(rest, ":", 6)
		if len(parts) == 6 && parts[1] == "logs" && parts[4] == "log-group" {
			return strings.TrimSuffix(parts[5], ":*")
		}
	}
	return id
}

// groupOf picks the log group of a request that names it by
// logGroupName or logGroupIdentifier (exactly one).
func groupOf(name, identifier string) (string, error) {
	switch {
	case name != "" && identifier != "":
		return "", invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
	case identifier != "":
		g := groupFromIdentifier(identifier)
		return g, checkGroupName(g, "logGroupIdentifier")
	}
	return name, checkGroupName(name, "logGroupName")
}

var (
	errGroupNotFound  = &api.Error{Status: 400, Code: "ResourceNotFoundException", Message: "The specified log group does not exist."}
	errStreamNotFound = &api.Error{Status: 400, Code: "ResourceNotFoundException", Message: "The specified log stream does not exist."}
	errBadToken       = invalid("The specified nextToken is invalid.")
)

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// groupID returns the id and retention of a log group.
func groupID(ctx context.Context, q querier, name string) (id int64, retention sql.NullInt64, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, retention_days FROM logs_groups WHERE name = ?`, name).Scan(&id, &retention)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, retention, errGroupNotFound
	}
	if err != nil {
		return 0, retention, fmt.Errorf("read log group %s: %w", name, err)
	}
	return id, retention, nil
}

// streamID returns the ids of a log stream and its group.
func streamID(ctx context.Context, q querier, group, stream string) (gid, sid int64, retention sql.NullInt64, err error) {
	if gid, retention, err = groupID(ctx, q, group); err != nil {
		return 0, 0, retention, err
	}
	err = q.QueryRowContext(ctx, `SELECT id FROM logs_streams WHERE group_id = ? AND name = ?`, gid, stream).Scan(&sid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, retention, errStreamNotFound
	}
	if err != nil {
		return 0, 0, retention, fmt.Errorf("read log stream %s/%s: %w", group, stream, err)
	}
	return gid, sid, retention, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }
