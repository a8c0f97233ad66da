package analyze

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/kafka"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
	"github.com/flowlog/flowlog/internal/sink/sinktest"
)

// TestKafkaTopicSecured: records flowlog's sink produced over TLS and
// SCRAM-SHA-512 are read back by a kafka://…?tls=true&sasl=scram-sha-512
// input with the same environment; a wrong password, a wrong CA and a
// missing tls=true are errors at the listing that say which, within
// seconds; a lab's tls-insecure-skip-verify is warned about.
func TestKafkaTopicSecured(t *testing.T) {
	p := kafkatest.NewPKI(t)
	c := kafkatest.Cluster(t, p, false, "SCRAM-SHA-512", "flows")
	env := p.Env(false, true)
	loc := c.ListenAddrs()[0] + "/flows?tls=true&sasl=scram-sha-512"

	tg, err := kafka.ParseTarget(loc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kafka.New(kafka.Config{Brokers: tg.Brokers, Topic: tg.Topic, Format: flow.DefaultFormat(), Security: tg.Security.FromEnv(kafkatest.Getenv(env))})
	if err != nil {
		t.Fatal(err)
	}
	recs := sinktest.Window(7, 1529511600, 30, 3)
	if err := s.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range recs {
		want = append(want, string(flow.DefaultFormat().Append(nil, &recs[i])))
	}
	sort.Strings(want)

	in, err := listKafka(t, NewKafka(KafkaConfig{Getenv: kafkatest.Getenv(env)}), KafkaScheme+loc, TimeRange{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllLines(t, in); !slices.Equal(got, want) {
		t.Fatalf("read %d lines, want the %d produced", len(got), len(want))
	}

	bad := func(arg string, env map[string]string, msg string) {
		t.Helper()
		began := time.Now()
		_, err := listKafka(t, NewKafka(KafkaConfig{Getenv: kafkatest.Getenv(env)}), KafkaScheme+arg, TimeRange{})
		if err == nil || !strings.Contains(err.Error(), msg) || time.Since(began) > 5*time.Second {
			t.Fatalf("%s: after %v: %v; want an error with %q", arg, time.Since(began), err, msg)
		}
		t.Logf("%v", err)
	}
	wrongPW := p.Env(false, true)
	wrongPW[kafka.EnvPassword] = "wrong"
	bad(loc, wrongPW, `kafka SASL: the broker closed the connection instead of accepting user "flowlog"`)
	wrongCA := p.Env(false, true)
	wrongCA[kafka.EnvCAFile] = p.OtherCAFile
	bad(loc, wrongCA, "kafka TLS: the broker's certificate is not signed by a CA in "+p.OtherCAFile)
	bad(c.ListenAddrs()[0]+"/flows", nil, "add tls=true")
	bad(loc, map[string]string{kafka.EnvCAFile: p.CAFile}, "no username: set FLOWLOG_KAFKA_USERNAME")
	bad(c.ListenAddrs()[0]+"/flows?tls=on", env, `parameter tls="on"`)

	var warn bytes.Buffer
	insecure := map[string]string{kafka.EnvUsername: kafkatest.User, kafka.EnvPassword: kafkatest.Password}
	in, err = listKafka(t, NewKafka(KafkaConfig{Getenv: kafkatest.Getenv(insecure), Warn: &warn}), KafkaScheme+loc+"&tls-insecure-skip-verify=true", TimeRange{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllLines(t, in); len(got) != len(want) || !strings.Contains(warn.String(), "flowlog: warning: kafka tls-insecure-skip-verify=true") {
		t.Fatalf("insecure: %d lines, warning %q", len(got), warn.String())
	}
}
