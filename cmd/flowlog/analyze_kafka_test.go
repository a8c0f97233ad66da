package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if code, _, stderr := flowlog(t, nil, "analyze", "connections", "--follow", topic); code != exitUsage || !strings.Contains(stderr, "without --follow") {
		t.Fatalf("--follow on a topic: exit %d, stderr %q", code, stderr)
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
