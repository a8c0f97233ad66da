package logs

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flowlog/flowlog/internal/api"
)

// Group is a log group as DescribeLogGroups shows it.
type Group struct {
	LogGroupName      string `json:"logGroupName"`
	CreationTime      int64  `json:"creationTime"`
	RetentionInDays   *int   `json:"retentionInDays,omitempty"`
	MetricFilterCount int    `json:"metricFilterCount"`
	// ARN ends in ":*", as AWS answers it; LogGroupARN does not.
	ARN           string `json:"arn"`
	LogGroupARN   string `json:"logGroupArn"`
	StoredBytes   int64  `json:"storedBytes"`
	KmsKeyID      string `json:"kmsKeyId,omitempty"`
	LogGroupClass string `json:"logGroupClass"`
}

// Stream is a log stream as DescribeLogStreams shows it. StoredBytes is
// always 0, as AWS has answered since 2019 (the group's counts).
type Stream struct {
	LogStreamName       string `json:"logStreamName"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp *int64 `json:"firstEventTimestamp,omitempty"`
	LastEventTimestamp  *int64 `json:"lastEventTimestamp,omitempty"`
	LastIngestionTime   *int64 `json:"lastIngestionTime,omitempty"`
	UploadSequenceToken string `json:"uploadSequenceToken,omitempty"`
	ARN                 string `json:"arn"`
	StoredBytes         int64  `json:"storedBytes"`
}

// sequenceToken renders a stream's count of accepted PutLogEvents calls
// the way AWS's tokens look (a long decimal number). Tokens are accepted
// and ignored, as AWS has done since January 2023.
func sequenceToken(puts int64) string {
	return fmt.Sprintf("49%054d", puts)
}

// encodeToken and decodeToken make pagination tokens: opaque to clients,
// a position to us.
func encodeToken(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

func decodeToken(tok string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, errBadToken
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n {
		return nil, errBadToken
	}
	return parts, nil
}

func checkLimit(limit *int, max, def int) (int, error) {
	if limit == nil {
		return def, nil
	}
	switch {
	case *limit < 1:
		return 0, validation(strconv.Itoa(*limit), "limit", "Member must have value greater than or equal to 1")
	case *limit > max:
		return 0, validation(strconv.Itoa(*limit), "limit", fmt.Sprintf("Member must have value less than or equal to %d", max))
	}
	return *limit, nil
}

func checkTags(tags map[string]string) error {
	if len(tags) > 50 {
		return invalid("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || strings.HasPrefix(k, "aws:") {
			return validation(k, "tags.key", "Member must have length between 1 and 128 and not start with aws:")
		}
		if len(v) > 256 {
			return validation(v, "tags."+k, "Member must have length less than or equal to 256")
		}
	}
	return nil
}

func (s *Service) createLogGroup(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupName string            `json:"logGroupName"`
		KmsKeyID     string            `json:"kmsKeyId"`
		Tags         map[string]string `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.LogGroupName, "logGroupName"); err != nil {
		return nil, err
	}
	if len(in.KmsKeyID) > 256 {
		return nil, validation(in.KmsKeyID, "kmsKeyId", "Member must have length less than or equal to 256")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	return nil, s.CreateGroup(ctx, in.LogGroupName, in.KmsKeyID, in.Tags)
}

