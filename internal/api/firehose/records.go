package firehose

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Record is one record of PutRecord or PutRecordBatch; Data is base64 in
// the JSON protocol, which encoding/json decodes into the []byte.
type Record struct {
	Data []byte
}

// putRecordBatchInput is the request of PutRecordBatch.
type putRecordBatchInput struct {
	DeliveryStreamName string
	Records            []*Record
}

// BatchEntry is one record's result in a PutRecordBatch answer.
type BatchEntry struct {
	RecordId     string `json:",omitempty"`
	ErrorCode    string `json:",omitempty"`
	ErrorMessage string `json:",omitempty"`
}

// batchResult is the answer of PutRecordBatch.
type batchResult struct {
	FailedPutCount   int
	Encrypted        bool
	RequestResponses []BatchEntry
}

func (s *Service) putRecord(ctx context.Context, body []byte) (any, error) {
	var in struct {
		DeliveryStreamName string
		Record             *Record
	}
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, err
	}
	if in.Record == nil || in.Record.Data == nil {
		return nil, missing("record.data")
	}
	if n := len(in.Record.Data); n > MaxRecordBytes {
		return nil, validation("java.nio.HeapByteBuffer[pos=0 lim="+strconv.Itoa(n)+"]", "record.data", "Member must have length less than or equal to 1024000")
	}
	id := newRecordID()
	if err := s.store(ctx, in.DeliveryStreamName, in.Record.Data, 1); err != nil {
		return nil, err
	}
	return map[string]any{"RecordId": id, "Encrypted": false}, nil
}

// checkBatch applies PutRecordBatch's limits: AWS refuses the whole call
// for a wrong record count or more than MaxBatchBytes of data, and each
// record over MaxRecordBytes fails alone (the others are accepted). It
// returns the accepted data concatenated, and the per-record answers.
func checkBatch(in *putRecordBatchInput) ([]byte, batchResult, error) {
	res := batchResult{}
	if err := checkStreamName(in.DeliveryStreamName); err != nil {
		return nil, res, err
	}
	if in.Records == nil {
		return nil, res, missing("records")
	}
	if n := len(in.Records); n == 0 || n > MaxBatchRecords {
		return nil, res, validation("["+strconv.Itoa(n)+" records]", "records", "Member must have length less than or equal to 500 and greater than or equal to 1")
	}
	total := 0
	for i, r := range in.Records {
		if r == nil || r.Data == nil {
			return nil, res, missing("records." + strconv.Itoa(i+1) + ".member.data")
		}
		total += len(r.Data)
	}
	if total > MaxBatchBytes {
		return nil, res, invalid("Records size exceeds 4 MB limit: %d bytes of data in %d records", total, len(in.Records))
	}
	data := make([]byte, 0, total)
	res.RequestResponses = make([]BatchEntry, len(in.Records))
	for i, r := range in.Records {
		if n := len(r.Data); n > MaxRecordBytes {
			res.FailedPutCount++
			res.RequestResponses[i] = BatchEntry{ErrorCode: "InvalidArgumentException",
				ErrorMessage: "Record size " + strconv.Itoa(n) + " bytes exceeds the limit of 1024000 bytes (1,000 KiB)"}
			continue
		}
		data = append(data, r.Data...)
		res.RequestResponses[i] = BatchEntry{RecordId: newRecordID()}
	}
	return data, res, nil
}

func (s *Service) putRecordBatch(ctx context.Context, body []byte) (any, error) {
	var in putRecordBatchInput
	if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
		return nil, err
	}
	data, res, err := checkBatch(&in)
	if err != nil {
		return nil, err
	}
	if err := s.store(ctx, in.DeliveryStreamName, data, len(in.Records)-res.FailedPutCount); err != nil {
		return nil, err
	}
	return res, nil
}

// store commits the accepted data of one call to the stream's buffer; the
// call is acknowledged only after this returns.
func (s *Service) store(ctx context.Context, name string, data []byte, records int) error {
	now := s.now()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var st *stream
	err := api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var err error
		if st, err = s.streamByName(ctx, tx, name); err != nil {
			return err
		}
		if records == 0 {
			return nil // every record failed: nothing to keep
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO firehose_records (stream_id, arrival, size, data) VALUES (?, ?, ?, ?)`,
			st.ID, now.UnixMilli(), len(data), data); err != nil {
			return fmt.Errorf("store records of delivery stream %s: %w", name, err)
		}
		return nil
	})
	if err != nil || records == 0 {
		return err
	}
	s.mu.Lock()
	b := s.bufs[st.ID]
	if b == nil {
		b = &buffer{}
		s.bufs[st.ID] = b
	}
	b.bytes += int64(len(data))
	arrival := time.UnixMilli(now.UnixMilli())
	if b.oldest.IsZero() || arrival.Before(b.oldest) {
		b.oldest = arrival
	}
	full := b.bytes >= st.limit()
	s.mu.Unlock()
	if full {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// newRecordID is an opaque record id, as long as AWS's.
func newRecordID() string { return randomHex(56) }
