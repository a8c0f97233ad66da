package console_test

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowlog/flowlog/internal/api/apitest"
)

// produceLines produces lines to partition to of topic, or, when to is
// negative, to its partitions 0 to -to-1 in turn.
func produceLines(t *testing.T, brokers, topic string, to int32, lines []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, len(lines))
	for i, l := range lines {
		p := to
		if to < 0 {
			p = int32(i) % -to
		}
		recs = append(recs, &kgo.Record{Value: []byte(l), Partition: p})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// flowLines are n record lines in the format of env.kafkaFlowLog (the
// default format with tcp-flags), of 7 interfaces, accepted and
// rejected, to ports 443 and 22, an hour ago.
func flowLines(n, seed int) []string {
	start := time.Now().Add(-time.Hour).Unix()
	out := make([]string, 0, n)
	for i := range n {
		j := i + seed
		action, port := "ACCEPT", 443
		if j%3 == 0 {
			action, port = "REJECT", 22
		}
		out = append(out, fmt.Sprintf("2 123456789012 eni-0%d 10.0.%d.%d 10.0.9.9 %d %d 6 %d %d %d %d %s 2 OK",
			j%7, j%5, j%200, 40000+j%20000, port, 1+j%4, 60*(1+j%4), start+int64(j/10), start+int64(j/10)+30, action))
	}
	return out
}

// pageAll reads every page of base's records with query q, limit at a
// time, following the next tokens (token) or the offsets alone, and
// returns the rows as text, the last page and the tokens met.
func pageAll(t *testing.T, c *client, base string, q url.Values, limit int, token bool) (rows []string, last recordsPage, tokens []string) {
	t.Helper()
	q = maps(q)
	q.Set("limit", strconv.Itoa(limit))
	start, _ := strconv.Atoi(q.Get("offset"))
	for off := start; ; off += limit {
		var p recordsPage
		c.getJSON(base+"/records?"+q.Encode(), &p)
		if p.Offset != off {
			t.Fatalf("page at %d says offset %d", off, p.Offset)
		}
		for _, r := range p.Rows {
			rows = append(rows, rowText(r))
		}
		if !p.More {
			return rows, p, tokens
		}
		if len(p.Rows) != limit || p.Next == "" {
			t.Fatalf("page at %d: %d rows of %d, more, next %q", off, len(p.Rows), limit, p.Next)
		}
		tokens = append(tokens, p.Next)
		if token {
			q.Set("next", p.Next)
		}
		q.Set("offset", strconv.Itoa(off+limit))
	}
}

func maps(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// rowText is a row as the CSV download writes it: fields joined by
// commas, absent values "-".
func rowText(r []any) string {
	s := make([]string, len(r))
	for i, v := range r {
		switch v := v.(type) {
		case nil:
			s[i] = "-"
		case float64:
			s[i] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			s[i] = fmt.Sprint(v)
		}
	}
	return strings.Join(s, ",")
}

// csvRows downloads the records as CSV and returns the rows after the
// header, as rowText writes them.
func csvRows(t *testing.T, c *client, base string, q url.Values) []string {
	t.Helper()
	res, body := c.do("GET", base+"/records.csv?"+q.Encode(), nil, nil)
	cr := csv.NewReader(strings.NewReader(body))
	cr.FieldsPerRecord = -1 // a header line in the input changes the format
	rows, err := cr.ReadAll()
	if res.StatusCode != http.StatusOK || err != nil || len(rows) == 0 {
		t.Fatalf("csv: %s %v %.200s", res.Status, err, body)
	}
	var out []string
	for _, r := range rows[1:] {
		if r[0] == "version" {
			continue // the header of a format that follows
		}
		for i, v := range r {
			if v == "" {
				r[i] = "-"
			}
		}
		out = append(out, strings.Join(r, ","))
	}
	return out
}

// addPartitions makes topic's partitions count n.
func addPartitions(t *testing.T, brokers, topic string, n int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, n
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(context.Background(), cl)
	if err == nil && len(resp.Topics) == 1 {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create partitions of %s: %v", topic, err)
	}
}

// recreateTopic deletes topic and creates it again with n partitions.
func recreateTopic(t *testing.T, brokers, topic string, n int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{topic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	del.Topics = append(del.Topics, dt)
	if _, err := del.RequestWith(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, n)
}

// createTopic creates topic with n partitions.
func createTopic(t *testing.T, cl *kgo.Client, topic string, n int32) {
	t.Helper()
	// kfake deletes a topic at once; a create right after may still
	// find it for a moment.
	for try := 0; ; try++ {
		cr := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, n, 1
		cr.Topics = append(cr.Topics, ct)
		resp, err := cr.RequestWith(context.Background(), cl)
		if err == nil && len(resp.Topics) == 1 {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		if err == nil {
			return
		}
		if try == 20 {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKafkaPagesNextToken pages the records of a kafka flow log (created
// with the AWS CLI) over a topic of 3,000 messages in three partitions
// (and a few unreadable ones): with and without filters and since, the
// pages reached by their next tokens hold the same records in the same
// order as the pages reached by offset alone (the topic read from its
// start on each) and as the CSV download (analyze.Filter over the whole
// topic); partitions added between pages are read after the others, as a
// fresh read does. The tokens are opaque, bound to the flow log and its
// query, bounded in size; changed ones, ones of another flow log, and
// ones naming partitions that no longer exist are a 400, never a read.
func TestKafkaPagesNextToken(t *testing.T) {
	apitest.RequireCLI(t)
	_, brokers := kafkaTopic(t)
	e := startEnv(t)
	fl := e.kafkaFlowLog(t, "kafka://"+brokers+"/vpc-flows")
	lines := flowLines(3000, 0)
	// Unreadable lines among them: another format, and garbage.
	lines = slices.Insert(lines, 1234, "2 eni-0aaaaaaaaaaaaaaaa 10.0.0.1 10.0.0.2", "not a record")
	produceLines(t, brokers, "vpc-flows", -3, lines)

	c := e.client(t)
	c.mustLogin()
	base := "/console/api/flowlogs/" + fl.ID
	for _, tc := range []struct {
		name  string
		q     url.Values
		limit int
	}{
		{"all", url.Values{}, 50},
		{"rejected to 22", url.Values{"where": {"action = REJECT and dstport = 22"}}, 50},
		{"one interface, odd page", url.Values{"where": {`interface-id = "eni-03" and packets > 1`}}, 37},
		{"since", url.Values{"since": {time.Now().Add(-time.Hour + 150*time.Second).UTC().Format(time.RFC3339)}, "where": {"srcaddr in 10.0.2.0/24"}}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			byToken, last, tokens := pageAll(t, c, base, tc.q, tc.limit, true)
			byOffset, lastOff, _ := pageAll(t, c, base, tc.q, tc.limit, false)
			want := csvRows(t, c, base, tc.q)
			if len(want) == 0 || len(tokens) == 0 {
				t.Fatalf("%d records, %d pages", len(want), len(tokens)+1)
			}
			if !slices.Equal(byToken, byOffset) || !slices.Equal(byToken, want) {
				t.Fatalf("%d records by token, %d by offset, %d in the CSV; first difference by token at %d, by offset at %d",
					len(byToken), len(byOffset), len(want), firstDiff(byToken, want), firstDiff(byOffset, want))
			}
			if last.Total != len(want) || lastOff.Total != len(want) || last.Stats.Records != lastOff.Stats.Records ||
				last.Stats.Matched != lastOff.Stats.Matched || last.Stats.SkippedLines != lastOff.Stats.SkippedLines || !slices.Equal(last.Stats.Notes, lastOff.Stats.Notes) {
				t.Errorf("last page: total %d and stats %+v by token, %d and %+v by offset, want %d", last.Total, last.Stats, lastOff.Total, lastOff.Stats, len(want))
			}
			if tc.name == "all" && (last.Stats.SkippedLines != 2 || last.Stats.Records != 3000) {
				t.Errorf("stats %+v, want 3000 records and 2 unreadable lines", last.Stats)
			}
			for _, tok := range tokens {
				if len(tok) > 200 || strings.Contains(tok, "vpc-flows") {
					t.Fatalf("token %q: %d bytes", tok, len(tok))
				}
			}
			t.Logf("%s: %d records in %d pages", tc.name, len(want), len(tokens)+1)
		})
	}

	status := func(q url.Values) (int, string) {
		t.Helper()
		res, body := c.do("GET", base+"/records?"+q.Encode(), nil, nil)
		return res.StatusCode, body
	}
	var p recordsPage
	c.getJSON(base+"/records?limit=50", &p)
	tok := p.Next
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	changed := slices.Clone(raw)
	changed[3] ^= 1 // the offset
	longer := append(slices.Clone(raw), 0)
	for name, q := range map[string]url.Values{
		"changed":      {"next": {base64.RawURLEncoding.EncodeToString(changed)}},
		"longer":       {"next": {base64.RawURLEncoding.EncodeToString(longer)}},
		"garbage":      {"next": {"!!!"}},
		"empty bytes":  {"next": {"AA"}},
		"huge":         {"next": {strings.Repeat("A", 10000)}},
		"other where":  {"next": {tok}, "where": {"action = REJECT"}},
		"other since":  {"next": {tok}, "since": {"2h"}},
		"truncated":    {"next": {tok[:len(tok)-2]}},
		"json instead": {"next": {base64.RawURLEncoding.EncodeToString([]byte(`{"partition":0,"offset":0}`))}},
	} {
		if code, body := status(q); code != http.StatusBadRequest || !strings.Contains(body, "not one this server made") {
			t.Errorf("%s token: %d %s", name, code, body)
		}
	}

	// Another flow log on another topic: the token of one is refused
	// for the other, before its topic is read.
	admin, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	createTopic(t, admin, "other-flows", 2)
	produceLines(t, brokers, "other-flows", -2, flowLines(100, 7))
	other := e.kafkaFlowLog(t, "kafka://"+brokers+"/other-flows")
	res, body := c.do("GET", "/console/api/flowlogs/"+other.ID+"/records?"+url.Values{"next": {tok}}.Encode(), nil, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not one this server made for this flow log") {
		t.Errorf("flow log %s's token for %s: %s %s", fl.ID, other.ID, res.Status, body)
	}

	// Partitions added between pages: the pages go on into them after
	// the others, as a fresh read (offsets alone, the CSV) does.
	q := url.Values{"limit": {"500"}, "where": {"action = REJECT"}}
	c.getJSON(base+"/records?"+q.Encode(), &p)
	addPartitions(t, brokers, "vpc-flows", 5)
	produceLines(t, brokers, "vpc-flows", 4, flowLines(90, 1))
	produceLines(t, brokers, "vpc-flows", 3, flowLines(30, 2))
	rows := []string{}
	for _, r := range p.Rows {
		rows = append(rows, rowText(r))
	}
	q.Set("next", p.Next)
	q.Set("offset", "500")
	rest, _, _ := pageAll(t, c, base, q, 500, true)
	rows = append(rows, rest...)
	q.Del("next")
	q.Del("offset")
	want := csvRows(t, c, base, q)
	byOffset, _, _ := pageAll(t, c, base, q, 500, false)
	if !slices.Equal(rows, want) || !slices.Equal(byOffset, want) || len(want) != 1000+40 {
		t.Fatalf("partitions added: %d records by token, %d by offset, %d in the CSV (want 1040)", len(rows), len(byOffset), len(want))
	}

	// A token into the last partition of a topic since deleted and
	// created again with one partition: a 400 naming the partition.
	q = url.Values{"limit": {"10"}, "offset": {strconv.Itoa(len(want) - 20)}, "where": {"action = REJECT"}}
	c.getJSON(base+"/records?"+q.Encode(), &p)
	if !p.More {
		t.Fatal("no next page near the end")
	}
	recreateTopic(t, brokers, "vpc-flows", 1)
	produceLines(t, brokers, "vpc-flows", 0, flowLines(10, 0))
	q.Set("next", p.Next)
	if code, body := status(q); code != http.StatusBadRequest || !strings.Contains(body, "partition 4 of topic vpc-flows") || !strings.Contains(body, "no longer exists") {
		t.Errorf("token into partition 4, now gone: %d %s", code, body)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestKafkaPagesHeaders: a header line in the topic (another producer's)
// switches the format of the lines after it, in this partition and the
// next, as analyze's reader does; a page that starts after it (its token
// carries the format) reads them as the pages by offset and the CSV
// download do.
func TestKafkaPagesHeaders(t *testing.T) {
	apitest.RequireCLI(t)
	_, brokers := kafkaTopic(t)
	e := startEnv(t)
	admin, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	createTopic(t, admin, "headers", 2)
	fl := e.kafkaFlowLog(t, "kafka://"+brokers+"/headers")
	short := func(n, seed int) []string {
		var out []string
		for _, l := range flowLines(n, seed) {
			f := strings.Fields(l)
			out = append(out, strings.Join([]string{f[0], f[2], f[3], f[4], f[10], f[11], f[12], f[14]}, " "))
		}
		return out
	}
	p0 := append(flowLines(100, 0), "${version} ${interface-id} ${srcaddr} ${dstaddr} ${start} ${end} ${action} ${log-status}")
	produceLines(t, brokers, "headers", 0, append(p0, short(100, 1)...))
	produceLines(t, brokers, "headers", 1, short(100, 2))
	c := e.client(t)
	c.mustLogin()
	base := "/console/api/flowlogs/" + fl.ID
	for _, where := range []string{"", "srcaddr in 10.0.1.0/24"} {
		q := url.Values{}
		if where != "" {
			q.Set("where", where)
		}
		byToken, last, _ := pageAll(t, c, base, q, 30, true)
		byOffset, _, _ := pageAll(t, c, base, q, 30, false)
		want := csvRows(t, c, base, q)
		// A page lays rows of another format out by its first row's
		// columns, the CSV writes them as they are: the two are compared
		// by number, the pages by token and by offset row by row.
		if len(want) == 0 || !slices.Equal(byToken, byOffset) || len(byToken) != len(want) {
			t.Fatalf("where %q: %d records by token, %d by offset, %d in the CSV; first difference at %d", where, len(byToken), len(byOffset), len(want), firstDiff(byToken, byOffset))
		}
		if where == "" && (last.Total != 300 || last.Stats.SkippedLines != 0) {
			t.Errorf("%d records, %d unreadable lines; want 300 and none", last.Total, last.Stats.SkippedLines)
		}
	}
}