// CreateGroup creates a log group; a group of that name is a
// ResourceAlreadyExistsException.
func (s *Service) CreateGroup(ctx context.Context, name, kmsKeyID string, tags map[string]string) error {
	return api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM logs_groups`).Scan(&n); err != nil {
			return fmt.Errorf("count log groups: %w", err)
		}
		if n >= s.opts.MaxLogGroups {
			return api.Errorf("LimitExceededException", "Resource limit exceeded: the account has %d log groups, the most this server allows", n)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO logs_groups (name, creation_time, kms_key_id) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			name, ms(s.now()), kmsKeyID)
		if err != nil {
			return fmt.Errorf("create log group %s: %w", name, err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return api.Errorf("ResourceAlreadyExistsException", "The specified log group already exists")
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("create log group %s: %w", name, err)
		}
		return putTags(ctx, tx, id, tags)
	})
}

func putTags(ctx context.Context, tx *sql.Tx, groupID int64, tags map[string]string) error {
	for k, v := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO logs_group_tags (group_id, key, value) VALUES (?, ?, ?) ON CONFLICT (group_id, key) DO UPDATE SET value = excluded.value`, groupID, k, v); err != nil {
			return fmt.Errorf("tag log group: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM logs_group_tags WHERE group_id = ?`, groupID).Scan(&n); err != nil {
		return fmt.Errorf("count tags: %w", err)
	}
	if n > 50 {
		return api.Errorf("TooManyTagsException", "A resource can have no more than 50 tags; this one would have %d", n)
	}
	return nil
}

type groupNameOnly struct {
	LogGroupName string `json:"logGroupName"`
}

func (s *Service) deleteLogGroup(ctx context.Context, body []byte) (any, error) {
	var in groupNameOnly
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.LogGroupName, "logGroupName"); err != nil {
		return nil, err
	}
	return nil, s.DeleteGroup(ctx, in.LogGroupName)
}

