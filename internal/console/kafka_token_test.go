package console

import (
	"net/url"
	"testing"
)

// FuzzKafkaToken: any next token a browser sends is refused or read
// without a panic, and only tokens this server made for the flow log and
// query are read; every cursor comes back from its token as it went in.
func FuzzKafkaToken(f *testing.F) {
	h := &Handler{pageKey: []byte("fuzz")}
	rs := &recordSet{fl: FlowLog{ID: "fl-0123456789abcdef0", Destination: "kafka://127.0.0.1:9092/flows"}}
	q := url.Values{"where": {"action = REJECT"}}
	f.Add(h.kafkaToken(rs, q, kafkaCursor{Partition: 2, Offset: 1 << 40, Index: 1, Lines: 5, Records: 4, Matched: 3, Skipped: 1, SkipData: 0, Header: "version srcaddr"}), int32(2), int64(7), "")
	f.Add("AA", int32(-1), int64(-1), "${version}")
	f.Add("", int32(0), int64(0), "")
	f.Fuzz(func(t *testing.T, tok string, part int32, off int64, header string) {
		if c, err := h.readKafkaToken(rs, q, tok); err == nil {
			if h.kafkaToken(rs, q, c) != tok {
				t.Fatalf("token %q read as %+v, which makes another", tok, c)
			}
		}
		c := kafkaCursor{Partition: part, Offset: off, Index: off / 3, Lines: -off, Records: off, Matched: 7, Header: header}
		tok = h.kafkaToken(rs, q, c)
		got, err := h.readKafkaToken(rs, q, tok)
		if len(tok) <= kafkaTokenMax && (err != nil || got != c) {
			t.Fatalf("cursor %+v: token %q read as %+v, %v", c, tok, got, err)
		}
		if _, err := h.readKafkaToken(rs, url.Values{}, tok); err == nil {
			t.Fatalf("token %q read for another query", tok)
		}
	})
}
