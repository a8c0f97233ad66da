package firehose

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/flowlog/flowlog/internal/api"
)

// stream is a delivery stream as stored.
type stream struct {
	ID          int64
	Name        string
	Created     time.Time
	Extended    bool
	RoleARN     string
	BucketARN   string
	Prefix      string
	ErrorPrefix string
	SizeMB      int
	IntervalS   int
	Compression string
	Version     int64
	Updated     time.Time // zero until an UpdateDestination
}

// Bucket is the name of the stream's bucket.
func (st *stream) Bucket() string {
	b, _ := bucketOfARN(st.BucketARN)
	return b
}

// limit is the size at which the stream's buffer is delivered.
func (st *stream) limit() int64 { return int64(st.SizeMB) << 20 }

// Tag is a delivery stream's tag.
type Tag struct {
	Key   string
	Value *string `json:",omitempty"`
}

// BufferingHints are a destination's buffering hints.
type BufferingHints struct {
	SizeInMBs         *int `json:",omitempty"`
	IntervalInSeconds *int `json:",omitempty"`
}

// s3Config is an S3DestinationConfiguration or
// ExtendedS3DestinationConfiguration; the extended one's processing
// members are refused unless disabled.
type s3Config struct {
	RoleARN                 string
	BucketARN               string
	Prefix                  string
	ErrorOutputPrefix       string
	BufferingHints          *BufferingHints
	CompressionFormat       string
	EncryptionConfiguration *struct {
		NoEncryptionConfig  string
		KMSEncryptionConfig json.RawMessage
	}
	CloudWatchLoggingOptions          json.RawMessage
	ProcessingConfiguration           json.RawMessage
	S3BackupMode                      string
	S3BackupConfiguration             json.RawMessage
	DataFormatConversionConfiguration json.RawMessage
	DynamicPartitioningConfiguration  json.RawMessage
}

type createInput struct {
	DeliveryStreamName                                 string
	DeliveryStreamType                                 string
	KinesisStreamSourceConfiguration                   json.RawMessage
	DeliveryStreamEncryptionConfigurationInput         json.RawMessage
	S3DestinationConfiguration                         *s3Config
	ExtendedS3DestinationConfiguration                 *s3Config
	RedshiftDestinationConfiguration                   json.RawMessage
	ElasticsearchDestinationConfiguration              json.RawMessage
	AmazonopensearchserviceDestinationConfiguration    json.RawMessage
	SplunkDestinationConfiguration                     json.RawMessage
	HttpEndpointDestinationConfiguration               json.RawMessage
	AmazonOpenSearchServerlessDestinationConfiguration json.RawMessage
	Tags                                               []Tag
}

// present reports whether an optional member was given (not absent or null).
func present(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }

// enabled reports whether an optional {Enabled: bool} member turns its
// feature on: given without Enabled: false.
func enabled(m json.RawMessage) bool {
	if !present(m) {
		return false
	}
	var v struct{ Enabled *bool }
	if json.Unmarshal(m, &v) != nil || v.Enabled == nil {
		return true
	}
	return *v.Enabled
}