// DeleteGroup deletes a log group, its streams and (soon after, by the
// sweeper) its events.
func (s *Service) DeleteGroup(ctx context.Context, name string) error {
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		id, _, err := groupID(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO logs_trash (group_id) VALUES (?)`, id); err != nil {
			return fmt.Errorf("delete log group %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM logs_groups WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete log group %s: %w", name, err)
		}
		return nil
	})
	if err == nil {
		s.wakeSweeper()
	}
	return err
}

func (s *Service) wakeSweeper() {
	select {
	case s.sweep <- struct{}{}:
	default:
	}
}

func (s *Service) describeLogGroups(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupNamePrefix  string `json:"logGroupNamePrefix"`
		LogGroupNamePattern string `json:"logGroupNamePattern"`
		NextToken           string `json:"nextToken"`
		Limit               *int   `json:"limit"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := checkLimit(in.Limit, 50, 50)
	if err != nil {
		return nil, err
	}
	if in.LogGroupNamePrefix != "" && in.LogGroupNamePattern != "" {
		return nil, invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
	}
	if in.LogGroupNamePrefix != "" {
		if err := checkGroupName(in.LogGroupNamePrefix, "logGroupNamePrefix"); err != nil {
			return nil, err
		}
	}
	if in.LogGroupNamePattern != "" && !groupNamePattern.MatchString(in.LogGroupNamePattern) {
		return nil, validation(in.LogGroupNamePattern, "logGroupNamePattern", `Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]*`)
	}
	after := ""
	if in.NextToken != "" {
		p, err := decodeToken(in.NextToken, 1)
		if err != nil {
			return nil, err
		}
		after = p[0]
	}
	groups, more, err := s.Groups(ctx, GroupQuery{Prefix: in.LogGroupNamePrefix, Contains: in.LogGroupNamePattern, After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := struct {
		LogGroups []Group `json:"logGroups"`
		NextToken string  `json:"nextToken,omitempty"`
	}{LogGroups: groups}
	if more {
		out.NextToken = encodeToken(groups[len(groups)-1].LogGroupName)
	}
	return out, nil
}

// GroupQuery selects log groups.
type GroupQuery struct {
	Prefix   string // names starting with it
	Contains string // names containing it, ignoring case
	After    string // names after it (pagination)
	Limit    int    // at most this many; 0 means all
}

// Groups returns log groups in name order, and whether more follow.
func (s *Service) Groups(ctx context.Context, q GroupQuery) ([]Group, bool, error) {
	query := `SELECT id, name, creation_time, retention_days, kms_key_id, stored_bytes FROM logs_groups WHERE name > ?`
	args := []any{q.After}
	if q.Prefix != "" {
		// Names are ASCII below 0x7f (groupNamePattern).
		query += ` AND name >= ? AND name < ?`
		args = append(args, q.Prefix, q.Prefix+"\x7f")
	}
	if q.Contains != "" {
		query += ` AND instr(lower(name), lower(?)) > 0`
		args = append(args, q.Contains)
	}
	query += ` ORDER BY name`
	if q.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, q.Limit+1)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list log groups: %w", err)
	}
	defer rows.Close()
	groups := []Group{}
	for rows.Next() {
		var (
			id        int64
			g         Group
			retention sql.NullInt64
		)
		if err := rows.Scan(&id, &g.LogGroupName, &g.CreationTime, &retention, &g.KmsKeyID, &g.StoredBytes); err != nil {
			return nil, false, fmt.Errorf("list log groups: %w", err)
		}
		if retention.Valid {
			d := int(retention.Int64)
			g.RetentionInDays = &d
		}
		g.LogGroupARN = s.GroupARN(g.LogGroupName)
		g.ARN = g.LogGroupARN + ":*"
		g.LogGroupClass = "STANDARD"
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list log groups: %w", err)
	}
	more := q.Limit > 0 && len(groups) > q.Limit
	if more {
		groups = groups[:q.Limit]
	}
	return groups, more, nil
}

func (s *Service) putRetentionPolicy(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupName    string `json:"logGroupName"`
		RetentionInDays *int   `json:"retentionInDays"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.LogGroupName, "logGroupName"); err != nil {
		return nil, err
	}
	if in.RetentionInDays == nil {
		return nil, invalid("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null")
	}
	if !slices.Contains(retentionDays, *in.RetentionInDays) {
		vals := make([]string, len(retentionDays))
		for i, d := range retentionDays {
			vals[i] = strconv.Itoa(d)
		}
		return nil, validation(strconv.Itoa(*in.RetentionInDays), "retentionInDays", "Member must satisfy enum value set: ["+strings.Join(vals, ", ")+"]")
	}
	return nil, s.setRetention(ctx, in.LogGroupName, in.RetentionInDays)
}

func (s *Service) deleteRetentionPolicy(ctx context.Context, body []byte) (any, error) {
	var in groupNameOnly
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.LogGroupName, "logGroupName"); err != nil {
		return nil, err
	}
	return nil, s.setRetention(ctx, in.LogGroupName, nil)
}

func (s *Service) setRetention(ctx context.Context, group string, days *int) error {
	var v sql.NullInt64
	if days != nil {
		v = sql.NullInt64{Int64: int64(*days), Valid: true}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE logs_groups SET retention_days = ? WHERE name = ?`, v, group)
	if err != nil {
		return fmt.Errorf("set retention of log group %s: %w", group, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errGroupNotFound
	}
	if days != nil {
		s.wakeSweeper()
	}
	return nil
}

type streamRef struct {
	LogGroupName  string `json:"logGroupName"`
	LogStreamName string `json:"logStreamName"`
}

func (r streamRef) check() error {
	if err := checkGroupName(r.LogGroupName, "logGroupName"); err != nil {
		return err
	}
	return checkStreamName(r.LogStreamName, "logStreamName")
}

func (s *Service) createLogStream(ctx context.Context, body []byte) (any, error) {
	var in streamRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	return nil, s.CreateStream(ctx, in.LogGroupName, in.LogStreamName)
}

// CreateStream creates a log stream in a group.
func (s *Service) CreateStream(ctx context.Context, group, stream string) error {
	return api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		gid, _, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO logs_streams (group_id, name, creation_time) VALUES (?, ?, ?) ON CONFLICT (group_id, name) DO NOTHING`, gid, stream, ms(s.now()))
		if err != nil {
			return fmt.Errorf("create log stream %s/%s: %w", group, stream, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.Errorf("ResourceAlreadyExistsException", "The specified log stream already exists")
		}
		return nil
	})
}

func (s *Service) deleteLogStream(ctx context.Context, body []byte) (any, error) {
	var in streamRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		gid, sid, _, err := streamID(ctx, tx, in.LogGroupName, in.LogStreamName)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO logs_trash (group_id, stream_id) VALUES (?, ?)`, gid, sid); err != nil {
			return fmt.Errorf("delete log stream: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE logs_groups SET stored_bytes = stored_bytes - (SELECT stored_bytes FROM logs_streams WHERE id = ?) WHERE id = ?`, sid, gid); err != nil {
			return fmt.Errorf("delete log stream: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM logs_streams WHERE id = ?`, sid); err != nil {
			return fmt.Errorf("delete log stream: %w", err)
		}
		return nil
	})
	if err == nil {
		s.wakeSweeper()
	}
	return nil, err
}

