package logs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowlog/flowlog/internal/api"
)

// insertChunk is how many events one INSERT statement carries: one
// statement per event costs a round trip into SQLite each.
const insertChunk = 100

var insertChunkSQL = insertSQL(insertChunk)

func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO logs_events (group_id, stream_id, ts, ingestion, size, message) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?)")
	}
	return b.String()
}

// InputEvent is one event of PutLogEvents.
type InputEvent struct {
	Timestamp *int64  `json:"timestamp"`
	Message   *string `json:"message"`
}

// RejectedInfo says which events of a PutLogEvents call were refused for
// their time: indexes before TooOldLogEventEndIndex (more than 14 days
// old) or ExpiredLogEventEndIndex (older than the group's retention), and
// from TooNewLogEventStartIndex on (more than 2 hours ahead). AWS expects
// events in time order; for a batch that is not, the indexes bound the
// refused events in request order and only those are refused.
type RejectedInfo struct {
	TooNewLogEventStartIndex *int `json:"tooNewLogEventStartIndex,omitempty"`
	TooOldLogEventEndIndex   *int `json:"tooOldLogEventEndIndex,omitempty"`
	ExpiredLogEventEndIndex  *int `json:"expiredLogEventEndIndex,omitempty"`
}

// PutResult is the answer to PutLogEvents.
type PutResult struct {
	NextSequenceToken     string        `json:"nextSequenceToken,omitempty"`
	RejectedLogEventsInfo *RejectedInfo `json:"rejectedLogEventsInfo,omitempty"`
}

func (s *Service) putLogEvents(ctx context.Context, call *api.Call) (any, error) {
	in, ok := call.Input.(*putInput)
	if !ok { // Serve without Resources
		in = &putInput{}
		in.err = decode(call.Body, in)
	}
	call.Input = nil // the events are not kept with the call (an auditor may)
	if in.err != nil {
		return nil, in.err
	}
	if err := (streamRef{in.LogGroupName, in.LogStreamName}).check(); err != nil {
		return nil, err
	}
	return s.PutEvents(ctx, in.LogGroupName, in.LogStreamName, in.LogEvents)
}

// putInput is a PutLogEvents request, with target's fields (which
// Resources reads) so that one decoding of the body serves both
// Resources and Serve.
type putInput struct {
	target
	LogEvents     []InputEvent `json:"logEvents"`
	SequenceToken string       `json:"sequenceToken"` // accepted and ignored, as AWS does
	// err is the decoding error Serve returns: one Resources does not
	// (a type error outside target's fields) comes after authorization,
	// as when Serve decoded the body itself.
	err error
}

// decodePut decodes a PutLogEvents body for Resources, which fails with
// exactly the errors decoding the body into a target gave: a syntax error
// (the same for any shape), or the first type error among target's
// fields. json reports only the first type error of the body, so when it
// is not in target's fields the body is decoded again into a target
// alone to find one there; that costs a second decoding only for a
// request that fails.
func decodePut(body []byte) (*putInput, error) {
	in := &putInput{}
	err := unmarshal(body, in)
	var te *json.UnmarshalTypeError
	if err == nil || !errors.As(err, &te) {
		return in, serializationError(err)
	}
	var t target
	if terr := decode(body, &t); terr != nil {
		return nil, terr
	}
	in.err = serializationError(err)
	return in, nil
}

