package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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

// listKafka reads the records of a kafka flow log: the messages of its
// topic from each partition's oldest message (or, with since, the first
// produced at since less analyze's slack) to the end of the partition at
// the listing, at most MaxEvents of them, kept for the page's reports.
// Kafka has no AWS action, so the flow log's ec2:DescribeFlowLogs, which
// openRecords checked, is all it takes (as for file destinations).
func (h *Handler) listKafka(ctx context.Context, rs *recordSet) error {
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
	where := "topic " + topic + " on brokers " + strings.Join(brokers, ",")

	// TLS and SASL: the URL's query, completed from the server's
	// environment (FLOWLOG_KAFKA_*), as for the agents.
	k := analyze.NewKafka(analyze.KafkaConfig{
		Warn: warnLog{h.log},
		Opts: []kgo.Opt{kgo.DialTimeout(kafkaDialTimeout), kgo.ClientID("flowlog-console")},
	})
	lctx, cancel := context.WithTimeout(ctx, kafkaListTimeout)
	defer cancel()
	var ins []analyze.Input
	err = (&analyze.Lister{Kafka: k, Range: rs.rc.Range}).List(lctx, analyze.KafkaScheme+loc, func(in analyze.Input) error {
		ins = append(ins, in)
		return nil
	})
	if err != nil {
		// analyze's errors name the topic and brokers.
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return apiError(http.StatusBadGateway, "DestinationUnreadable", "flow log %s: brokers %s did not answer within %v (%v)", fl.ID, strings.Join(brokers, ","), kafkaListTimeout, err)
		}
		if ctx.Err() == nil && strings.HasSuffix(err.Error(), " does not exist") {
			return apiError(http.StatusNotFound, "DestinationNotFound", "flow log %s delivers to %s, which does not exist (yet: the brokers create it with the first record if they allow it): there is nothing to read", fl.ID, where)
		}
		return apiError(http.StatusBadGateway, "DestinationUnreadable", "flow log %s: %v", fl.ID, err)
	}
	var data []byte
	truncated := false
	for _, in := range ins {
		d, more, err := readMessages(ctx, in, h.opts.MaxEvents-countLines(data))
		if data == nil {
			data = d // the one input a topic lists: no copy
		} else {
			data = append(data, d...)
		}
		if err != nil {
			if errors.Is(err, errKafkaIdle) {
				return apiError(http.StatusBadGateway, "DestinationUnreadable", "read flow log %s's %s: the brokers sent nothing for %v (%d messages read)", fl.ID, where, kafkaIdleTimeout, countLines(data))
			}
			return apiError(http.StatusBadGateway, "DestinationUnreadable", "read flow log %s's %s: %v", fl.ID, where, err)
		}
		truncated = truncated || more
	}
	if truncated {
		rs.notes = append(rs.notes, fmt.Sprintf("only the first %d messages of topic %s are read (the partitions side by side, each from its oldest message or the first produced at since less 20 minutes): narrow the time range", h.opts.MaxEvents, topic))
	}
	rs.notes = append(rs.notes,
		"topic "+topic+" may also hold the records of other flow logs that deliver to it: they are read in this flow log's format (lines of another format count as unreadable)",
		"messages produced after the page was opened are not read: reload it for them")
	if len(data) == 0 {
		rs.notes = append(rs.notes, "topic "+topic+" holds no message in this time range")
	}
	rs.inputs = func() []analyze.Input {
		return []analyze.Input{analyze.ReaderInput("topic "+topic, bytes.NewReader(data))}
	}
	return nil
}

// readMessages reads the lines of a listed topic, at most limit of them;
// more says there were more. A read during which the brokers sent nothing
// for kafkaIdleTimeout ends with errKafkaIdle.
func readMessages(ctx context.Context, in analyze.Input, limit int) (data []byte, more bool, err error) {
	if limit <= 0 {
		return nil, true, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(kafkaIdleTimeout, func() { cancel(errKafkaIdle) })
	defer idle.Stop()
	rc, err := in.Open(ctx)
	if err != nil {
		return nil, false, err
	}
	// Close cancels the consumer: a capped read leaves the rest unfetched.
	defer rc.Close()
	var buf bytes.Buffer
	lines := 0
	chunk := make([]byte, 64<<10)
	for {
		n, rerr := rc.Read(chunk)
		if n > 0 {
			idle.Reset(kafkaIdleTimeout)
			b := chunk[:n]
			for len(b) > 0 {
				i := bytes.IndexByte(b, '\n')
				if i < 0 {
					buf.Write(b)
					break
				}
				if lines == limit {
					return buf.Bytes(), true, nil
				}
				buf.Write(b[:i+1])
				b = b[i+1:]
				lines++
			}
		}
		if rerr == io.EOF {
			return buf.Bytes(), false, nil
		}
		if rerr != nil {
			if c := context.Cause(ctx); errors.Is(c, errKafkaIdle) {
				return buf.Bytes(), false, c
			}
			return buf.Bytes(), false, rerr
		}
	}
}

// warnLog logs what is written to it as warnings.
type warnLog struct{ log *slog.Logger }

func (w warnLog) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(strings.TrimPrefix(string(p), "flowlog: warning: ")))
	return len(p), nil
}

func countLines(b []byte) int { return bytes.Count(b, []byte{'\n'}) }
