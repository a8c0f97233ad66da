package firehose_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/firehose"
)

// flowLine is a version 2 flow log record of the usual length.
const flowLine = "2 123456789012 eni-0a1b2c3d4e5f60789 10.0.1.23 10.0.2.45 49152 443 6 10 8400 1718000000 1718000060 ACCEPT OK\n"

// BenchmarkPutRecordBatch: calls of 500 flow log lines through the SDK
// and the HTTP server, each committed to the store before its answer;
// the deliverer writes 1 MiB objects meanwhile, as in production.
func BenchmarkPutRecordBatch(b *testing.B) {
	ctx := context.Background()
	_, svc := startService(b, b.TempDir(), firehose.Options{BucketsDir: b.TempDir()})
	c := client(apitest.Start(b, api.Options{Services: []api.Service{svc}}).URL)
	if _, err := c.CreateDeliveryStream(ctx, &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("bench"), ExtendedS3DestinationConfiguration: s3dest("bench", 1, 60)}); err != nil {
		b.Fatal(err)
	}
	in := &sdk.PutRecordBatchInput{DeliveryStreamName: aws.String("bench")}
	for range firehose.MaxBatchRecords {
		in.Records = append(in.Records, types.Record{Data: []byte(flowLine)})
	}
	b.SetBytes(int64(len(flowLine) * firehose.MaxBatchRecords))
	start := time.Now()
	for b.Loop() {
		if _, err := c.PutRecordBatch(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*firehose.MaxBatchRecords)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkPutRecordBatchParallel: four clients at once.
func BenchmarkPutRecordBatchParallel(b *testing.B) {
	ctx := context.Background()
	_, svc := startService(b, b.TempDir(), firehose.Options{BucketsDir: b.TempDir()})
	c := client(apitest.Start(b, api.Options{Services: []api.Service{svc}}).URL)
	for i := range 4 {
		if _, err := c.CreateDeliveryStream(ctx, &sdk.CreateDeliveryStreamInput{DeliveryStreamName: aws.String(fmt.Sprint("bench", i)), ExtendedS3DestinationConfiguration: s3dest("bench", 1, 60)}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(flowLine) * firehose.MaxBatchRecords))
	b.SetParallelism(2) // 2 × GOMAXPROCS clients
	next := make(chan int, 64)
	for i := 0; i < 64; i++ {
		next <- i % 4
	}
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		in := &sdk.PutRecordBatchInput{DeliveryStreamName: aws.String(fmt.Sprint("bench", <-next))}
		for range firehose.MaxBatchRecords {
			in.Records = append(in.Records, types.Record{Data: []byte(flowLine)})
		}
		for pb.Next() {
			if _, err := c.PutRecordBatch(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*firehose.MaxBatchRecords)/time.Since(start).Seconds(), "records/s")
}
