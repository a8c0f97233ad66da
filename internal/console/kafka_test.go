package console_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/console"
	"github.com/flowlog/flowlog/internal/sink/kafka"
)

// kafkaTopic is a kfake cluster (a Kafka wire-protocol server in this
// process) holding topic vpc-flows in three partitions.
func kafkaTopic(t *testing.T) (c *kfake.Cluster, brokers string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "vpc-flows"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

// kafkaFlowLog creates, with the AWS CLI over the EC2 Query API, a
// kafka flow log of the VPC delivering to url with tcp-flags in its
// format, and returns it.
func (e *env) kafkaFlowLog(t *testing.T, url string) ec2.FlowLog {
	t.Helper()
	format := strings.Replace(flow.DefaultFormatText, "${action} ${log-status}", "${action} ${tcp-flags} ${log-status}", 1)
	var out struct {
		FlowLogIds   []string
		Unsuccessful []any
	}
	e.srv.NewCLI().JSON(t, &out, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", testVPC, "--traffic-type", "ALL",
		"--log-destination-type", "kafka", "--log-destination", url, "--log-format", format, "--max-aggregation-interval", "60")
	if len(out.FlowLogIds) != 1 || len(out.Unsuccessful) != 0 {
		t.Fatalf("create-flow-logs: %+v", out)
	}
	d, err := e.ec2.DescribeFlowLogs(context.Background(), ec2.DescribeFlowLogsInput{FlowLogIDs: out.FlowLogIds})
	if err != nil || len(d.FlowLogs) != 1 {
		t.Fatalf("describe %s: %v %+v", out.FlowLogIds[0], err, d)
	}
	return d.FlowLogs[0]
}

// deliverToKafka runs testdata/sample.pcap.gz (twice) through the
// pipeline into the project's Kafka sink for fl, as an agent delivers,
// and returns how many records the brokers acknowledged.
func deliverToKafka(t *testing.T, fl ec2.FlowLog, brokers, topic string) int {
	t.Helper()
	f, err := flow.ParseFormat(fl.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kafka.New(kafka.Config{Brokers: strings.Split(brokers, ","), Topic: topic, Format: f})
	if err != nil {
		t.Fatal(err)
	}
	st := runPipeline(t, fl, s)
	n := int(s.Stats().Records)
	if n == 0 || uint64(n) != st.Records {
		t.Fatalf("kafka sink: the brokers acknowledged %d records of the pipeline's %d", n, st.Records)
	}
	return n
}

// topicLines consumes every message of topic, as a plain Kafka client
// does, to check the console against.
func topicLines(t *testing.T, brokers, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var lines []string
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { lines = append(lines, string(r.Value)) })
	}
	return lines
}

