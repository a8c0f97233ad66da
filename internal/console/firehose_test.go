package console_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/chromedp/chromedp"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/ec2"
	fhsink "github.com/flowlog/flowlog/internal/sink/firehose"
)

// firehoseClient calls the env's Firehose API over HTTP as the test
// administrator.
func (e *env) firehoseClient() *awsfirehose.Client {
	return awsfirehose.New(awsfirehose.Options{Region: apitest.Region, BaseEndpoint: aws.String(e.srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, "")})
}

// firehoseFlowLog creates delivery stream name (bucket flow-bucket,
// prefix vpc/, gzipped, delivered at the deliverer's next tick) and a
// kinesis-data-firehose flow log of the VPC delivering to it, whose
// records the pipeline then delivers from testdata/sample.pcap.gz with
// PutRecordBatch calls, as an agent does. It returns the flow log once
// every record is in an object, and how many records there are.
func (e *env) firehoseFlowLog(t *testing.T, name string) (ec2.FlowLog, int) {
	t.Helper()
	ctx := context.Background()
	client := e.firehoseClient()
	_, err := client.CreateDeliveryStream(ctx, &awsfirehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String(name),
		ExtendedS3DestinationConfiguration: &types.ExtendedS3DestinationConfiguration{
			BucketARN: aws.String("arn:aws:s3:::flow-bucket"), RoleARN: aws.String("arn:aws:iam::" + apitest.AccountID + ":role/firehose"),
			Prefix: aws.String("vpc/"), CompressionFormat: types.CompressionFormatGzip,
			BufferingHints: &types.BufferingHints{SizeInMBs: aws.Int32(1), IntervalInSeconds: aws.Int32(0)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	format := strings.Replace(flow.DefaultFormatText, "${action} ${log-status}", "${action} ${tcp-flags} ${log-status}", 1)
	id := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "VPC", ResourceIDs: []string{testVPC}, TrafficType: "ALL",
		LogDestinationType: "kinesis-data-firehose", LogDestination: e.fh.StreamARN(name), LogFormat: format, MaxAggregationInterval: 60})
	out, err := e.ec2.DescribeFlowLogs(ctx, ec2.DescribeFlowLogsInput{FlowLogIDs: []string{id}})
	if err != nil || len(out.FlowLogs) != 1 {
		t.Fatalf("describe %s: %v %+v", id, err, out)
	}
	fl := out.FlowLogs[0]
	f, err := flow.ParseFormat(fl.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fhsink.New(fhsink.Config{Stream: name, Format: f, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	st := runPipeline(t, fl, s)
	n := int(s.Stats().Records)
	if n == 0 || uint64(n) != st.Records {
		t.Fatalf("firehose sink accepted %d records of the pipeline's %d", n, st.Records)
	}
	// Delivered: the objects hold every line.
	deadline := time.Now().Add(15 * time.Second)
	for {
		lines := 0
		filepath.WalkDir(filepath.Join(e.buckets, "flow-bucket"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".gz") {
				lines += gzLines(t, p)
			}
			return nil
		})
		if lines == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the stream's objects hold %d lines of %d", lines, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fl, n
}

// gzLines counts the lines of a gzipped object.
func gzLines(t *testing.T, path string) int {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	rd := flow.NewReader(in, flow.ReaderOptions{})
	n := 0
	for {
		if _, _, err := rd.NextLine(); err != nil {
			return n
		}
		n++
	}
}

// TestRecordsOfFirehose reads the records of a kinesis-data-firehose flow
// log from the objects the server's own Firehose API delivered: records
// of testdata/sample.pcap.gz sent by the project's pipeline and Firehose
// sink, then paged, filtered, downloaded as CSV, charted and read as
// conversations; a stream of another account or region, or one that does
// not exist, is refused with why.
func TestRecordsOfFirehose(t *testing.T) {
	e := startEnv(t)
	fl, n := e.firehoseFlowLog(t, "vpc-flows")
	c := e.client(t)
	c.mustLogin()
	base := "/console/api/flowlogs/" + fl.ID
	var page recordsPage
	get := func(q string) {
		t.Helper()
		page = recordsPage{} // fields an answer leaves out must not stay from the last
		c.getJSON(base+"/records?"+q, &page)
	}
	get("limit=1000&offset=" + itoa(int64(n-10)))
	if page.Total != n || len(page.Rows) != 10 || page.More || page.Columns[len(page.Columns)-2] != "tcp-flags" {
		t.Fatalf("last page: total %d of %d, %d rows, columns %v", page.Total, n, len(page.Rows), page.Columns)
	}
	if !hasNote(page.Stats.Notes, "may also hold the records of other flow logs") {
		t.Errorf("notes: %q", page.Stats.Notes)
	}
	dns := checkUDP53(t, c, base)
	if dns == 0 || dns >= n {
		t.Fatalf("udp to port 53: %d of %d", dns, n)
	}
	t.Logf("%d records, %d of them udp to port 53", n, dns)
	// The capture is of 2015: reading since then lists every object; the
	// objects are named for today, so a since after them reads none.
	checkSince2015(t, c, base)
	get("since=" + url.QueryEscape(time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339)))
	if page.Total != 0 || !hasNote(page.Stats.Notes, "has delivered no object") {
		t.Errorf("since in 3 hours: total %d, notes %q", page.Total, page.Stats.Notes)
	}

	// Charts and conversations read through the same path.
	var charts struct {
		Summary struct{ Records int }
	}
	c.getJSON(base+"/charts", &charts)
	if charts.Summary.Records != n {
		t.Errorf("charts: %d records, want %d", charts.Summary.Records, n)
	}
	var conns struct{ Connections []map[string]any }
	c.getJSON(base+"/connections", &conns)
	if len(conns.Connections) == 0 {
		t.Error("no conversations")
	}

	// A stream of another region, and one that does not exist.
	foreign := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "Subnet", ResourceIDs: []string{testSubnet}, TrafficType: "ALL",
		LogDestinationType: "kinesis-data-firehose", LogDestination: "arn:aws:firehose:eu-west-1:" + apitest.AccountID + ":deliverystream/vpc-flows"})
	res, body := c.do("GET", "/console/api/flowlogs/"+foreign+"/records", nil, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "UnsupportedOperation") || !strings.Contains(body, "in region eu-west-1") ||
		!strings.Contains(body, "reads only the delivery streams of this server's Firehose API") {
		t.Errorf("stream of another region: %s %s", res.Status, body)
	}
	gone := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "Subnet", ResourceIDs: []string{testSubnet}, TrafficType: "ALL",
		LogDestinationType: "kinesis-data-firehose", LogDestination: e.fh.StreamARN("gone")})
	res, body = c.do("GET", "/console/api/flowlogs/"+gone+"/records", nil, nil)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "delivery stream gone, which does not exist on this server") {
		t.Errorf("stream that does not exist: %s %s", res.Status, body)
	}
}

