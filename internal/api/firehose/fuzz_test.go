package firehose

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/flowlog/flowlog/internal/api"
)

// FuzzPutRecordBatchRequest: any body either is refused with a client
// error, or gives one answer per record, counts the failed ones, and
// keeps exactly the accepted records' bytes in order.
func FuzzPutRecordBatchRequest(f *testing.F) {
	f.Add([]byte(`{"DeliveryStreamName":"s","Records":[{"Data":"YQo="},{"Data":"Ygo="}]}`))
	f.Add([]byte(`{"DeliveryStreamName":"s","Records":[]}`))
	f.Add([]byte(`{"DeliveryStreamName":"s","Records":[null,{"Data":""}]}`))
	f.Add([]byte(`{"DeliveryStreamName":"bad/name","Records":[{"Data":"!!"}]}`))
	f.Add([]byte(`{"DeliveryStreamName":1}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"DeliveryStreamName":"allowed","deliverystreamname":"other","Records":[{"Data":"YQo="}]}`))
	f.Add([]byte(`{"Records":[{"Data":"YQo="}],"DeliveryStreamName":"s","DeliveryStreamName":"t"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in putRecordBatchInput
		name, nerr := streamName(body)
		if err := decodeNamed(body, &in, &in.DeliveryStreamName); err != nil {
			clientError(t, err)
			return
		}
		// A body the operation accepts names the stream Resources authorizes.
		if nerr != nil || name != in.DeliveryStreamName {
			t.Fatalf("streamName = %q, %v; the operation reads %q", name, nerr, in.DeliveryStreamName)
		}
		data, res, err := checkBatch(&in)
		if err != nil {
			clientError(t, err)
			return
		}
		if len(res.RequestResponses) != len(in.Records) || len(in.Records) == 0 || len(in.Records) > MaxBatchRecords {
			t.Fatalf("%d answers for %d records", len(res.RequestResponses), len(in.Records))
		}
		var want []byte
		failed := 0
		for i, r := range res.RequestResponses {
			if (r.RecordId == "") == (r.ErrorCode == "") {
				t.Fatalf("record %d: answer %+v has not exactly one of RecordId and ErrorCode", i, r)
			}
			if r.ErrorCode != "" {
				failed++
				if len(in.Records[i].Data) <= MaxRecordBytes {
					t.Fatalf("record %d of %d bytes failed", i, len(in.Records[i].Data))
				}
				continue
			}
			want = append(want, in.Records[i].Data...)
		}
		if failed != res.FailedPutCount || !bytes.Equal(data, want) || len(data) > MaxBatchBytes {
			t.Fatalf("FailedPutCount %d (counted %d), %d bytes kept, want %d", res.FailedPutCount, failed, len(data), len(want))
		}
	})
}

// FuzzCreateDeliveryStream: any CreateDeliveryStream body is answered
// with a client error or creates a stream that DescribeDeliveryStream
// then describes; nothing is an internal error.
func FuzzCreateDeliveryStream(f *testing.F) {
	f.Add([]byte(`{"DeliveryStreamName":"s","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::1:role/r","BucketARN":"arn:aws:s3:::bkt","Prefix":"p/","BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":0},"CompressionFormat":"GZIP"}}`))
	f.Add([]byte(`{"DeliveryStreamName":"t","S3DestinationConfiguration":{"RoleARN":"arn:x","BucketARN":"arn:aws:s3:::a.b-c"},"Tags":[{"Key":"k","Value":"v"}]}`))
	f.Add([]byte(`{"DeliveryStreamName":"u","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:x","BucketARN":"arn:aws:s3:::bkt","ProcessingConfiguration":{"Enabled":false},"EncryptionConfiguration":{"NoEncryptionConfig":"NoEncryption"}}}`))
	f.Add([]byte(`{"DeliveryStreamName":"v","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:x","BucketARN":"arn:aws:s3:::bkt","Prefix":"../../x"}}`))
	ctx := context.Background()
	db, err := api.OpenDB(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s, err := New(ctx, db, Options{BucketsDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := s.Serve(ctx, &api.Call{Action: "CreateDeliveryStream", Body: body})
		if err != nil {
			clientError(t, err)
			return
		}
		arn := out.(map[string]string)["DeliveryStreamARN"]
		name := arn[len(s.StreamARN("")):]
		if _, err := s.Serve(ctx, &api.Call{Action: "DescribeDeliveryStream", Body: []byte(`{"DeliveryStreamName":"` + name + `"}`)}); err != nil {
			t.Fatalf("describe %s after its creation: %v", name, err)
		}
		if _, err := s.Serve(ctx, &api.Call{Action: "DeleteDeliveryStream", Body: []byte(`{"DeliveryStreamName":"` + name + `"}`)}); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	})
}

// FuzzUpdateDestination: any UpdateDestination body on a fresh stream
// (VersionId 1) is answered with a client error, or updates it to a
// destination that DescribeDeliveryStream describes at VersionId 2;
// nothing is an internal error.
func FuzzUpdateDestination(f *testing.F) {
	f.Add([]byte(`{"DeliveryStreamName":"s","CurrentDeliveryStreamVersionId":"1","DestinationId":"destinationId-000000000001","ExtendedS3DestinationUpdate":{"Prefix":"new/","BufferingHints":{"SizeInMBs":2},"CompressionFormat":"GZIP"}}`))
	f.Add([]byte(`{"DeliveryStreamName":"s","CurrentDeliveryStreamVersionId":"1","DestinationId":"destinationId-000000000001","S3DestinationUpdate":{"RoleARN":"arn:aws:iam::1:role/x","BucketARN":"arn:aws:s3:::other"}}`))
	f.Add([]byte(`{"DeliveryStreamName":"s","CurrentDeliveryStreamVersionId":"2","DestinationId":"destinationId-000000000001","ExtendedS3DestinationUpdate":{}}`))
	f.Add([]byte(`{"DeliveryStreamName":"s","CurrentDeliveryStreamVersionId":"1","DestinationId":"destinationId-000000000002","ExtendedS3DestinationUpdate":{"Prefix":"../x"}}`))
	f.Add([]byte(`{"DeliveryStreamName":"s","CurrentDeliveryStreamVersionId":"x","DestinationId":"d"}`))
	ctx := context.Background()
	db, err := api.OpenDB(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s, err := New(ctx, db, Options{BucketsDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	create := []byte(`{"DeliveryStreamName":"s","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::1:role/r","BucketARN":"arn:aws:s3:::bkt"}}`)
	if _, err := s.Serve(ctx, &api.Call{Action: "CreateDeliveryStream", Body: create}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// Back to the stream as created, in one statement.
		if _, err := db.ExecContext(ctx, `UPDATE firehose_streams SET version = 1, updated = 0, extended = 1, role_arn = 'arn:aws:iam::1:role/r',
			bucket_arn = 'arn:aws:s3:::bkt', prefix = '', error_prefix = '', size_mb = 5, interval_s = 300, compression = 'UNCOMPRESSED' WHERE name = 's'`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Serve(ctx, &api.Call{Action: "UpdateDestination", Body: body}); err != nil {
			clientError(t, err)
			return
		}
		out, err := s.Serve(ctx, &api.Call{Action: "DescribeDeliveryStream", Body: []byte(`{"DeliveryStreamName":"s"}`)})
		if err != nil {
			t.Fatalf("describe after an update: %v", err)
		}
		if v := out.(map[string]any)["DeliveryStreamDescription"].(streamDescription).VersionId; v != "2" {
			t.Fatalf("VersionId %s after one update, want 2", v)
		}
	})
}

// TestStreamNamedTwice: a body naming two streams is refused, not
// authorized for one and performed on the other.
func TestStreamNamedTwice(t *testing.T) {
	for _, body := range []string{
		`{"DeliveryStreamName":"allowed","DeliveryStreamName":"other","Records":[{"Data":"YQo="}]}`,
		`{"DeliveryStreamName":"allowed","deliverystreamname":"other","Records":[{"Data":"YQo="}]}`,
	} {
		var in putRecordBatchInput
		err := decodeNamed([]byte(body), &in, &in.DeliveryStreamName)
		var e *api.Error
		if !errors.As(err, &e) || e.Code != "SerializationException" {
			t.Errorf("%s: %v, want a SerializationException", body, err)
		}
	}
	if n, err := streamName([]byte(`{"Records":[{"Data":"YQo="}],"deliveryStreamName":"late"}`)); n != "late" || err != nil {
		t.Errorf("streamName = %q, %v", n, err)
	}
}

func clientError(t *testing.T, err error) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("error %v is not a client error", err)
	}
}
