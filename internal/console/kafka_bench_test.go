package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
)

// BenchmarkKafkaPage is what one console page of a kafka flow log costs
// besides HTTP: the topic listed and its first DefaultMaxEvents (200,000)
// messages read from kfake (in this process, three partitions) into
// memory, then summarized as the charts page does first. It reports
// messages per second.
func BenchmarkKafkaPage(b *testing.B) {
	const n = DefaultMaxEvents
	c := kafkatest.RecordTopic(b, n)
	h := &Handler{opts: Options{MaxEvents: DefaultMaxEvents}}
	fl := FlowLog{ID: "fl-0123456789abcdef0", DestinationType: "kafka", Destination: "kafka://" + c.ListenAddrs()[0] + "/flows", LogFormat: flow.DefaultFormatText}
	b.ResetTimer()
	for range b.N {
		rs := &recordSet{fl: fl}
		if err := h.listKafka(context.Background(), chartsRequest, rs); err != nil {
			b.Fatal(err)
		}
		st, err := analyze.Summarize(context.Background(), rs.inputs(), rs.rc, analyze.Output{W: io.Discard, Mode: analyze.ModeJSON})
		if err != nil || st.Records != n {
			b.Fatalf("%+v %v", st, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}

// chartsRequest is a request of the charts report: listKafka reads the
// topic into memory for it.
var chartsRequest = &http.Request{Pattern: "GET /console/api/flowlogs/{id}/charts"}

// BenchmarkKafkaPage10 is the records page 10 (records 451–500) of a
// kafka flow log whose topic holds DefaultMaxEvents (200,000) messages in
// three partitions, with and without a filter: reached with the next
// token page 9 returned (what the Next button sends), and with offset=450
// alone (a link to page 10: the topic is read from its start up to the
// page), and page 3,001 both ways. The handler's records report and
// listing are run (no HTTP server, no session); the tokens are made
// before the timer starts.
func BenchmarkKafkaPage10(b *testing.B) {
	c := kafkatest.RecordTopic(b, DefaultMaxEvents)
	fl := FlowLog{ID: "fl-0123456789abcdef0", DestinationType: "kafka", Destination: "kafka://" + c.ListenAddrs()[0] + "/flows", LogFormat: flow.DefaultFormatText}
	h := &Handler{opts: Options{MaxEvents: DefaultMaxEvents, Now: time.Now}, pageKey: []byte("bench")}
	page := func(b *testing.B, q url.Values) map[string]any {
		rs := &recordSet{fl: fl}
		r := httptest.NewRequest("GET", "/console/api/flowlogs/"+fl.ID+"/records?"+q.Encode(), nil)
		r.Pattern = "GET /console/api/flowlogs/{id}/records"
		if w := q.Get("where"); w != "" {
			e, err := analyze.ParseExpr(w)
			if err != nil {
				b.Fatal(err)
			}
			rs.rc.Where = e
		}
		if err := h.listKafka(r.Context(), r, rs); err != nil {
			b.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.records(r.Context(), w, r, rs)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		return out
	}
	for _, where := range []string{"", "srcaddr = 10.0.3.8"} {
		name := "all"
		if where != "" {
			name = "where"
		}
		q := url.Values{"limit": {"50"}}
		if where != "" {
			q.Set("where", where)
		}
		// Pages 1 to 9, each from the token of the one before.
		for range 9 {
			out := page(b, q)
			q.Set("next", out["next"].(string))
		}
		b.Run(name+"/next", func(b *testing.B) {
			for range b.N {
				if out := page(b, q); len(out["rows"].([]any)) != 50 || out["offset"] != float64(450) {
					b.Fatalf("page 10: %d rows at %v", len(out["rows"].([]any)), out["offset"])
				}
			}
		})
		qo := url.Values{"limit": {"50"}, "offset": {strconv.Itoa(450)}}
		if where != "" {
			qo.Set("where", where)
		}
		b.Run(name+"/offset", func(b *testing.B) {
			for range b.N {
				if out := page(b, qo); len(out["rows"].([]any)) != 50 {
					b.Fatalf("page 10: %d rows", len(out["rows"].([]any)))
				}
			}
		})
	}
	// Page 3,001 (records 150,001–150,050): its token is the one page
	// 3,000, reached by offset, returns.
	q := url.Values{"limit": {"50"}, "offset": {"149950"}}
	q.Set("next", page(b, q)["next"].(string))
	b.Run("page3001/next", func(b *testing.B) {
		for range b.N {
			if out := page(b, q); len(out["rows"].([]any)) != 50 || out["offset"] != float64(150000) {
				b.Fatalf("page 3001: %d rows at %v", len(out["rows"].([]any)), out["offset"])
			}
		}
	})
	q.Del("next")
	q.Set("offset", "150000")
	b.Run("page3001/offset", func(b *testing.B) {
		for range b.N {
			if out := page(b, q); len(out["rows"].([]any)) != 50 {
				b.Fatalf("page 3001: %d rows", len(out["rows"].([]any)))
			}
		}
	})
}
