package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/kafka"
)

// kafkaListTimeout bounds listing a flow log's topic (metadata and
// offsets), so that brokers that are down or do not answer make the page
// an error within seconds; `flowlog analyze` waits longer (20 s), a page
// should not.
const kafkaListTimeout = 5 * time.Second

// kafkaDialTimeout bounds one connection attempt to a broker: within
// kafkaListTimeout the client then tries again (a broker restarting) and
// the other seed brokers.
const kafkaDialTimeout = 2 * time.Second

// kafkaIdleTimeout ends a read of a topic during which the brokers sent
// nothing for this long: every message read was there at the listing, so
// a healthy broker answers a fetch at once, and silence means it went
// away (franz-go retries a lost broker forever).
const kafkaIdleTimeout = 10 * time.Second

// errKafkaIdle is the cause of a read ended by kafkaIdleTimeout.
var errKafkaIdle = errors.New("kafka read idle")

// kafkaPages is a kafka flow log's topic as a page listed it.
type kafkaPages struct {
	k       *analyze.Kafka
	arg     string // kafka://LOCATION
	topic   string
	where   string // "topic T on brokers B", for messages
	brokers []string
	parts   []analyze.KafkaPartition
}

// listKafka lists the topic of a kafka flow log: its partitions and the
// offsets to read in each, from the oldest message (or, with since, the
// first produced at since less analyze's slack) to the end of the
// partition at the listing. The records page reads from there itself, a
// page at a time (kafkaRecords); the other reports read the first
// MaxEvents messages, partition after partition, into memory. Kafka has
// no AWS action, so the flow log's ec2:DescribeFlowLogs, which
// openRecords checked, is all it takes (as for file destinations).
func (h *Handler) listKafka(ctx context.Context, r *http.Request, rs *recordSet) error {
	fl := rs.fl
	kind, loc, err := sink.ParseDestination(fl.Destination)
	if err != nil || kind != sink.DestinationKafka {
		return apiError(http.StatusBadRequest, "InvalidParameterValue", "flow log %s: destination %q is not a Kafka URL (kafka://host:port[,host:port]/topic[?tls=true&sasl=…])", fl.ID, fl.Destination)
	}
	brokers, topic, err := kafka.ParseLocation(loc)
	if err != nil {
		return apiError(http.StatusBadRequest, "InvalidParameterValue", "flow log %s: %v", fl.ID, err)
	}
	f, err := flow.ParseFormat(formatOrDefault(fl.LogFormat))
	if err != nil {
		return err
	}
	// Messages are record lines without a header line.
	rs.rc.Format = f
	kp := &kafkaPages{arg: analyze.KafkaScheme + loc, topic: topic, brokers: brokers,
		where: "topic " + topic + " on brokers " + strings.Join(brokers, ",")}

	// TLS and SASL: the URL's query, completed from the server's
	// environment (FLOWLOG_KAFKA_*), as for the agents.
	kp.k = analyze.NewKafka(analyze.KafkaConfig{
		Warn: warnLog{h.log},
		Opts: []kgo.Opt{kgo.DialTimeout(kafkaDialTimeout), kgo.ClientID("flowlog-console")},
	})
	lctx, cancel := context.WithTimeout(ctx, kafkaListTimeout)
	defer cancel()
	kp.parts, err = kp.k.Partitions(lctx, kp.arg, rs.rc.Range)
	if err != nil {
		// analyze's errors name the topic and brokers.
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return apiError(http.StatusBadGateway, "DestinationUnreadable", "flow log %s: brokers %s did not answer within %v (%v)", fl.ID, strings.Join(brokers, ","), kafkaListTimeout, err)
		}
		if ctx.Err() == nil && strings.HasSuffix(err.Error(), " does not exist") {
			return apiError(http.StatusNotFound, "DestinationNotFound", "flow log %s delivers to %s, which does not exist (yet: the brokers create it with the first record if they allow it): there is nothing to read", fl.ID, kp.where)
		}
		return apiError(http.StatusBadGateway, "DestinationUnreadable", "flow log %s: %v", fl.ID, err)
	}
	rs.notes = append(rs.notes,
		"topic "+topic+" may also hold the records of other flow logs that deliver to it: they are read in this flow log's format (lines of another format count as unreadable)",
		"messages produced after the page was opened are not read: reload it for them")
	empty := true
	for _, p := range kp.parts {
		empty = empty && p.From >= p.To
	}
	if empty {
		rs.notes = append(rs.notes, "topic "+topic+" holds no message in this time range")
	}
	if strings.HasSuffix(r.Pattern, "/records") {
		rs.kafka = kp // the page reads what it shows
		return nil
	}
	var buf bytes.Buffer
	truncated, err := h.readKafka(ctx, kp, kp.parts, 0, 0, func(_ int32, _ int64, _ int, line []byte) bool {
		buf.Write(line)
		return true
	})
	if err != nil {
		return h.kafkaReadError(fl, kp, err, countLines(buf.Bytes()))
	}
	if truncated {
		rs.notes = append(rs.notes, h.kafkaCapNote(topic))
	}
	data := buf.Bytes()
	rs.inputs = func() []analyze.Input {
		return []analyze.Input{analyze.ReaderInput("topic "+topic, bytes.NewReader(data))}
	}
	return nil
}

