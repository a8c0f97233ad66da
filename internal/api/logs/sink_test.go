package logs_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/logs"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
)

// sdkClient is aws-sdk-go-v2's CloudWatch Logs client pointed at srv.
// Its connections are closed when the test ends, before the server
// shuts down: a connection dialed but never used (the transport dials
// ahead for parallel calls) would hold the server's graceful shutdown
// for 5 s, the time net/http gives a new connection to send a request.
func sdkClient(t testing.TB, srv *apitest.Server) *cloudwatchlogs.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return cloudwatchlogs.NewFromConfig(aws.Config{
		Region:      apitest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: tr},
	}, func(o *cloudwatchlogs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

// TestCloudWatchSink points flowlog's own CloudWatch Logs destination at
// the server: it creates the group and the streams, and every record
// arrives exactly once, in each stream in time order, and reads back
// with GetLogEvents (followed with the SDK's paginator, which stops when
// the forward token repeats) and FilterLogEvents.
func TestCloudWatchSink(t *testing.T) {
	_, srv := start(t, logs.Options{})
	client := sdkClient(t, srv)
	const group = "/flowlog/vpc-0123456789abcdef0"
	format := flow.DefaultFormat()
	sink, err := cloudwatch.New(cloudwatch.Config{Group: group, Format: format, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	// 12 one-minute windows of 3,000 records over 4 interfaces: a flush
	// of 12,000 events per window and stream batches cut by the 1 MiB
	// limit. Every seventh record is a REJECT.
	first := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).Unix()
	want := map[string][]string{}
	var rejects int
	for w := range int64(12) {
		recs := sinktest.Window(3, first+w*60, 3000, 4)
		for i := range recs {
			if i%7 == 0 {
				recs[i].Action = flow.ActionReject
				rejects++
			}
			st := cloudwatch.StreamName(recs[i].InterfaceID)
			want[st] = append(want[st], string(format.Append(nil, &recs[i])))
		}
		if err := sink.Write(recs); err != nil {
			t.Fatal(err)
		}
		if w%3 == 2 {
			if err := sink.Advance(first + w*60 + 60); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	st := sink.Stats()
	if st.Events != 36000 || st.RejectedEvents != 0 || st.Created != 5 {
		t.Errorf("sink stats %+v: want 36000 events, none rejected, group and 4 streams created", st)
	}

	ctx := context.Background()
	streams, err := client.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(group)})
	if err != nil {
		t.Fatal(err)
	}
	if len(streams.LogStreams) != len(want) {
		t.Fatalf("%d streams, want %d", len(streams.LogStreams), len(want))
	}
	total := 0
	for stream, lines := range want {
		var got []string
		var lastTS int64
		p := cloudwatchlogs.NewGetLogEventsPaginator(client, &cloudwatchlogs.GetLogEventsInput{
			LogGroupName: aws.String(group), LogStreamName: aws.String(stream), StartFromHead: aws.Bool(true), Limit: aws.Int32(2500)},
			func(o *cloudwatchlogs.GetLogEventsPaginatorOptions) { o.StopOnDuplicateToken = true })
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, e := range out.Events {
				if *e.Timestamp < lastTS {
					t.Fatalf("stream %s: events out of time order", stream)
				}
				lastTS = *e.Timestamp
				got = append(got, *e.Message)
			}
			if pages > 100 {
				t.Fatal("GetLogEvents paginator does not stop")
			}
		}
		// Records of one start second may come in any order within it;
		// compare as multisets: each exactly once.
		slices.Sort(got)
		exp := slices.Clone(lines)
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			t.Errorf("stream %s: %d events read back, want %d (or different messages)", stream, len(got), len(exp))
		}
		total += len(got)
	}
	if total != 36000 {
		t.Errorf("%d events read back, want 36000", total)
	}

	// FilterLogEvents with the plain-term REJECT, paginated by the SDK.
	fp := cloudwatchlogs.NewFilterLogEventsPaginator(client, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), FilterPattern: aws.String("REJECT")})
	n := 0
	for fp.HasMorePages() {
		out, err := fp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			if !strings.HasSuffix(*e.Message, " REJECT OK") {
				t.Fatalf("REJECT filter returned %q", *e.Message)
			}
			n++
		}
	}
	if n != rejects {
		t.Errorf("filter REJECT: %d events, want %d", n, rejects)
	}
}
