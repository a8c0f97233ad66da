package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAnalyzeKafka: the records `flowlog read --dest kafka://…` put in a
// topic (kfake, three partitions) give the same reports through
// `flowlog analyze … kafka://…` as the same records read from a file;
// a missing topic is an error before any report.
func TestAnalyzeKafka(t *testing.T) {
	c := kafkaCluster(t, "flows")
	topic := "kafka://" + c.ListenAddrs()[0] + "/flows"
	if code, _, stderr := flowlog(t, nil, "read", "--dest", topic, samplePath); code != 0 {
		t.Fatalf("read --dest kafka: exit %d: %s", code, stderr)
	}
	code, out, stderr := flowlog(t, nil, "read", samplePath)
	if code != 0 {
		t.Fatalf("read: exit %d: %s", code, stderr)
	}
	file := filepath.Join(t.TempDir(), "records.log")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, report := range [][]string{
		{"top", "--by", "srcaddr,dstport", "--limit", "0"},
		{"summary", "--output", "json"},
		{"connections", "--protocol", "all"},
	} {
		code, fromFile, stderr := flowlog(t, nil, append(append([]string{"analyze"}, report...), file)...)
		if code != 0 {
			t.Fatalf("%v on the file: exit %d: %s", report, code, stderr)
		}
		code, fromTopic, stderr := flowlog(t, nil, append(append([]string{"analyze"}, report...), topic)...)
		if code != 0 {
			t.Fatalf("%v on the topic: exit %d: %s", report, code, stderr)
		}
		if report[0] == "summary" {
			// The file's header line is bytes the topic does not have.
			fromFile = cutJSONField(fromFile, "bytes_read")
			fromTopic = cutJSONField(fromTopic, "bytes_read")
		}
		if fromTopic != fromFile || strings.Count(fromFile, "\n") < 2 && report[0] != "summary" || strings.Contains(fromFile, `"records":0,`) {
			t.Fatalf("%v: the topic gives\n%s\nthe file\n%s", report, fromTopic, fromFile)
		}
	}

	code, out, _ = flowlog(t, nil, "analyze", "summary", "--output", "json", topic)
	t.Logf("summary of the topic: %.300s", out)

	code, out, stderr = flowlog(t, nil, "analyze", "top", "kafka://"+c.ListenAddrs()[0]+"/no-such-topic")
	if code != exitError || out != "" || !strings.Contains(stderr, "topic no-such-topic on "+c.ListenAddrs()[0]+" does not exist") {
		t.Fatalf("missing topic: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// cutJSONField drops "name":value from a one-line JSON object.
func cutJSONField(s, name string) string {
	i := strings.Index(s, `"`+name+`":`)
	if i < 0 {
		return s
	}
	j := strings.IndexAny(s[i:], ",}")
	return s[:i] + s[i+j+1:]
}

// produceLines produces record lines to topic, keyed by their interface
// as flowlog's destination keys them.
func produceLines(t *testing.T, c *kfake.Cluster, topic string, lines ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, l := range lines {
		recs = append(recs, &kgo.Record{Key: []byte(strings.Fields(l)[2]), Value: []byte(l)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestAnalyzeFollowKafka runs connections --follow on a topic (kfake,
// three partitions) and a directory at once, as a real process, while
// messages are produced: conversations appear as their records come,
// each once; Ctrl-C prints what is still open and exits 0 at once. A
// topic deleted while followed prints what is open and exits 1 naming
// the topic and brokers.
func TestAnalyzeFollowKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"), kfake.SeedTopics(1, "doomed"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	t0 := time.Now().Add(-15 * time.Minute).Unix()
	rec := func(eni, src, dst string, sport, dport int, start int64) string {
		return fmt.Sprintf("2 123456789012 %s %s %s %d %d 6 2 120 %d %d ACCEPT OK", eni, src, dst, sport, dport, start, start+5)
	}
	// The default format has no tcp-flags: conversations end by --idle
	// of record time, the newest record end seen.
	produceLines(t, c, "flows",
		rec("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, t0),
		rec("eni-0aaa", "10.0.0.5", "10.0.0.9", 443, 50001, t0))
	dir := t.TempDir()
	p := startFollowProc(t, nil, "--poll", "50ms", "--idle", "60s", "--since", "30m", "kafka://"+addr+"/flows", dir)
	// B starts 120 s after A: A is quiet for more than --idle.
	produceLines(t, c, "flows",
		rec("eni-0bbb", "10.0.1.7", "10.0.0.6", 50002, 443, t0+120),
		rec("eni-0bbb", "10.0.0.6", "10.0.1.7", 443, 50002, t0+120))
	p.next(t, "10.0.0.9:50001", 2)
	publishDir(t, dir, rec("eni-0ccc", "10.0.2.9", "10.0.2.5", 50004, 443, t0+240))
	p.next(t, "10.0.1.7:50002", 2)
	// Ctrl-C while the consumer waits for messages: D, from the
	// directory, is printed as it stands.
	time.Sleep(200 * time.Millisecond)
	p.interrupt(t, "10.0.2.9:50004", 2)

	// The topic deleted while followed.
	produceLines(t, c, "doomed", rec("eni-0aaa", "10.0.0.9", "10.0.0.5", 50001, 443, t0))
	p = startFollowProc(t, nil, "--poll", "50ms", "kafka://"+addr+"/doomed")
	time.Sleep(300 * time.Millisecond)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("doomed")
	req.Topics = append(req.Topics, dt)
	req.TopicNames = []string{"doomed"}
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(context.Background(), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.next(t, "10.0.0.9:50001", 2)
	err = p.end(t)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError || !strings.Contains(p.errOut.String(), "flowlog: topic doomed on "+addr+" no longer exists (deleted while followed)") {
		t.Fatalf("exit: %v; stderr %q", err, p.errOut.String())
	}
}
