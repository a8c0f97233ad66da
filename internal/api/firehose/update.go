package firehose

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// s3Update is an S3DestinationUpdate or ExtendedS3DestinationUpdate:
// every member is optional, and those given replace the stream's.
type s3Update struct {
	RoleARN                 *string
	BucketARN               *string
	Prefix                  *string
	ErrorOutputPrefix       *string
	BufferingHints          *BufferingHints
	CompressionFormat       *string
	EncryptionConfiguration *struct {
		NoEncryptionConfig  string
		KMSEncryptionConfig json.RawMessage
	}
	CloudWatchLoggingOptions          json.RawMessage
	ProcessingConfiguration           json.RawMessage
	S3BackupMode                      string
	S3BackupUpdate                    json.RawMessage
	DataFormatConversionConfiguration json.RawMessage
	DynamicPartitioningConfiguration  json.RawMessage
}

type updateInput struct {
	DeliveryStreamName                          string
	CurrentDeliveryStreamVersionId              string
	DestinationId                               string
	S3DestinationUpdate                         *s3Update
	ExtendedS3DestinationUpdate                 *s3Update
	RedshiftDestinationUpdate                   json.RawMessage
	ElasticsearchDestinationUpdate              json.RawMessage
	AmazonopensearchserviceDestinationUpdate    json.RawMessage
	SplunkDestinationUpdate                     json.RawMessage
	HttpEndpointDestinationUpdate               json.RawMessage
	AmazonOpenSearchServerlessDestinationUpdate json.RawMessage
	SnowflakeDestinationUpdate                  json.RawMessage
	IcebergDestinationUpdate                    json.RawMessage
}

// checkVersionID and checkDestinationID apply the model's patterns.
func checkVersionID(v string) error {
	if v == "" {
		return missing("currentDeliveryStreamVersionId")
	}
	if len(v) > 50 || !allDigits(v) {
		return validation(v, "currentDeliveryStreamVersionId", "Member must satisfy regular expression pattern: [0-9]+")
	}
	return nil
}