func (h *Handler) kafkaCapNote(topic string) string {
	return fmt.Sprintf("only the first %d messages of topic %s are read (partition after partition, each from its oldest message or the first produced at since less 20 minutes): narrow the time range", h.opts.MaxEvents, topic)
}

func (h *Handler) kafkaReadError(fl FlowLog, kp *kafkaPages, err error, read int) error {
	if errors.Is(err, errKafkaIdle) {
		return apiError(http.StatusBadGateway, "DestinationUnreadable", "read flow log %s's %s: the brokers sent nothing for %v (%d messages read)", fl.ID, kp.where, kafkaIdleTimeout, read)
	}
	return apiError(http.StatusBadGateway, "DestinationUnreadable", "read flow log %s's %s: %v", fl.ID, kp.where, err)
}

// readKafka reads parts of the topic partition after partition and
// passes fn each line of their messages (a message value, its line ends
// trimmed, is a line, or several when it holds line breaks) with the
// message's partition, offset and the line's index in it, from line skip
// of the first message; fn returning false stops the read. The topic's
// first MaxEvents lines are read: read is how many came before parts,
// and truncated says a line after the last was left. A read during which
// the brokers sent nothing for kafkaIdleTimeout ends with errKafkaIdle.
func (h *Handler) readKafka(ctx context.Context, kp *kafkaPages, parts []analyze.KafkaPartition, skip int, read int64, fn func(partition int32, offset int64, index int, line []byte) bool) (truncated bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(kafkaIdleTimeout, func() { cancel(errKafkaIdle) })
	defer idle.Stop()
	first := true
	var line []byte
	err = kp.k.ReadPartitions(ctx, kp.arg, parts, func(p int32, o int64, v []byte) bool {
		idle.Reset(kafkaIdleTimeout)
		v = bytes.TrimRight(v, "\r\n")
		from := 0
		if first {
			first = false
			if len(parts) > 0 && p == parts[0].ID && o == parts[0].From {
				from = skip
			}
		}
		for i := 0; ; i++ {
			j := bytes.IndexByte(v, '\n')
			seg := v
			if j >= 0 {
				seg = v[:j]
			}
			if i >= from {
				if read >= int64(h.opts.MaxEvents) {
					truncated = true
					return false
				}
				line = append(append(line[:0], seg...), '\n')
				read++
				if !fn(p, o, i, line) {
					return false
				}
			}
			if j < 0 {
				return true
			}
			v = v[j+1:]
		}
	})
	if c := context.Cause(ctx); err != nil && errors.Is(c, errKafkaIdle) {
		return truncated, c
	}
	return truncated, err
}

// kafkaCursor is where a page of a topic's records starts: the line of a
// message, and what the pages before it read (the cap counts lines from
// the first page; the last page reports totals).
type kafkaCursor struct {
	Partition int32
	Offset    int64
	Index     int64  // the line of the message
	Lines     int64  // lines of the topic before it
	Records   int64  // records read before it
	Matched   int64  // records that matched before it: the page's offset
	Skipped   int64  // unreadable lines before it
	SkipData  int64  // SKIPDATA records in the range before it
	Header    string // the format in effect when a header line changed it; "": the flow log's
}

// Next-page tokens: a kafkaCursor in varints, then an HMAC-SHA-256 (cut to
// 16 bytes) over the flow log, its destination, the query's since, until
// and where, and the cursor, with the server's pageKey, in base64url. The
// browser cannot read or change it, nor use it for another flow log or
// query; a restart voids it.
const (
	kafkaTokenVersion = 1
	kafkaTokenMAC     = 16
	// kafkaTokenMax bounds a token: a cursor is about 60 bytes, plus a
	// format's header (every field is some 1,000 bytes).
	kafkaTokenMax = 4096
)

func kafkaTokenBinding(rs *recordSet, q url.Values) []byte {
	b := []byte(rs.fl.ID + "\x00" + rs.fl.Destination)
	for _, k := range []string{"since", "until", "where"} {
		b = append(b, 0)
		b = append(b, strings.TrimSpace(q.Get(k))...)
	}
	return append(b, 0)
}

