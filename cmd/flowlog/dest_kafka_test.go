package main

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowlog/flowlog/internal/capture/pcapfile"
	"github.com/flowlog/flowlog/internal/decode"
)

// kafkaCluster starts kfake, a Kafka wire-protocol server in this process,
// with a topic of 3 partitions.
func kafkaCluster(t *testing.T, topic string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// kafkaMessages reads topic from the start with a separate client until
// at least want messages arrived and no more come for 300 ms.
func kafkaMessages(t *testing.T, c *kfake.Cluster, topic string, want int) (keys, values []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	quiet := time.Now().Add(300 * time.Millisecond)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			keys = append(keys, string(r.Key))
			values = append(values, string(r.Value))
			quiet = time.Now().Add(300 * time.Millisecond)
		})
		if len(values) >= want && time.Now().After(quiet) {
			return keys, values
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d messages from kafka in 30 s, want %d", len(values), want)
		}
	}
}

// recordLines runs `flowlog read --no-header args…` and returns its lines.
func recordLines(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, stderr := flowlog(t, nil, append([]string{"read", "--no-header"}, args...)...)
	if code != 0 {
		t.Fatalf("read: exit %d: %s", code, stderr)
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// TestReadToKafka: `flowlog read --dest kafka://…` puts every record of
// the capture into the topic exactly once, as the line `flowlog read`
// prints (no header), keyed by its interface id.
func TestReadToKafka(t *testing.T) {
	c := kafkaCluster(t, "flows")
	want := recordLines(t, samplePath)
	code, _, stderr := flowlog(t, nil, "read", "--dest", "kafka://"+c.ListenAddrs()[0]+"/flows", samplePath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	keys, values := kafkaMessages(t, c, "flows", len(want))
	if got, w := slices.Sorted(slices.Values(values)), slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
		t.Fatalf("topic holds %d messages, want the %d record lines once each", len(got), len(w))
	}
	for i, v := range values {
		if f := strings.Fields(v); keys[i] != f[2] {
			t.Fatalf("message %q keyed %q, want its interface id", v, keys[i])
		}
	}
}

func TestReadToKafkaBadDestination(t *testing.T) {
	for _, dest := range []string{"kafka://broker/flows", "kafka://broker:9092/bad topic", "kafka://broker:9092"} {
		code, _, stderr := flowlog(t, nil, "read", "--dest", dest, samplePath)
		if code != exitUsage || !strings.Contains(stderr, "kafka") {
			t.Errorf("--dest %s: exit %d, stderr %q; want a usage error about it", dest, code, stderr)
		}
	}
}

// writeCapture writes a raw-IPv4 capture of windows minutes from start,
// each with flows UDP flows of two packets: many windows, so a reader
// delivers in many steps.
func writeCapture(t *testing.T, path string, start time.Time, windows, flows int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapfile.NewWriter(f, decode.LinkIPv4, 65535, true)
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 28+32)
	for win := range windows {
		for fl := range flows {
			for p := range 2 {
				ts := start.Add(time.Duration(win)*time.Minute + time.Duration(fl%50+p)*time.Second)
				clear(pkt)
				pkt[0], pkt[8], pkt[9] = 0x45, 64, 17 // IPv4, TTL, UDP
				binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
				copy(pkt[12:], []byte{10, 0, byte(fl / 250), byte(fl%250 + 1)})
				copy(pkt[16:], []byte{10, 1, byte(win % 250), 7})
				binary.BigEndian.PutUint16(pkt[20:], uint16(40000+fl))
				binary.BigEndian.PutUint16(pkt[22:], 53)
				binary.BigEndian.PutUint16(pkt[24:], uint16(len(pkt)-20))
				if err := w.WritePacket(ts.UnixNano(), pkt, uint32(len(pkt))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