// TestBrowserFirehose shows a kinesis-data-firehose flow log's records in
// headless chromium: the records page, its CSV download, and the page of
// a flow log whose stream is another account's, which says why it cannot
// be read.
func TestBrowserFirehose(t *testing.T) {
	e := startEnv(t)
	fl, n := e.firehoseFlowLog(t, "vpc-flows")
	foreign := e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: "Subnet", ResourceIDs: []string{testSubnet}, TrafficType: "ALL",
		LogDestinationType: "kinesis-data-firehose", LogDestination: "arn:aws:firehose:" + apitest.Region + ":111122223333:deliverystream/flows"})
	b := newBrowser(t, e.srv.URL)
	b.login()
	b.do("records",
		chromedp.Navigate(b.base+"/#/records/"+fl.ID),
		chromedp.WaitVisible(chromedp.CSS("#records-table tbody tr")))
	if cap := b.text("#records-table caption"); !strings.HasPrefix(cap, "Records 1–50") {
		t.Errorf("records caption: %q", cap)
	}
	if notes := b.text("ul.notes"); !strings.Contains(notes, "delivery stream vpc-flows may also hold the records of other flow logs") {
		t.Errorf("notes: %q", notes)
	}
	b.shot("firehose-01-records")
	csvText := eval[string](b, `fetch(document.getElementById('csv-download').href).then(r => r.text())`)
	if lines := strings.Split(strings.TrimSpace(csvText), "\n"); len(lines) != n+1 || !strings.HasSuffix(lines[0], ",action,tcp-flags,log-status") {
		t.Errorf("csv download: %d lines (want %d), header %q", len(lines), n+1, lines[0])
	}
	b.do("foreign stream",
		chromedp.Navigate(b.base+"/#/records/"+foreign),
		chromedp.Poll[chromedp.Void](`document.getElementById('status').textContent.includes('UnsupportedOperation')`))
	if st := b.text("#status"); !strings.Contains(st, "of account 111122223333") || !strings.Contains(st, "reads only the delivery streams of this server's Firehose API") {
		t.Errorf("status of a stream of another account: %q", st)
	}
	b.shot("firehose-02-foreign-stream")
}