// TestRecordsOfKafka reads the records of a kafka flow log (created with
// the AWS CLI) from its topic on kfake, where the project's pipeline and
// Kafka sink delivered testdata/sample.pcap.gz: paged, filtered, as CSV,
// charts and conversations, since a time; lines of another flow log in
// the topic are counted unreadable; only ec2:DescribeFlowLogs is needed;
// with the console's cap, the first messages; brokers that refuse, do
// not answer, or lack the topic are a page error naming them, within
// seconds.
func TestRecordsOfKafka(t *testing.T) {
	apitest.RequireCLI(t)
	_, brokers := kafkaTopic(t)
	e := startEnv(t)
	fl := e.kafkaFlowLog(t, "kafka://"+brokers+"/vpc-flows")
	n := deliverToKafka(t, fl, brokers, "vpc-flows")

	// Another flow log of another format delivers to the topic too.
	other, err := flow.ParseFormat("${version} ${interface-id} ${srcaddr} ${dstaddr}")
	if err != nil {
		t.Fatal(err)
	}
	s, err := kafka.New(kafka.Config{Brokers: strings.Split(brokers, ","), Topic: "vpc-flows", Format: other})
	if err != nil {
		t.Fatal(err)
	}
	foreign := []flow.Record{{Version: 2, InterfaceID: "eni-0aaaaaaaaaaaaaaaa"}, {Version: 2, InterfaceID: "eni-0bbbbbbbbbbbbbbbb"}, {Version: 2, InterfaceID: "eni-0cccccccccccccccc"}}
	if err := s.Write(foreign); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// What a plain consumer finds in the topic.
	f, err := flow.ParseFormat(fl.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	all := topicLines(t, brokers, "vpc-flows")
	if len(all) != n+len(foreign) {
		t.Fatalf("the topic holds %d messages, want %d", len(all), n+len(foreign))
	}
	dns := 0
	for _, l := range all {
		var r flow.Record
		if f.ParseRecord([]byte(l), &r) == nil && r.Protocol == 17 && r.DstPort == 53 {
			dns++
		}
	}

	c := e.client(t)
	c.mustLogin()
	base := "/console/api/flowlogs/" + fl.ID
	var page recordsPage
	get := func(q string) {
		t.Helper()
		page = recordsPage{}
		c.getJSON(base+"/records?"+q, &page)
	}
	get("limit=1000&offset=" + itoa(int64(n-10)))
	if page.Total != n || len(page.Rows) != 10 || page.More || page.Columns[len(page.Columns)-2] != "tcp-flags" {
		t.Fatalf("last page: total %d of %d, %d rows, columns %v", page.Total, n, len(page.Rows), page.Columns)
	}
	if page.Stats.SkippedLines != len(foreign) || !hasNote(page.Stats.Notes, "topic vpc-flows may also hold the records of other flow logs") {
		t.Errorf("skipped %d lines (want the other flow log's %d), notes %q", page.Stats.SkippedLines, len(foreign), page.Stats.Notes)
	}
	if got := checkUDP53(t, c, base); got != dns || dns == 0 {
		t.Fatalf("udp to port 53: %d, the topic holds %d", got, dns)
	}
	t.Logf("%d records, %d of them udp to port 53", n, dns)
	// The capture is of 2015, the messages were produced now: since
	// 2015 reads them all; since in 3 hours lists no message to read
	// (ListOffsets by time).
	checkSince2015(t, c, base)
	get("since=" + url.QueryEscape(time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339)))
	if page.Total != 0 || page.Stats.SkippedLines != 0 || !hasNote(page.Stats.Notes, "topic vpc-flows holds no message in this time range") {
		t.Errorf("since in 3 hours: total %d, skipped %d, notes %q", page.Total, page.Stats.SkippedLines, page.Stats.Notes)
	}

	var charts struct {
		Summary struct{ Records int }
		Series  []any
	}
	c.getJSON(base+"/charts", &charts)
	if charts.Summary.Records != n || len(charts.Series) == 0 {
		t.Errorf("charts: %d records (want %d), %d points", charts.Summary.Records, n, len(charts.Series))
	}
	checkConversations(t, c, base)

	// ec2:DescribeFlowLogs on the flow log is all it takes: Kafka has
	// no AWS action.
	cli := e.srv.NewCLI()
	for _, u := range []struct{ name, action string }{{"kafka-reader", "ec2:DescribeFlowLogs"}, {"no-reader", "ec2:DescribeInstances"}} {
		cli.JSON(t, nil, "iam", "create-user", "--user-name", u.name)
		cli.JSON(t, nil, "iam", "put-user-policy", "--user-name", u.name, "--policy-name", "read", "--policy-document",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["`+u.action+`"],"Resource":"*"}]}`)
		var key struct {
			AccessKey struct{ AccessKeyID, SecretAccessKey string }
		}
		cli.JSON(t, &key, "iam", "create-access-key", "--user-name", u.name)
		uc := e.client(t)
		if res, body := uc.login(key.AccessKey.AccessKeyID, key.AccessKey.SecretAccessKey); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s login: %s %s", u.name, res.Status, body)
		}
		res, body := uc.do("GET", base+"/records?limit=1", nil, nil)
		switch want := u.name == "kafka-reader"; {
		case want && res.StatusCode != http.StatusOK, !want && (res.StatusCode != http.StatusForbidden || !strings.Contains(body, "ec2:DescribeFlowLogs")):
			t.Errorf("%s (allowed %s): %s %s", u.name, u.action, res.Status, body)
		}
	}

	// With the console's cap, the first messages are read, and the page
	// says so.
	capped := startEnvWith(t, func(o *console.Options) { o.MaxEvents = 100 })
	cfl := capped.kafkaFlowLog(t, "kafka://"+brokers+"/vpc-flows")
	cc := capped.client(t)
	cc.mustLogin()
	page = recordsPage{}
	cc.getJSON("/console/api/flowlogs/"+cfl.ID+"/records?limit=1000", &page)
	if page.Total+page.Stats.SkippedLines != 100 || !hasNote(page.Stats.Notes, "only the first 100 messages of topic vpc-flows are read") {
		t.Errorf("capped at 100: %d records and %d unreadable lines, notes %q", page.Total, page.Stats.SkippedLines, page.Stats.Notes)
	}
}

// TestKafkaBrokerFaults: brokers that refuse, brokers that do not
// answer, a missing topic, and brokers that list the topic and then never
// answer a fetch are each a page error naming the flow log and the
// brokers, within seconds (the cases run side by side).
func TestKafkaBrokerFaults(t *testing.T) {
	t.Parallel()
	apitest.RequireCLI(t)
	_, brokers := kafkaTopic(t)
	e := startEnv(t)
	c := e.client(t)
	c.mustLogin()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var held []net.Conn // open, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	// Brokers that list the topic, then hold every fetch unanswered.
	stall, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "stalled"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stall.Close)
	stalled := e.kafkaFlowLog(t, "kafka://"+stall.ListenAddrs()[0]+"/stalled")
	deliverToKafka(t, stalled, stall.ListenAddrs()[0], "stalled")
	stall.ControlKey(kmsg.Fetch.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		stall.KeepControl()
		return nil, nil, true // no answer, the connection held open
	})

	for _, tc := range []struct {
		name      string
		id        string // the flow log; "" creates one for url
		resource  [2]string
		url, code string
		status    int
		says      string
		within    time.Duration
	}{
		{"refused", "", [2]string{"Subnet", testSubnet}, "kafka://127.0.0.1:1/flows", "DestinationUnreadable", http.StatusBadGateway,
			"read topic flows on 127.0.0.1:1: unable to dial: dial tcp 127.0.0.1:1: connect: connection refused", time.Second},
		{"silent", "", [2]string{"Subnet", testSubnet}, "kafka://" + silent.Addr().String() + "/flows", "DestinationUnreadable", http.StatusBadGateway,
			"brokers " + silent.Addr().String() + " did not answer within 5s", 7 * time.Second},
		{"missing topic", "", [2]string{"NetworkInterface", testENI}, "kafka://" + brokers + "/nope", "DestinationNotFound", http.StatusNotFound,
			"delivers to topic nope on brokers " + brokers + ", which does not exist", time.Second},
		{"stalled fetches", stalled.ID, [2]string{}, "", "DestinationUnreadable", http.StatusBadGateway,
			"'s topic stalled on brokers " + stall.ListenAddrs()[0] + ": the brokers sent nothing for 10s (0 messages read)", 13 * time.Second},
	} {
		id := tc.id
		if id == "" {
			id = e.createFlowLog(t, ec2.CreateFlowLogsInput{ResourceType: tc.resource[0], ResourceIDs: []string{tc.resource[1]}, TrafficType: "ALL",
				LogDestinationType: "kafka", LogDestination: tc.url})
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			res, body := c.do("GET", "/console/api/flowlogs/"+id+"/records", nil, nil)
			took := time.Since(began)
			var got struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal([]byte(body), &got)
			if res.StatusCode != tc.status || got.Error.Code != tc.code || !strings.Contains(got.Error.Message, id) || !strings.Contains(got.Error.Message, tc.says) {
				t.Errorf("%s %s, want %d %s saying %q", res.Status, body, tc.status, tc.code, tc.says)
			}
			if took > tc.within {
				t.Errorf("the page took %v, want at most %v", took, tc.within)
			}
			t.Logf("%v: %s", took.Round(time.Millisecond), got.Error.Message)
		})
	}
}

// TestBrowserKafka shows a kafka flow log's records in headless
// chromium, with the notes on what the topic holds.
func TestBrowserKafka(t *testing.T) {
	apitest.RequireCLI(t)
	_, brokers := kafkaTopic(t)
	e := startEnv(t)
	fl := e.kafkaFlowLog(t, "kafka://"+brokers+"/vpc-flows")
	n := deliverToKafka(t, fl, brokers, "vpc-flows")
	b := newBrowser(t, e.srv.URL)
	b.login()
	b.do("records",
		chromedp.Navigate(b.base+"/#/records/"+fl.ID),
		chromedp.WaitVisible(chromedp.CSS("#records-table tbody tr")))
	if cap := b.text("#records-table caption"); !strings.HasPrefix(cap, "Records 1–50") {
		t.Errorf("records caption: %q", cap)
	}
	if notes := b.text("ul.notes"); !strings.Contains(notes, "topic vpc-flows may also hold the records of other flow logs") {
		t.Errorf("notes: %q", notes)
	}
	if opt := b.text("#qb-flowlog"); !strings.Contains(opt, "kafka://"+brokers+"/vpc-flows") {
		t.Errorf("flow log picker: %q", opt)
	}
	b.shot("kafka-01-records")
	csvText := eval[string](b, `fetch(document.getElementById('csv-download').href).then(r => r.text())`)
	lines := strings.Split(strings.TrimSpace(csvText), "\n")
	if len(lines) != n+1 || !strings.HasSuffix(lines[0], ",action,tcp-flags,log-status") {
		t.Errorf("csv download: %d lines (want %d), header %q", len(lines), n+1, lines[0])
	}

	// Next goes on from where the page stopped (the signed token in the
	// address), Previous by offset: the same records as the CSV, in its
	// order.
	if n < 150 {
		t.Fatalf("%d records: too few for three pages", n)
	}
	firstRow := func() string {
		return eval[string](b, `[...document.querySelectorAll('#records-table tbody tr:first-child td')].map(td => td.textContent === '-' ? '' : td.textContent).join(',')`)
	}
	for _, pg := range []struct {
		button, caption string
		first           int
	}{{"next-page", "Records 51–100", 51}, {"next-page", "Records 101–150", 101}, {"prev-page", "Records 51–100", 51}} {
		b.do(pg.caption, chromedp.Click(chromedp.ID(pg.button)),
			chromedp.Poll[chromedp.Void](`document.querySelector('#records-table caption')?.textContent.startsWith('`+pg.caption+`')`))
		hash := eval[string](b, `location.hash`)
		if strings.Contains(hash, "next=") != (pg.button == "next-page") || strings.Contains(hash, "vpc-flows") {
			t.Errorf("%s: address %s", pg.caption, hash)
		}
		if row, want := firstRow(), strings.ReplaceAll(lines[pg.first], "-", ""); strings.ReplaceAll(row, "-", "") != want {
			t.Errorf("%s: first row %q, CSV line %d %q", pg.caption, row, pg.first, lines[pg.first])
		}
	}
	b.shot("kafka-02-next-page")
}