func checkDestinationID(id string) error {
	if id == "" {
		return missing("destinationId")
	}
	if len(id) > 100 {
		return validation(id, "destinationId", "Member must have length less than or equal to 100")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(isAlnum(c) || c >= 'A' && c <= 'Z' || c == '-') {
			return validation(id, "destinationId", "Member must satisfy regular expression pattern: [a-zA-Z0-9-]+")
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// updateDestination merges an S3 destination update into the stream's
// destination, as AWS does for a destination of the same type: members
// not given keep their values. It applies only when
// CurrentDeliveryStreamVersionId is the stream's VersionId, which it
// increments. The deliverer reads the stream at each delivery, so the
// next object (records already buffered included) follows the new
// destination.
func (s *Service) updateDestination(ctx context.Context, call *api.Call) (any, error) {
	var in updateInput
	if err := decodeNamed(call.Body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkVersionID(in.CurrentDeliveryStreamVersionId); err != nil {
		return nil, err
	}
	if err := checkDestinationID(in.DestinationId); err != nil {
		return nil, err
	}
	for name, m := range map[string]json.RawMessage{
		"RedshiftDestinationUpdate":                   in.RedshiftDestinationUpdate,
		"ElasticsearchDestinationUpdate":              in.ElasticsearchDestinationUpdate,
		"AmazonopensearchserviceDestinationUpdate":    in.AmazonopensearchserviceDestinationUpdate,
		"SplunkDestinationUpdate":                     in.SplunkDestinationUpdate,
		"HttpEndpointDestinationUpdate":               in.HttpEndpointDestinationUpdate,
		"AmazonOpenSearchServerlessDestinationUpdate": in.AmazonOpenSearchServerlessDestinationUpdate,
		"SnowflakeDestinationUpdate":                  in.SnowflakeDestinationUpdate,
		"IcebergDestinationUpdate":                    in.IcebergDestinationUpdate,
	} {
		if present(m) {
			return nil, invalid("%s is not supported by this server: only S3 destinations (ExtendedS3DestinationUpdate, S3DestinationUpdate)", name)
		}
	}
	upd, member := in.ExtendedS3DestinationUpdate, "extendedS3DestinationUpdate"
	switch {
	case upd != nil && in.S3DestinationUpdate != nil:
		return nil, invalid("Only one destination update is allowed: give ExtendedS3DestinationUpdate or S3DestinationUpdate")
	case upd == nil && in.S3DestinationUpdate != nil:
		upd, member = in.S3DestinationUpdate, "s3DestinationUpdate"
	case upd == nil:
		return nil, invalid("A destination update is required: ExtendedS3DestinationUpdate or S3DestinationUpdate")
	}
	want, _ := strconv.ParseInt(in.CurrentDeliveryStreamVersionId, 10, 64)

	s.wmu.Lock()
	defer s.wmu.Unlock()
	var st *stream
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		cur, err := s.streamByName(ctx, tx, in.DeliveryStreamName)
		if err != nil {
			return err
		}
		if cur.Version != want {
			return &api.Error{Status: http.StatusBadRequest, Code: "ConcurrentModificationException",
				Message: fmt.Sprintf("Cannot update firehose: %s since the current version id: %d and the specified version id: %s do not match",
					cur.Name, cur.Version, in.CurrentDeliveryStreamVersionId)}
		}
		if in.DestinationId != DestinationID {
			return invalid("Destination Id %s not found", in.DestinationId)
		}
		if st, err = s.merge(cur, upd, member); err != nil {
			return err
		}
		// An S3DestinationUpdate keeps an extended destination extended;
		// an ExtendedS3DestinationUpdate makes a plain one extended.
		st.Extended = cur.Extended || in.ExtendedS3DestinationUpdate != nil
		st.Updated = s.now()
		res, err := tx.ExecContext(ctx, `UPDATE firehose_streams SET extended = ?, role_arn = ?, bucket_arn = ?, prefix = ?, error_prefix = ?,
			size_mb = ?, interval_s = ?, compression = ?, version = version + 1, updated = ? WHERE id = ? AND version = ?`,
			st.Extended, st.RoleARN, st.BucketARN, st.Prefix, st.ErrorPrefix, st.SizeMB, st.IntervalS, st.Compression,
			st.Updated.UnixMilli(), cur.ID, cur.Version)
		if err != nil {
			return fmt.Errorf("update delivery stream %s: %w", cur.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("update delivery stream %s: %d rows updated: %w", cur.Name, n, err)
		}
		st.Version = cur.Version + 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A stream waiting to retry tries the new destination at once.
	s.mu.Lock()
	if b := s.bufs[st.ID]; b != nil {
		b.retryAt, b.backoff = time.Time{}, 0
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.log.Info("updated delivery stream destination", "name", st.Name, "version", st.Version, "role", st.RoleARN,
		"bucket", st.BucketARN, "prefix", st.Prefix, "size-mb", st.SizeMB, "interval-s", st.IntervalS, "compression", st.Compression)
	return nil, nil
}

// merge returns cur with the members upd gives, checked as
// CreateDeliveryStream checks a configuration.
func (s *Service) merge(cur *stream, upd *s3Update, member string) (*stream, error) {
	size, interval := cur.SizeMB, cur.IntervalS
	c := &s3Config{RoleARN: cur.RoleARN, BucketARN: cur.BucketARN, Prefix: cur.Prefix, ErrorOutputPrefix: cur.ErrorPrefix,
		BufferingHints: &BufferingHints{SizeInMBs: &size, IntervalInSeconds: &interval}, CompressionFormat: cur.Compression,
		EncryptionConfiguration:           upd.EncryptionConfiguration,
		ProcessingConfiguration:           upd.ProcessingConfiguration,
		S3BackupMode:                      upd.S3BackupMode,
		S3BackupConfiguration:             upd.S3BackupUpdate,
		DataFormatConversionConfiguration: upd.DataFormatConversionConfiguration,
		DynamicPartitioningConfiguration:  upd.DynamicPartitioningConfiguration,
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.RoleARN, upd.RoleARN)
	set(&c.BucketARN, upd.BucketARN)
	set(&c.Prefix, upd.Prefix)
	set(&c.ErrorOutputPrefix, upd.ErrorOutputPrefix)
	set(&c.CompressionFormat, upd.CompressionFormat)
	if h := upd.BufferingHints; h != nil {
		if h.SizeInMBs != nil {
			size = *h.SizeInMBs
		}
		if h.IntervalInSeconds != nil {
			interval = *h.IntervalInSeconds
		}
	}
	st, err := checkS3Config(c, member)
	if err != nil {
		return nil, err
	}
	if pc, ok := s.buckets.(interface{ CheckPrefix(string) error }); ok {
		if err := pc.CheckPrefix(st.Prefix); err != nil {
			return nil, invalid("%v", err)
		}
	}
	st.ID, st.Name, st.Created = cur.ID, cur.Name, cur.Created
	return st, nil
}