func (s *Service) describeLogStreams(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupName        string `json:"logGroupName"`
		LogGroupIdentifier  string `json:"logGroupIdentifier"`
		LogStreamNamePrefix string `json:"logStreamNamePrefix"`
		OrderBy             string `json:"orderBy"`
		Descending          bool   `json:"descending"`
		NextToken           string `json:"nextToken"`
		Limit               *int   `json:"limit"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	group, err := groupOf(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	limit, err := checkLimit(in.Limit, 50, 50)
	if err != nil {
		return nil, err
	}
	byTime := false
	switch in.OrderBy {
	case "", "LogStreamName":
	case "LastEventTime":
		byTime = true
		if in.LogStreamNamePrefix != "" {
			return nil, invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
		}
	default:
		return nil, validation(in.OrderBy, "orderBy", "Member must satisfy enum value set: [LogStreamName, LastEventTime]")
	}
	if in.LogStreamNamePrefix != "" {
		if err := checkStreamName(in.LogStreamNamePrefix, "logStreamNamePrefix"); err != nil {
			return nil, err
		}
	}
	gid, _, err := groupID(ctx, s.db, group)
	if err != nil {
		return nil, err
	}
	cmpOp, dir := ">", "ASC"
	if in.Descending {
		cmpOp, dir = "<", "DESC"
	}
	query := `SELECT id, name, creation_time, first_event, last_event, last_ingestion, puts FROM logs_streams WHERE group_id = ?`
	args := []any{gid}
	if byTime {
		if in.NextToken != "" {
			p, err := decodeToken(in.NextToken, 3)
			if err != nil || p[0] != "t" {
				return nil, errBadToken
			}
			last, err1 := strconv.ParseInt(p[1], 10, 64)
			id, err2 := strconv.ParseInt(p[2], 10, 64)
			if err1 != nil || err2 != nil {
				return nil, errBadToken
			}
			query += ` AND (coalesce(last_event, 0), id) ` + cmpOp + ` (?, ?)`
			args = append(args, last, id)
		}
		query += ` ORDER BY coalesce(last_event, 0) ` + dir + `, id ` + dir
	} else {
		if in.NextToken != "" {
			p, err := decodeToken(in.NextToken, 2)
			if err != nil || p[0] != "n" {
				return nil, errBadToken
			}
			query += ` AND name ` + cmpOp + ` ?`
			args = append(args, p[1])
		}
		if in.LogStreamNamePrefix != "" {
			query += ` AND substr(name, 1, length(?)) = ?`
			args = append(args, in.LogStreamNamePrefix, in.LogStreamNamePrefix)
		}
		query += ` ORDER BY name ` + dir
	}
	query += ` LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list log streams of %s: %w", group, err)
	}
	defer rows.Close()
	type row struct {
		id   int64
		last int64
	}
	var (
		streams = []Stream{}
		keys    []row
	)
	for rows.Next() {
		var (
			st                     Stream
			id, puts               int64
			first, last, ingestion sql.NullInt64
		)
		if err := rows.Scan(&id, &st.LogStreamName, &st.CreationTime, &first, &last, &ingestion, &puts); err != nil {
			return nil, fmt.Errorf("list log streams of %s: %w", group, err)
		}
		st.FirstEventTimestamp = nullable(first)
		st.LastEventTimestamp = nullable(last)
		st.LastIngestionTime = nullable(ingestion)
		if puts > 0 {
			st.UploadSequenceToken = sequenceToken(puts)
		}
		st.ARN = s.StreamARN(group, st.LogStreamName)
		streams = append(streams, st)
		keys = append(keys, row{id, last.Int64})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list log streams of %s: %w", group, err)
	}
	out := struct {
		LogStreams []Stream `json:"logStreams"`
		NextToken  string   `json:"nextToken,omitempty"`
	}{LogStreams: streams}
	if len(streams) > limit {
		out.LogStreams = streams[:limit]
		k := keys[limit-1]
		if byTime {
			out.NextToken = encodeToken("t", strconv.FormatInt(k.last, 10), strconv.FormatInt(k.id, 10))
		} else {
			out.NextToken = encodeToken("n", streams[limit-1].LogStreamName)
		}
	}
	return out, nil
}