func (h *Handler) kafkaTokenMAC(binding, payload []byte) []byte {
	m := hmac.New(sha256.New, h.pageKey)
	m.Write(binding)
	m.Write(payload)
	return m.Sum(nil)[:kafkaTokenMAC]
}

// kafkaToken makes the next-page token of c for the request's flow log
// and query.
func (h *Handler) kafkaToken(rs *recordSet, q url.Values, c kafkaCursor) string {
	b := []byte{kafkaTokenVersion}
	for _, v := range []int64{int64(c.Partition), c.Offset, c.Index, c.Lines, c.Records, c.Matched, c.Skipped, c.SkipData} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Header)))
	b = append(b, c.Header...)
	b = append(b, h.kafkaTokenMAC(kafkaTokenBinding(rs, q), b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errKafkaToken is a next-page token that is not one this server made for
// this flow log and query.
var errKafkaToken = apiError(http.StatusBadRequest, "InvalidParameterValue", "next: the page token is not one this server made for this flow log, time range and filter (or the server restarted): start from the first page")

// readKafkaToken checks a next-page token and returns its cursor.
func (h *Handler) readKafkaToken(rs *recordSet, q url.Values, tok string) (kafkaCursor, error) {
	var c kafkaCursor
	if len(tok) > kafkaTokenMax {
		return c, errKafkaToken
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 1+kafkaTokenMAC || b[0] != kafkaTokenVersion {
		return c, errKafkaToken
	}
	payload, mac := b[:len(b)-kafkaTokenMAC], b[len(b)-kafkaTokenMAC:]
	if !hmac.Equal(mac, h.kafkaTokenMAC(kafkaTokenBinding(rs, q), payload)) {
		return c, errKafkaToken
	}
	// Signed by this server: what follows was written by kafkaToken.
	rest := payload[1:]
	var vals [8]int64
	for i := range vals {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return c, errKafkaToken
		}
		vals[i], rest = v, rest[n:]
	}
	hl, n := binary.Uvarint(rest)
	if n <= 0 || hl != uint64(len(rest)-n) {
		return c, errKafkaToken
	}
	c = kafkaCursor{Partition: int32(vals[0]), Offset: vals[1], Index: vals[2], Lines: vals[3], Records: vals[4], Matched: vals[5], Skipped: vals[6], SkipData: vals[7], Header: string(rest[n:])}
	return c, nil
}

// kafkaRecords serves a page of a kafka flow log's records, as records
// does for the other destinations, but reading the topic only as far as
// the page needs: from where the previous page stopped (the query's next
// token), or from the start skipping offset matching records. Partitions
// are read one after the other in the order of their ids, so that the
// records come in the same order on every page and in the CSV download;
// partitions added since the first page come after the others (Kafka
// numbers them on) and are read from their start.
func (h *Handler) kafkaRecords(ctx context.Context, w http.ResponseWriter, r *http.Request, rs *recordSet) {
	kp := rs.kafka
	q := r.URL.Query()
	n := int64(intParam(q.Get("limit"), 100, 1, 1000))
	from := int64(intParam(q.Get("offset"), 0, 0, 1<<30))
	var cur kafkaCursor
	parts := kp.parts
	format := rs.rc.Format
	if tok := q.Get("next"); tok != "" {
		var err error
		if cur, err = h.readKafkaToken(rs, q, tok); err != nil {
			h.writeAPIError(w, err)
			return
		}
		from = cur.Matched
		i := slices.IndexFunc(parts, func(p analyze.KafkaPartition) bool { return p.ID == cur.Partition })
		if i < 0 {
			h.writeAPIError(w, apiError(http.StatusBadRequest, "InvalidParameterValue", "next: partition %d of %s no longer exists (was the topic deleted and created again?): start from the first page", cur.Partition, kp.where))
			return
		}
		p := parts[i]
		if cur.Offset > p.To {
			h.writeAPIError(w, apiError(http.StatusBadRequest, "InvalidParameterValue", "next: partition %d of %s ends at offset %d, before the page's offset %d (was the topic deleted and created again?): start from the first page", p.ID, kp.where, p.To, cur.Offset))
			return
		}
		if cur.Offset < p.From { // deleted since (retention): on from the oldest kept
			cur.Offset, cur.Index = p.From, 0
		}
		p.From = cur.Offset
		parts = append([]analyze.KafkaPartition{p}, parts[i+1:]...)
		if cur.Header != "" {
			f, err := flow.ParseHeader(cur.Header)
			if err != nil {
				h.writeAPIError(w, errKafkaToken)
				return
			}
			format = f
		}
	}

	// The lines, as analyze's reader sees the topic: headers switch the
	// format, unreadable lines are counted, records are kept when in the
	// time range and matching the filter (analyze.Filter's rules, checked
	// by comparing with it in the tests).
	since, until := int64(-1<<63), int64(1<<63-1)
	if !rs.rc.Range.Since.IsZero() {
		since = rs.rc.Range.Since.Unix()
	}
	if !rs.rc.Range.Until.IsZero() {
		until = rs.rc.Range.Until.Unix()
	}
	st := cur
	var lineErrors []string
	var page bytes.Buffer // the page's lines, with a header where the format changes
	pageFormat := rs.rc.Format
	var next *kafkaCursor
	var rec flow.Record
	truncated, err := h.readKafka(ctx, kp, parts, int(cur.Index), cur.Lines, func(p int32, o int64, i int, line []byte) bool {
		at := st // the cursor at this line
		at.Partition, at.Offset, at.Index = p, o, int64(i)
		at.Header = ""
		if format != rs.rc.Format {
			at.Header = format.Header()
		}
		st.Lines++
		// As flow.Reader takes lines: blanks trimmed, empty lines and
		// header lines not records.
		text := bytes.TrimRight(bytes.TrimLeft(line[:len(line)-1], " \t"), " \t\r")
		if len(text) == 0 {
			return true
		}
		fail := func(err error) {
			st.Skipped++
			if len(lineErrors) < 5 {
				lineErrors = append(lineErrors, fmt.Sprintf("topic %s: partition %d offset %d: %v", kp.topic, p, o, err))
			}
		}
		if flow.IsHeaderLine(text) {
			f, err := flow.ParseHeader(string(text))
			if err != nil {
				fail(fmt.Errorf("parse header: %w", err))
				return true
			}
			format = f
			return true
		}
		// record passes one record line on; false: the page is full,
		// next is set.
		record := func(text []byte) bool {
			if err := format.ParseRecord(text, &rec); err != nil {
				fail(err)
				return true
			}
			st.Records++
			if rec.Present&(1<<flow.FieldEnd) != 0 && rec.End < since || rec.Present&(1<<flow.FieldStart) != 0 && rec.Start > until {
				return true
			}
			if rec.Present&(1<<flow.FieldLogStatus) != 0 && rec.LogStatus == flow.LogStatusSkipData {
				st.SkipData++
			}
			if rs.rc.Where != nil && !rs.rc.Where.Match(&rec) {
				return true
			}
			if st.Matched == from+n {
				next = &at
				return false
			}
			if st.Matched >= from {
				if format != pageFormat {
					page.WriteString(format.Header())
					page.WriteByte('\n')
					pageFormat = format
				}
				page.Write(text)
				page.WriteByte('\n')
			}
			st.Matched++
			return true
		}
		if text[0] != '{' {
			return record(text)
		}
		// A CloudWatch Logs document in one message: its messages are
		// the lines (flow.Reader reads them so).
		rd := flow.NewReader(bytes.NewReader(text), flow.ReaderOptions{Format: format})
		for {
			l, _, err := rd.NextLine()
			if err == io.EOF {
				return true
			}
			if err != nil {
				fail(err) // the rest of the document is not read
				return true
			}
			if !record(l) {
				return false
			}
		}
	})
	if err != nil {
		h.writeAPIError(w, h.kafkaReadError(rs.fl, kp, err, int(st.Lines-cur.Lines)))
		return
	}
	// The page's rows, as `flowlog analyze filter --output json` writes
	// them.
	var rows bytes.Buffer
	if page.Len() > 0 {
		if _, err := analyze.Filter(ctx, []analyze.Input{analyze.ReaderInput("topic "+kp.topic, bytes.NewReader(page.Bytes()))}, rs.rc, analyze.Output{W: &rows, Mode: analyze.ModeJSON}); err != nil {
			h.writeAPIError(w, err)
			return
		}
	}
	lines := bytes.SplitAfter(rows.Bytes(), []byte{'\n'})
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	cols, out, err := pageRows(rs, lines)
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	if truncated {
		rs.notes = append(rs.notes, h.kafkaCapNote(kp.topic))
	}
	res := map[string]any{"flowLog": rs.fl, "columns": cols, "rows": out, "offset": from, "more": next != nil}
	if next != nil {
		res["next"] = h.kafkaToken(rs, q, *next)
		res["stats"] = statsJSON{Notes: rs.notes}
	} else {
		res["total"] = st.Matched
		res["stats"] = statsJSON{Inputs: 1, Records: st.Records, Matched: st.Matched, Skipped: st.Skipped, LineErrors: lineErrors, SkipData: st.SkipData, Notes: rs.notes}
	}
	writeJSON(w, http.StatusOK, res)
}

// warnLog logs what is written to it as warnings.
type warnLog struct{ log *slog.Logger }

func (w warnLog) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(strings.TrimPrefix(string(p), "flowlog: warning: ")))
	return len(p), nil
}

func countLines(b []byte) int { return bytes.Count(b, []byte{'\n'}) }