func (s *Service) createDeliveryStream(ctx context.Context, body []byte) (any, error) {
	var in createInput
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	switch in.DeliveryStreamType {
	case "", "DirectPut":
	case "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource":
		return nil, invalid("DeliveryStreamType %s is not supported by this server: only DirectPut", in.DeliveryStreamType)
	default:
		return nil, validation(in.DeliveryStreamType, "deliveryStreamType", "Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource]")
	}
	if present(in.KinesisStreamSourceConfiguration) {
		return nil, invalid("KinesisStreamSourceConfiguration is only valid with DeliveryStreamType KinesisStreamAsSource")
	}
	if present(in.DeliveryStreamEncryptionConfigurationInput) {
		return nil, invalid("DeliveryStreamEncryptionConfigurationInput is not supported by this server: records are stored unencrypted in its store")
	}
	for name, m := range map[string]json.RawMessage{
		"RedshiftDestinationConfiguration":                   in.RedshiftDestinationConfiguration,
		"ElasticsearchDestinationConfiguration":              in.ElasticsearchDestinationConfiguration,
		"AmazonopensearchserviceDestinationConfiguration":    in.AmazonopensearchserviceDestinationConfiguration,
		"SplunkDestinationConfiguration":                     in.SplunkDestinationConfiguration,
		"HttpEndpointDestinationConfiguration":               in.HttpEndpointDestinationConfiguration,
		"AmazonOpenSearchServerlessDestinationConfiguration": in.AmazonOpenSearchServerlessDestinationConfiguration,
	} {
		if present(m) {
			return nil, invalid("%s is not supported by this server: only S3 destinations (ExtendedS3DestinationConfiguration, S3DestinationConfiguration)", name)
		}
	}
	cfg, extended := in.ExtendedS3DestinationConfiguration, true
	switch {
	case cfg != nil && in.S3DestinationConfiguration != nil:
		return nil, invalid("Only one destination configuration is allowed: give ExtendedS3DestinationConfiguration or S3DestinationConfiguration")
	case cfg == nil && in.S3DestinationConfiguration != nil:
		cfg, extended = in.S3DestinationConfiguration, false
	case cfg == nil:
		return nil, invalid("A destination configuration is required: ExtendedS3DestinationConfiguration or S3DestinationConfiguration")
	}
	member := "s3DestinationConfiguration"
	if extended {
		member = "extendedS3DestinationConfiguration"
	}
	st, err := checkS3Config(cfg, member)
	if err != nil {
		return nil, err
	}
	if pc, ok := s.buckets.(interface{ CheckPrefix(string) error }); ok {
		if err := pc.CheckPrefix(st.Prefix); err != nil {
			return nil, invalid("%v", err)
		}
	}
	st.Name, st.Extended, st.Created = in.DeliveryStreamName, extended, s.now()
	if err := checkTags(in.Tags, "tags"); err != nil {
		return nil, err
	}
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM firehose_streams`).Scan(&n); err != nil {
			return fmt.Errorf("count delivery streams: %w", err)
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM firehose_streams WHERE name = ?`, st.Name).Scan(&exists); err != nil {
			return fmt.Errorf("read delivery stream %s: %w", st.Name, err)
		}
		if exists > 0 {
			return &api.Error{Status: http.StatusBadRequest, Code: "ResourceInUseException",
				Message: "Firehose " + st.Name + " under accountId " + s.opts.AccountID + " already exists"}
		}
		if n >= s.opts.MaxStreams {
			return &api.Error{Status: http.StatusBadRequest, Code: "LimitExceededException",
				Message: fmt.Sprintf("You have already consumed your firehose quota of %d hoses. Firehose names: %s", s.opts.MaxStreams, st.Name)}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO firehose_streams (name, created, extended, role_arn, bucket_arn, prefix, error_prefix, size_mb, interval_s, compression)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			st.Name, st.Created.UnixMilli(), extended, st.RoleARN, st.BucketARN, st.Prefix, st.ErrorPrefix, st.SizeMB, st.IntervalS, st.Compression)
		if err != nil {
			return fmt.Errorf("insert delivery stream %s: %w", st.Name, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("insert delivery stream %s: %w", st.Name, err)
		}
		return putTags(ctx, tx, id, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("created delivery stream", "name", st.Name, "bucket", st.BucketARN, "prefix", st.Prefix)
	return map[string]string{"DeliveryStreamARN": s.StreamARN(st.Name)}, nil
}

// checkS3Config validates a destination configuration (the request's
// member named member) and returns the stream it describes (without
// name and times).
func checkS3Config(c *s3Config, member string) (*stream, error) {
	if c.RoleARN == "" {
		return nil, missing(member + ".roleARN")
	}
	if !strings.HasPrefix(c.RoleARN, "arn:") || len(c.RoleARN) > 512 {
		return nil, validation(c.RoleARN, member+".roleARN", "Member must satisfy regular expression pattern: arn:.*")
	}
	if c.BucketARN == "" {
		return nil, missing(member + ".bucketARN")
	}
	if _, err := bucketOfARN(c.BucketARN); err != nil {
		return nil, invalid("BucketARN %s: %v", c.BucketARN, err)
	}
	if len(c.Prefix) > 1024 {
		return nil, validation(c.Prefix, member+".prefix", "Member must have length less than or equal to 1024")
	}
	if len(c.ErrorOutputPrefix) > 1024 {
		return nil, validation(c.ErrorOutputPrefix, member+".errorOutputPrefix", "Member must have length less than or equal to 1024")
	}
	if strings.Contains(c.Prefix, "!{") {
		return nil, invalid("Prefix %q: expressions (!{timestamp:…}, !{firehose:…}) are not supported by this server", c.Prefix)
	}
	st := &stream{RoleARN: c.RoleARN, BucketARN: c.BucketARN, Prefix: c.Prefix, ErrorPrefix: c.ErrorOutputPrefix,
		SizeMB: DefaultSizeInMBs, IntervalS: DefaultIntervalInSeconds, Compression: "UNCOMPRESSED"}
	if h := c.BufferingHints; h != nil {
		if v := h.SizeInMBs; v != nil {
			if *v < 1 || *v > 128 {
				return nil, validation(strconv.Itoa(*v), member+".bufferingHints.sizeInMBs", "Member must have value between 1 and 128")
			}
			st.SizeMB = *v
		}
		if v := h.IntervalInSeconds; v != nil {
			if *v < 0 || *v > 900 {
				return nil, validation(strconv.Itoa(*v), member+".bufferingHints.intervalInSeconds", "Member must have value between 0 and 900")
			}
			st.IntervalS = *v
		}
	}
	switch c.CompressionFormat {
	case "", "UNCOMPRESSED":
	case "GZIP":
		st.Compression = "GZIP"
	case "ZIP", "Snappy", "HADOOP_SNAPPY":
		return nil, invalid("CompressionFormat %s is not supported by this server: use UNCOMPRESSED or GZIP", c.CompressionFormat)
	default:
		return nil, validation(c.CompressionFormat, member+".compressionFormat", "Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]")
	}
	if e := c.EncryptionConfiguration; e != nil && (present(e.KMSEncryptionConfig) || e.NoEncryptionConfig != "" && e.NoEncryptionConfig != "NoEncryption") {
		return nil, invalid("EncryptionConfiguration: only NoEncryptionConfig NoEncryption is supported by this server")
	}
	if enabled(c.ProcessingConfiguration) {
		return nil, invalid("ProcessingConfiguration: record processing (Lambda) is not supported by this server")
	}
	if enabled(c.DataFormatConversionConfiguration) {
		return nil, invalid("DataFormatConversionConfiguration: format conversion is not supported by this server")
	}
	if enabled(c.DynamicPartitioningConfiguration) {
		return nil, invalid("DynamicPartitioningConfiguration: dynamic partitioning is not supported by this server")
	}
	if c.S3BackupMode == "Enabled" || present(c.S3BackupConfiguration) {
		return nil, invalid("S3BackupMode Enabled is not supported by this server")
	}
	// CloudWatchLoggingOptions are accepted: delivery errors go to the
	// server's log and DescribeDeliveryStream instead.
	return st, nil
}

// bucketOfARN reads arn:PARTITION:s3:::BUCKET; the bucket must follow
// S3's naming rules, which also keeps it a safe directory name.
func bucketOfARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "s3" || parts[3] != "" || parts[4] != "" {
		return "", errors.New("want arn:aws:s3:::BUCKET")
	}
	b := parts[5]
	if len(b) < 3 || len(b) > 63 {
		return "", fmt.Errorf("bucket name %q: want 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return "", fmt.Errorf("bucket name %q: want lower-case letters, digits, dots and hyphens", b)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) || strings.Contains(b, "..") {
		return "", fmt.Errorf("bucket name %q: must begin and end with a letter or digit, without two dots in a row", b)
	}
	return b, nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkTags applies the model's Tag rules.
func checkTags(tags []Tag, member string) error {
	if len(tags) > MaxTags {
		return &api.Error{Status: http.StatusBadRequest, Code: "LimitExceededException", Message: fmt.Sprintf("A delivery stream has at most %d tags; %d given", MaxTags, len(tags))}
	}
	for i, t := range tags {
		m := fmt.Sprintf("%s.%d.member", member, i+1)
		if t.Key == "" || len(t.Key) > 128 {
			return validation(t.Key, m+".key", "Member must have length between 1 and 128")
		}
		if strings.HasPrefix(t.Key, "aws:") || !tagChars(t.Key) {
			return validation(t.Key, m+".key", `Member must satisfy regular expression pattern: ^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$`)
		}
		if t.Value != nil && (len(*t.Value) > 256 || !tagChars(*t.Value)) {
			return validation(*t.Value, m+".value", `Member must satisfy regular expression pattern: ^[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$ and have length less than or equal to 256`)
		}
	}
	return nil
}

func tagChars(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.In(r, unicode.Zs) && !strings.ContainsRune("_.:/=+-@%", r) {
			return false
		}
	}
	return true
}

func putTags(ctx context.Context, tx *sql.Tx, id int64, tags []Tag) error {
	for _, t := range tags {
		v := ""
		if t.Value != nil {
			v = *t.Value
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO firehose_tags (stream_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (stream_id, key) DO UPDATE SET value = excluded.value`, id, t.Key, v); err != nil {
			return fmt.Errorf("tag delivery stream: %w", err)
		}
	}
	return nil
}

const streamColumns = `id, name, created, extended, role_arn, bucket_arn, prefix, error_prefix, size_mb, interval_s, compression, version, updated`

func scanStream(row interface{ Scan(...any) error }) (*stream, error) {
	var st stream
	var created, updated int64
	if err := row.Scan(&st.ID, &st.Name, &created, &st.Extended, &st.RoleARN, &st.BucketARN, &st.Prefix, &st.ErrorPrefix, &st.SizeMB, &st.IntervalS, &st.Compression, &st.Version, &updated); err != nil {
		return nil, err
	}
	st.Created = time.UnixMilli(created)
	if updated != 0 {
		st.Updated = time.UnixMilli(updated)
	}
	return &st, nil
}

// streamByName reads a stream; ResourceNotFoundException when there is none.
func (s *Service) streamByName(ctx context.Context, q querier, name string) (*stream, error) {
	st, err := scanStream(q.QueryRowContext(ctx, `SELECT `+streamColumns+` FROM firehose_streams WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.notFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery stream %s: %w", name, err)
	}
	return st, nil
}

// streamByID reads a stream; nil when it was deleted.
func (s *Service) streamByID(ctx context.Context, id int64) (*stream, error) {
	st, err := scanStream(s.db.QueryRowContext(ctx, `SELECT `+streamColumns+` FROM firehose_streams WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery stream %d: %w", id, err)
	}
	return st, nil
}

// epoch is a JSON 1.1 timestamp: seconds since the epoch.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Time(e).UnixMilli())/1000, 'f', -1, 64), nil
}

type failureDescription struct {
	Type    string
	Details string
}

type s3Description struct {
	RoleARN                  string
	BucketARN                string
	Prefix                   string `json:",omitempty"`
	ErrorOutputPrefix        string `json:",omitempty"`
	BufferingHints           BufferingHints
	CompressionFormat        string
	EncryptionConfiguration  map[string]string
	CloudWatchLoggingOptions map[string]bool
	S3BackupMode             string `json:",omitempty"`
}

type destinationDescription struct {
	DestinationId                    string
	S3DestinationDescription         *s3Description `json:",omitempty"`
	ExtendedS3DestinationDescription *s3Description `json:",omitempty"`
}

type streamDescription struct {
	DeliveryStreamName                    string
	DeliveryStreamARN                     string
	DeliveryStreamStatus                  string
	DeliveryStreamType                    string
	VersionId                             string
	CreateTimestamp                       epoch
	LastUpdateTimestamp                   *epoch `json:",omitempty"`
	DeliveryStreamEncryptionConfiguration map[string]string
	FailureDescription                    *failureDescription `json:",omitempty"`
	Destinations                          []destinationDescription
	HasMoreDestinations                   bool
}

// DestinationID is the id of a stream's only destination, as AWS numbers it.
const DestinationID = "destinationId-000000000001"

func (s *Service) describeDeliveryStream(ctx context.Context, body []byte) (any, error) {
	var in struct {
		DeliveryStreamName          string
		Limit                       *int
		ExclusiveStartDestinationId string
	}
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if in.Limit != nil && (*in.Limit < 1 || *in.Limit > 10000) {
		return nil, validation(strconv.Itoa(*in.Limit), "limit", "Member must have value between 1 and 10000")
	}
	st, err := s.streamByName(ctx, s.db, in.DeliveryStreamName)
	if err != nil {
		return nil, err
	}
	size, interval := st.SizeMB, st.IntervalS
	d := &s3Description{RoleARN: st.RoleARN, BucketARN: st.BucketARN, Prefix: st.Prefix, ErrorOutputPrefix: st.ErrorPrefix,
		BufferingHints: BufferingHints{SizeInMBs: &size, IntervalInSeconds: &interval}, CompressionFormat: st.Compression,
		EncryptionConfiguration: map[string]string{"NoEncryptionConfig": "NoEncryption"}, CloudWatchLoggingOptions: map[string]bool{"Enabled": false}}
	dest := destinationDescription{DestinationId: DestinationID, S3DestinationDescription: d}
	if st.Extended {
		ext := *d
		ext.S3BackupMode = "Disabled"
		dest.ExtendedS3DestinationDescription = &ext
	}
	out := streamDescription{
		DeliveryStreamName: st.Name, DeliveryStreamARN: s.StreamARN(st.Name), DeliveryStreamStatus: "ACTIVE",
		DeliveryStreamType: "DirectPut", VersionId: strconv.FormatInt(st.Version, 10), CreateTimestamp: epoch(st.Created),
		DeliveryStreamEncryptionConfiguration: map[string]string{"Status": "DISABLED"},
		Destinations:                          []destinationDescription{dest},
	}
	if !st.Updated.IsZero() {
		u := epoch(st.Updated)
		out.LastUpdateTimestamp = &u
	}
	if in.ExclusiveStartDestinationId == DestinationID {
		out.Destinations = []destinationDescription{}
	}
	// A failing delivery shows here (the stream stays ACTIVE, as AWS's
	// does while it retries) until a delivery succeeds. AWS reports S3
	// delivery errors in its error logs (code and message); the model's
	// FailureDescription types are KMS and ENI failures, so the type is
	// UNKNOWN_ERROR and Details starts with the error log's code and
	// message.
	s.mu.Lock()
	if b := s.bufs[st.ID]; b != nil && b.lastErr != "" {
		out.FailureDescription = &failureDescription{Type: "UNKNOWN_ERROR",
			Details: truncate(b.lastErr+"; delivery failed at "+b.lastErrAt.UTC().Format(time.RFC3339)+", retrying", 1024)}
	}
	s.mu.Unlock()
	return map[string]any{"DeliveryStreamDescription": out}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (s *Service) listDeliveryStreams(ctx context.Context, body []byte) (any, error) {
	var in struct {
		Limit                            *int
		DeliveryStreamType               string
		ExclusiveStartDeliveryStreamName string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit := 10
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > 10000 {
			return nil, validation(strconv.Itoa(*in.Limit), "limit", "Member must have value between 1 and 10000")
		}
		limit = *in.Limit
	}
	names := []string{}
	switch in.DeliveryStreamType {
	case "", "DirectPut":
	case "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource":
		return map[string]any{"DeliveryStreamNames": names, "HasMoreDeliveryStreams": false}, nil
	default:
		return nil, validation(in.DeliveryStreamType, "deliveryStreamType", "Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource]")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM firehose_streams WHERE name > ? ORDER BY name LIMIT ?`, in.ExclusiveStartDeliveryStreamName, limit+1)
	if err != nil {
		return nil, fmt.Errorf("list delivery streams: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list delivery streams: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list delivery streams: %w", err)
	}
	more := len(names) > limit
	if more {
		names = names[:limit]
	}
	return map[string]any{"DeliveryStreamNames": names, "HasMoreDeliveryStreams": more}, nil
}

// deleteDeliveryStream removes the stream and the records it has not
// delivered, as AWS drops a deleted stream's buffer.
func (s *Service) deleteDeliveryStream(ctx context.Context, body []byte) (any, error) {
	var in struct {
		DeliveryStreamName string
		AllowForceDelete   *bool
	}
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var id int64
	var dropped int64
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		st, err := s.streamByName(ctx, tx, in.DeliveryStreamName)
		if err != nil {
			return err
		}
		id = st.ID
		res, err := tx.ExecContext(ctx, `DELETE FROM firehose_records WHERE stream_id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete records of delivery stream %s: %w", st.Name, err)
		}
		dropped, _ = res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `DELETE FROM firehose_streams WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete delivery stream %s: %w", st.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	delete(s.bufs, id)
	s.mu.Unlock()
	s.log.Info("deleted delivery stream", "name", in.DeliveryStreamName, "undelivered-calls-dropped", dropped)
	return nil, nil
}

func (s *Service) tagDeliveryStream(ctx context.Context, body []byte) (any, error) {
	var in struct {
		DeliveryStreamName string
		Tags               []Tag
	}
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, missing("tags")
	}
	if err := checkTags(in.Tags, "tags"); err != nil {
		return nil, err
	}
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		st, err := s.streamByName(ctx, tx, in.DeliveryStreamName)
		if err != nil {
			return err
		}
		if err := putTags(ctx, tx, st.ID, in.Tags); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM firehose_tags WHERE stream_id = ?`, st.ID).Scan(&n); err != nil {
			return fmt.Errorf("count tags: %w", err)
		}
		if n > MaxTags {
			return &api.Error{Status: http.StatusBadRequest, Code: "LimitExceededException", Message: fmt.Sprintf("A delivery stream has at most %d tags; this call would make %d", MaxTags, n)}
		}
		return nil
	})
}

func (s *Service) untagDeliveryStream(ctx context.Context, body []byte) (any, error) {
	var in struct {
		DeliveryStreamName string
		TagKeys            []string
	}
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if len(in.TagKeys) == 0 || len(in.TagKeys) > MaxTags {
		return nil, validation(fmt.Sprint(in.TagKeys), "tagKeys", "Member must have length between 1 and 50")
	}
	return nil, api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		st, err := s.streamByName(ctx, tx, in.DeliveryStreamName)
		if err != nil {
			return err
		}
		for _, k := range in.TagKeys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM firehose_tags WHERE stream_id = ? AND key = ?`, st.ID, k); err != nil {
				return fmt.Errorf("untag delivery stream %s: %w", st.Name, err)
			}
		}
		return nil
	})
}

func (s *Service) listTagsForDeliveryStream(ctx context.Context, body []byte) (any, error) {
	var in struct {
		DeliveryStreamName   string
		ExclusiveStartTagKey string
		Limit                *int
	}
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	limit := MaxTags
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > MaxTags {
			return nil, validation(strconv.Itoa(*in.Limit), "limit", "Member must have value between 1 and 50")
		}
		limit = *in.Limit
	}
	st, err := s.streamByName(ctx, s.db, in.DeliveryStreamName)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM firehose_tags WHERE stream_id = ? AND key > ?`, st.ID, in.ExclusiveStartTagKey)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", st.Name, err)
	}
	defer rows.Close()
	tags := []Tag{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", st.Name, err)
		}
		tags = append(tags, Tag{Key: k, Value: &v})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", st.Name, err)
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	more := len(tags) > limit
	if more {
		tags = tags[:limit]
	}
	return map[string]any{"Tags": tags, "HasMoreTags": more}, nil
}