func nullable(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

// --- tags ---

func (s *Service) tagLogGroup(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupName string            `json:"logGroupName"`
		Tags         map[string]string `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.LogGroupName, "logGroupName"); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	return nil, s.tag(ctx, in.LogGroupName, in.Tags, nil)
}

func (s *Service) untagLogGroup(ctx context.Context, body []byte) (any, error) {
	var in struct {
		LogGroupName string   `json:"logGroupName"`
		Tags         []string `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.LogGroupName, "logGroupName"); err != nil {
		return nil, err
	}
	return nil, s.tag(ctx, in.LogGroupName, nil, in.Tags)
}

func (s *Service) listTagsLogGroup(ctx context.Context, body []byte) (any, error) {
	var in groupNameOnly
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.LogGroupName, "logGroupName"); err != nil {
		return nil, err
	}
	tags, err := s.tags(ctx, in.LogGroupName)
	if err != nil {
		return nil, err
	}
	return struct {
		Tags map[string]string `json:"tags"`
	}{tags}, nil
}

// groupFromARN reads the log group of a TagResource ARN.
func (s *Service) groupFromARN(arn string) (string, error) {
	rest, ok := strings.CutPrefix(arn, "arn:")
	parts := strings.SplitN(rest, ":", 6)
	if !ok || len(parts) != 6 || parts[1] != "logs" || parts[4] != "log-group" {
		return "", invalid("Invalid resourceArn %q: want arn:aws:logs:REGION:ACCOUNT:log-group:NAME (only log groups have tags here)", arn)
	}
	name := strings.TrimSuffix(parts[5], ":*")
	if parts[3] != s.opts.AccountID || checkGroupName(name, "resourceArn") != nil {
		return "", &api.Error{Status: 400, Code: "ResourceNotFoundException", Message: "The specified resource does not exist: " + arn}
	}
	return name, nil
}

func (s *Service) tagResource(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ResourceARN string            `json:"resourceArn"`
		Tags        map[string]string `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	g, err := s.groupFromARN(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	return nil, s.tag(ctx, g, in.Tags, nil)
}

func (s *Service) untagResource(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ResourceARN string   `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	g, err := s.groupFromARN(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return nil, s.tag(ctx, g, nil, in.TagKeys)
}

func (s *Service) listTagsForResource(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ResourceARN string `json:"resourceArn"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	g, err := s.groupFromARN(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	tags, err := s.tags(ctx, g)
	if err != nil {
		return nil, err
	}
	return struct {
		Tags map[string]string `json:"tags"`
	}{tags}, nil
}

func (s *Service) tag(ctx context.Context, group string, add map[string]string, remove []string) error {
	return api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		id, _, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		for _, k := range remove {
			if _, err := tx.ExecContext(ctx, `DELETE FROM logs_group_tags WHERE group_id = ? AND key = ?`, id, k); err != nil {
				return fmt.Errorf("untag log group %s: %w", group, err)
			}
		}
		return putTags(ctx, tx, id, add)
	})
}

// Tags returns a log group's tags.
func (s *Service) tags(ctx context.Context, group string) (map[string]string, error) {
	id, _, err := groupID(ctx, s.db, group)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM logs_group_tags WHERE group_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("read tags of %s: %w", group, err)
	}
	defer rows.Close()
	tags := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read tags of %s: %w", group, err)
		}
		tags[k] = v
	}
	return tags, rows.Err()
}