// checkBatch applies PutLogEvents' limits to a batch.
func checkBatch(events []InputEvent) error {
	switch {
	case events == nil:
		return invalid("1 validation error detected: Value null at 'logEvents' failed to satisfy constraint: Member must not be null")
	case len(events) == 0:
		return validation("[]", "logEvents", "Member must have length greater than or equal to 1")
	case len(events) > MaxBatchEvents:
		return invalid("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to %d (found %d events)", MaxBatchEvents, len(events))
	}
	size := 0
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i, e := range events {
		if e.Timestamp == nil {
			return invalid("1 validation error detected: Value null at 'logEvents.%d.member.timestamp' failed to satisfy constraint: Member must not be null", i+1)
		}
		if e.Message == nil {
			return invalid("1 validation error detected: Value null at 'logEvents.%d.member.message' failed to satisfy constraint: Member must not be null", i+1)
		}
		if *e.Timestamp < 0 {
			return validation(strconv.FormatInt(*e.Timestamp, 10), fmt.Sprintf("logEvents.%d.member.timestamp", i+1), "Member must have value greater than or equal to 0")
		}
		if *e.Message == "" {
			return validation("", fmt.Sprintf("logEvents.%d.member.message", i+1), "Member must have length greater than or equal to 1")
		}
		n := len(*e.Message) + EventOverheadBytes
		if n > MaxEventBytes {
			return invalid("Log event too large: %d bytes exceeds limit of %d", n, MaxEventBytes)
		}
		size += n
		lo, hi = min(lo, *e.Timestamp), max(hi, *e.Timestamp)
	}
	if size > MaxBatchBytes {
		return invalid("Upload too large: %d bytes exceeds limit of %d", size, MaxBatchBytes)
	}
	if hi-lo > MaxBatchSpan.Milliseconds() {
		return invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	return nil
}

// PutEvents stores events in a stream, in one transaction, with
// PutLogEvents' rules: a batch breaking the limits is refused whole;
// events too old (14 days, or the group's retention) or too new (2 hours
// ahead) are left out and reported.
func (s *Service) PutEvents(ctx context.Context, group, stream string, events []InputEvent) (PutResult, error) {
	if err := checkBatch(events); err != nil {
		return PutResult{}, err
	}
	now := s.now()
	nowMS := ms(now)
	tooOld, tooNew := nowMS-MaxPastAge.Milliseconds(), nowMS+MaxFutureAge.Milliseconds()
	var (
		info     RejectedInfo
		rejected bool
		res      PutResult
	)
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		gid, sid, retention, err := streamID(ctx, tx, group, stream)
		if err != nil {
			return err
		}
		expired := int64(math.MinInt64)
		if retention.Valid {
			expired = nowMS - retention.Int64*24*3600*1000
		}
		stmt, err := tx.PrepareContext(ctx, insertChunkSQL)
		if err != nil {
			return fmt.Errorf("put log events: %w", err)
		}
		defer stmt.Close()
		args := make([]any, 0, insertChunk*6)
		var (
			bytes, n int64
			lo, hi   = int64(math.MaxInt64), int64(math.MinInt64)
		)
		flush := func() error {
			if len(args) == 0 {
				return nil
			}
			var err error
			if len(args) == cap(args) {
				_, err = stmt.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, insertSQL(len(args)/6), args...)
			}
			args = args[:0]
			if err != nil {
				return fmt.Errorf("put log events: %w", err)
			}
			return nil
		}
		for i, e := range events {
			ts := *e.Timestamp
			switch {
			case ts > tooNew:
				if info.TooNewLogEventStartIndex == nil {
					info.TooNewLogEventStartIndex = ptr(i)
				}
				rejected = true
				continue
			case ts < tooOld:
				info.TooOldLogEventEndIndex = ptr(i + 1)
				rejected = true
				continue
			case ts < expired:
				info.ExpiredLogEventEndIndex = ptr(i + 1)
				rejected = true
				continue
			}
			msg := *e.Message
			if !utf8.ValidString(msg) {
				msg = strings.ToValidUTF8(msg, "\uFFFD")
			}
			args = append(args, gid, sid, ts, nowMS, len(msg), msg)
			bytes += int64(len(msg))
			n++
			lo, hi = min(lo, ts), max(hi, ts)
			if len(args) == cap(args) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		var puts int64
		if n > 0 {
			err = tx.QueryRowContext(ctx, `UPDATE logs_streams SET
				first_event = min(coalesce(first_event, ?), ?), last_event = max(coalesce(last_event, ?), ?),
				last_ingestion = ?, stored_bytes = stored_bytes + ?, puts = puts + 1
				WHERE id = ? RETURNING puts`, lo, lo, hi, hi, nowMS, bytes, sid).Scan(&puts)
		} else {
			err = tx.QueryRowContext(ctx, `UPDATE logs_streams SET puts = puts + 1 WHERE id = ? RETURNING puts`, sid).Scan(&puts)
		}
		if err != nil {
			return fmt.Errorf("put log events: update stream: %w", err)
		}
		if bytes > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE logs_groups SET stored_bytes = stored_bytes + ? WHERE id = ?`, bytes, gid); err != nil {
				return fmt.Errorf("put log events: update group: %w", err)
			}
		}
		res.NextSequenceToken = sequenceToken(puts)
		return nil
	})
	if err != nil {
		return PutResult{}, err
	}
	if rejected {
		res.RejectedLogEventsInfo = &info
	}
	return res, nil
}

func ptr[T any](v T) *T { return &v }

// --- GetLogEvents ---

// position is a place in a stream's event order (timestamp, then
// arrival): a token names the events after (forward) or before
// (backward) it.
type position struct{ ts, seq int64 }

func (p position) token(dir byte) string {
	return fmt.Sprintf("%c/%019d%019d", dir, p.ts, p.seq)
}

func parsePosition(tok string) (byte, position, error) {
	if len(tok) != 2+38 || (tok[0] != 'f' && tok[0] != 'b') || tok[1] != '/' {
		return 0, position{}, errBadToken
	}
	ts, err1 := strconv.ParseInt(tok[2:21], 10, 64)
	seq, err2 := strconv.ParseInt(tok[21:], 10, 64)
	if err1 != nil || err2 != nil || ts < 0 || seq < 0 {
		return 0, position{}, errBadToken
	}
	return tok[0], position{ts, seq}, nil
}

// OutputEvent is an event of GetLogEvents.
type OutputEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

// GetResult is the answer to GetLogEvents.
type GetResult struct {
	Events            []OutputEvent `json:"events"`
	NextForwardToken  string        `json:"nextForwardToken"`
	NextBackwardToken string        `json:"nextBackwardToken"`
}

func (s *Service) getLogEvents(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupName       string `json:"logGroupName"`
		LogGroupIdentifier string `json:"logGroupIdentifier"`
		LogStreamName      string `json:"logStreamName"`
		StartTime          *int64 `json:"startTime"`
		EndTime            *int64 `json:"endTime"`
		NextToken          string `json:"nextToken"`
		Limit              *int   `json:"limit"`
		StartFromHead      bool   `json:"startFromHead"`
		Unmask             bool   `json:"unmask"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	group, err := groupOf(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if err := checkStreamName(in.LogStreamName, "logStreamName"); err != nil {
		return nil, err
	}
	limit, err := checkLimit(in.Limit, MaxBatchEvents, MaxBatchEvents)
	if err != nil {
		return nil, err
	}
	start, end, err := timeRange(in.StartTime, in.EndTime)
	if err != nil {
		return nil, err
	}
	_, sid, _, err := streamID(ctx, s.db, group, in.LogStreamName)
	if err != nil {
		return nil, err
	}
	// GetLogEvents' endTime is exclusive; a position before (end, 0)
	// excludes it.
	forward, pos := in.StartFromHead, position{start, 0}
	if !forward {
		pos = position{end, 0}
	}
	if in.NextToken != "" {
		var dir byte
		if dir, pos, err = parsePosition(in.NextToken); err != nil {
			return nil, err
		}
		forward = dir == 'f'
	}
	var q string
	if forward {
		q = `SELECT seq, ts, ingestion, message FROM logs_events WHERE stream_id = ? AND (ts, seq) > (?, ?) AND ts >= ? AND ts < ? ORDER BY ts, seq LIMIT ?`
	} else {
		q = `SELECT seq, ts, ingestion, message FROM logs_events WHERE stream_id = ? AND (ts, seq) < (?, ?) AND ts >= ? AND ts < ? ORDER BY ts DESC, seq DESC LIMIT ?`
	}
	rows, err := s.db.QueryContext(ctx, q, sid, pos.ts, pos.seq, start, end, limit)
	if err != nil {
		return nil, fmt.Errorf("get log events: %w", err)
	}
	defer rows.Close()
	var (
		out         = GetResult{Events: []OutputEvent{}}
		first, last position
		size        int
	)
	for rows.Next() {
		var (
			e   OutputEvent
			seq int64
		)
		if err := rows.Scan(&seq, &e.Timestamp, &e.IngestionTime, &e.Message); err != nil {
			return nil, fmt.Errorf("get log events: %w", err)
		}
		size += len(e.Message) + EventOverheadBytes
		if size > MaxResponseBytes && len(out.Events) > 0 {
			break
		}
		if len(out.Events) == 0 {
			first = position{e.Timestamp, seq}
		}
		last = position{e.Timestamp, seq}
		out.Events = append(out.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get log events: %w", err)
	}
	if len(out.Events) == 0 {
		// Nothing further that way: the same tokens again, which is how
		// clients know they reached the end.
		out.NextForwardToken, out.NextBackwardToken = pos.token('f'), pos.token('b')
		return out, nil
	}
	if !forward {
		slices.Reverse(out.Events)
		first, last = last, first
	}
	out.NextForwardToken, out.NextBackwardToken = last.token('f'), first.token('b')
	return out, nil
}

// timeRange reads optional start and end times (ms); absent ones are
// open.
func timeRange(start, end *int64) (int64, int64, error) {
	lo, hi := int64(0), int64(math.MaxInt64)
	if start != nil {
		if *start < 0 {
			return 0, 0, validation(strconv.FormatInt(*start, 10), "startTime", "Member must have value greater than or equal to 0")
		}
		lo = *start
	}
	if end != nil {
		if *end < 0 {
			return 0, 0, validation(strconv.FormatInt(*end, 10), "endTime", "Member must have value greater than or equal to 0")
		}
		hi = *end
	}
	if lo > hi {
		return 0, 0, invalid("startTime %d is after endTime %d", lo, hi)
	}
	return lo, hi, nil
}

// --- FilterLogEvents ---

// Event is an event of FilterLogEvents.
type Event struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

// Query selects events of a log group for FilterEvents.
type Query struct {
	// Streams limits the search to these streams; StreamPrefix to
	// streams whose names start with it. At most one may be set.
	Streams      []string
	StreamPrefix string
	// Start and End bound the events' timestamps (ms since the epoch),
	// both inclusive; 0 End means no bound.
	Start, End int64
	// Pattern is a filter pattern (ParsePattern); "" matches every event.
	Pattern string
	// Limit is the most events returned; 0 means 10,000.
	Limit int
	// NextToken continues an earlier call that returned it.
	NextToken string
}

// FilterEvents returns the events of a log group that q selects, oldest
// first, and a token to continue with ("" when there are no more). It
// answers FilterLogEvents and serves the web console. A call stops
// early, with a token, after q.Limit events, MaxResponseBytes of
// messages, or Options.FilterScanTime of searching, as AWS does: a page
// may be short, or empty, and still have a token.
func (s *Service) FilterEvents(ctx context.Context, group string, q Query) ([]Event, string, error) {
	if len(q.Streams) > 0 && q.StreamPrefix != "" {
		return nil, "", invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters")
	}
	pat, err := ParsePattern(q.Pattern)
	if err != nil {
		return nil, "", invalid("Invalid filter pattern: %v", err)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = MaxBatchEvents
	}
	end := q.End
	if end == 0 {
		end = math.MaxInt64
	}
	pos := position{q.Start, 0}
	if q.NextToken != "" {
		p, err := decodeToken(q.NextToken, 3)
		if err != nil || p[0] != "e" {
			return nil, "", errBadToken
		}
		ts, err1 := strconv.ParseInt(p[1], 10, 64)
		seq, err2 := strconv.ParseInt(p[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, "", errBadToken
		}
		pos = position{ts, seq}
	}
	gid, _, err := groupID(ctx, s.db, group)
	if err != nil {
		return nil, "", err
	}
	names, err := s.streamNames(ctx, gid)
	if err != nil {
		return nil, "", err
	}
	var only map[int64]bool // nil: every stream
	if len(q.Streams) > 0 || q.StreamPrefix != "" {
		only = map[int64]bool{}
		for id, name := range names {
			if q.StreamPrefix != "" && strings.HasPrefix(name, q.StreamPrefix) || slices.Contains(q.Streams, name) {
				only[id] = true
			}
		}
		if len(only) == 0 {
			return []Event{}, "", nil
		}
	}
	base := `SELECT seq, stream_id, ts, ingestion, message FROM logs_events WHERE group_id = ? AND (ts, seq) > (?, ?) AND ts <= ?`
	var extra []any
	if only != nil && len(only) <= 64 {
		base += ` AND stream_id IN (` + strings.Repeat("?,", len(only)-1) + `?)`
		for id := range only {
			extra = append(extra, id)
		}
	}
	for _, t := range pat.Required() {
		// instr is case-sensitive, as terms are; it spares decoding
		// rows that cannot match.
		base += ` AND instr(message, ?) > 0`
		extra = append(extra, t)
	}
	base += ` ORDER BY ts, seq LIMIT ?`
	const page = 1000
	deadline := time.Now().Add(s.opts.FilterScanTime)
	var (
		out  = []Event{}
		size int
	)
	for {
		args := append([]any{gid, pos.ts, pos.seq, end}, extra...)
		args = append(args, page)
		n, full, err := s.filterPage(ctx, base, args, func(seq, sid, ts, ingestion int64, msg string) bool {
			pos = position{ts, seq}
			if only != nil && !only[sid] || !pat.Match(msg) {
				return true
			}
			out = append(out, Event{LogStreamName: names[sid], Timestamp: ts, Message: msg, IngestionTime: ingestion, EventID: fmt.Sprintf("%019d%019d", ts, seq)})
			size += len(msg) + EventOverheadBytes
			return len(out) < limit && size < MaxResponseBytes
		})
		if err != nil {
			return nil, "", err
		}
		if full {
			return out, encodeToken("e", strconv.FormatInt(pos.ts, 10), strconv.FormatInt(pos.seq, 10)), nil
		}
		if n < page {
			return out, "", nil
		}
		if time.Now().After(deadline) {
			return out, encodeToken("e", strconv.FormatInt(pos.ts, 10), strconv.FormatInt(pos.seq, 10)), nil
		}
	}
}

// filterPage runs one page of a filter query, calling each for every row
// until it returns false (full). n is the number of rows read.
func (s *Service) filterPage(ctx context.Context, query string, args []any, each func(seq, sid, ts, ingestion int64, msg string) bool) (n int, full bool, err error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, false, fmt.Errorf("filter log events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq, sid, ts, ingestion int64
			msg                     string
		)
		if err := rows.Scan(&seq, &sid, &ts, &ingestion, &msg); err != nil {
			return n, false, fmt.Errorf("filter log events: %w", err)
		}
		n++
		if !each(seq, sid, ts, ingestion, msg) {
			return n, true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return n, false, fmt.Errorf("filter log events: %w", err)
	}
	return n, false, nil
}

func (s *Service) streamNames(ctx context.Context, gid int64) (map[int64]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name FROM logs_streams WHERE group_id = ?`, gid)
	if err != nil {
		return nil, fmt.Errorf("list log streams: %w", err)
	}
	defer rows.Close()
	names := map[int64]string{}
	for rows.Next() {
		var (
			id   int64
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("list log streams: %w", err)
		}
		names[id] = name
	}
	return names, rows.Err()
}

func (s *Service) filterLogEvents(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupName        string   `json:"logGroupName"`
		LogGroupIdentifier  string   `json:"logGroupIdentifier"`
		LogStreamNames      []string `json:"logStreamNames"`
		LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
		StartTime           *int64   `json:"startTime"`
		EndTime             *int64   `json:"endTime"`
		FilterPattern       string   `json:"filterPattern"`
		NextToken           string   `json:"nextToken"`
		Limit               *int     `json:"limit"`
		Interleaved         bool     `json:"interleaved"` // always, as AWS now
		Unmask              bool     `json:"unmask"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	group, err := groupOf(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	limit, err := checkLimit(in.Limit, MaxBatchEvents, MaxBatchEvents)
	if err != nil {
		return nil, err
	}
	if len(in.LogStreamNames) > 100 {
		return nil, invalid("1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length less than or equal to 100")
	}
	for i, n := range in.LogStreamNames {
		if err := checkStreamName(n, fmt.Sprintf("logStreamNames.%d.member", i+1)); err != nil {
			return nil, err
		}
	}
	if len(in.FilterPattern) > MaxPatternLength {
		return nil, validation(in.FilterPattern, "filterPattern", fmt.Sprintf("Member must have length less than or equal to %d", MaxPatternLength))
	}
	start, end, err := timeRange(in.StartTime, in.EndTime)
	if err != nil {
		return nil, err
	}
	if end == math.MaxInt64 {
		end = 0
	}
	events, next, err := s.FilterEvents(ctx, group, Query{
		Streams: in.LogStreamNames, StreamPrefix: in.LogStreamNamePrefix,
		Start: start, End: end, Pattern: in.FilterPattern, Limit: limit, NextToken: in.NextToken,
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Events             []Event  `json:"events"`
		SearchedLogStreams []string `json:"searchedLogStreams"`
		NextToken          string   `json:"nextToken,omitempty"`
	}{events, []string{}, next}, nil
}

// Messages returns the messages of a log group's events whose timestamps
// lie in [since, until) (zero: open), oldest first, at most limit of
// them; truncated says more were left out. It serves the web console.
func (s *Service) Messages(ctx context.Context, group string, since, until time.Time, limit int) (msgs []string, truncated bool, err error) {
	q := Query{Limit: min(max(limit, 1), MaxBatchEvents)}
	if !since.IsZero() {
		q.Start = max(since.UnixMilli(), 0)
	}
	if !until.IsZero() {
		q.End = until.UnixMilli() - 1
		if q.End < q.Start {
			return nil, false, nil
		}
	}
	for {
		events, next, err := s.FilterEvents(ctx, group, q)
		if err != nil {
			return nil, false, err
		}
		for _, e := range events {
			if len(msgs) == limit {
				return msgs, true, nil
			}
			msgs = append(msgs, e.Message)
		}
		if next == "" {
			return msgs, false, nil
		}
		if len(msgs) == limit {
			// More may follow: look for one.
			q.Limit = 1
		} else {
			q.Limit = min(limit-len(msgs), MaxBatchEvents)
		}
		q.NextToken = next
	}
}
