package console_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/sink/kafka"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
)

// TestRecordsOfKafkaSecured reads a kafka flow log whose brokers need TLS
// and SCRAM-SHA-512: the URL (created with the AWS CLI, shown by
// describe-flow-logs as given) holds only tls=true&sasl=scram-sha-512,
// the server takes the CA, username and password from its FLOWLOG_KAFKA_*
// environment. A wrong password is a page error that says so, at once.
func TestRecordsOfKafkaSecured(t *testing.T) {
	apitest.RequireCLI(t)
	p := kafkatest.NewPKI(t)
	cl := kafkatest.Cluster(t, p, false, "SCRAM-SHA-512", "vpc-flows")
	env := p.Env(false, true)
	for k, v := range env {
		t.Setenv(k, v) // the server's environment (the console reads it)
	}
	e := startEnv(t)
	url := "kafka://" + cl.ListenAddrs()[0] + "/vpc-flows?tls=true&sasl=scram-sha-512"
	fl := e.kafkaFlowLog(t, url)
	if fl.LogDestination != url {
		t.Fatalf("describe-flow-logs shows %q, want %q", fl.LogDestination, url)
	}

	f, err := flow.ParseFormat(fl.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := kafka.ParseTarget(strings.TrimPrefix(url, "kafka://"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := kafka.New(kafka.Config{Brokers: tg.Brokers, Topic: tg.Topic, Format: f, Security: tg.Security.FromEnv(kafkatest.Getenv(env))})
	if err != nil {
		t.Fatal(err)
	}
	st := runPipeline(t, fl, s)
	if got := s.Stats().Records; got == 0 || got != st.Records {
		t.Fatalf("kafka sink: the brokers acknowledged %d records of the pipeline's %d", got, st.Records)
	}

	c := e.client(t)
	c.mustLogin()
	var page recordsPage
	c.getJSON("/console/api/flowlogs/"+fl.ID+"/records?limit=1000&offset="+itoa(int64(st.Records)-10), &page)
	if page.Total != int(st.Records) || len(page.Rows) != 10 || page.More {
		t.Fatalf("records page: total %d of %d, %d rows", page.Total, st.Records, len(page.Rows))
	}

	t.Setenv(kafka.EnvPassword, "wrong")
	began := time.Now()
	res, body := c.do("GET", "/console/api/flowlogs/"+fl.ID+"/records", nil, nil)
	var got struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal([]byte(body), &got)
	if res.StatusCode != http.StatusBadGateway || got.Error.Code != "DestinationUnreadable" || !strings.Contains(got.Error.Message, "kafka SASL: the broker closed the connection instead of accepting user") || time.Since(began) > 3*time.Second {
		t.Fatalf("wrong password: after %v: %s %s", time.Since(began), res.Status, body)
	}
	if strings.Contains(body, "wrong") {
		t.Fatalf("the page shows the password: %s", body)
	}
	t.Logf("%s", got.Error.Message)
}
