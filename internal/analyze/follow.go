package analyze

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// DefaultFollowIdle is how long, in record time, a conversation must be
// quiet before --follow prints it: one aggregation window (600 s) and a
// minute, so a conversation is not printed between two of its records.
const DefaultFollowIdle = 11 * time.Minute

// DefaultPoll is how often --follow looks for new objects, events and
// messages.
const DefaultPoll = 5 * time.Second

// FollowOptions configure FollowConnections.
type FollowOptions struct {
	Poll time.Duration // 0: DefaultPoll
	// OnBatch, when set, is called after each poll with the number of new
	// inputs read (tests use it to wait for a poll).
	OnBatch func(n int)
}

// FollowConnections reads the objects under args (directories, S3
// prefixes, and log groups and topics when the Lister's CloudWatch and
// Kafka have Follow set), then polls them for new objects (new events,
// new messages) as they are published and
// prints each conversation once it is over: reset, closed by FIN from both
// sides, or quiet for opt.Idle of record time (the newest record end seen
// is the clock). When ctx ends, the conversations still open are printed
// with their verdict so far. Output is a header line and then one line per
// conversation (tab-separated in table mode), or JSON lines.
func FollowConnections(ctx context.Context, l *Lister, args []string, rc ReadConfig, opt ConnOptions, fo FollowOptions, out Output) (Stats, error) {
	poll := fo.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	idle := int64(opt.Idle / time.Second)
	if idle <= 0 {
		idle = int64(DefaultFollowIdle / time.Second)
	}
	out.Terminal = false // rows come over time: no alignment across them
	fw := &followWriter{out: out}
	table := newConvTable(&opt)
	seen := map[string]bool{}
	var total Stats
	var noteSent bool
	var watermark int64
	for {
		var fresh []Input
		for _, a := range args {
			err := l.List(ctx, a, func(in Input) error {
				if in.poll || !seen[in.Name] {
					fresh = append(fresh, in)
				}
				return nil
			})
			if err != nil && ctx.Err() == nil {
				// What is still open is printed before the error,
				// as at an interrupt: nothing read is lost.
				if len(table.convs) > 0 {
					if werr := fw.write(table.results(nil)); werr != nil {
						return total, werr
					}
				}
				return total, err
			}
		}
		if ctx.Err() != nil {
			break
		}
		if len(fresh) > 0 {
			batch, st := readConversations(ctx, fresh, rc, &opt)
			for _, in := range fresh {
				seen[in.Name] = true
			}
			total.add(&st)
			for _, c := range batch.convs {
				watermark = max(watermark, c.lastSeen)
			}
			table.merge(batch)
			if !noteSent {
				if notes := table.notes(table.results(nil)); len(notes) > 0 {
					total.Notes = append(total.Notes, notes...)
					noteSent = true
				}
			}
		}
		done := table.results(func(k convKey, c *conv) bool {
			if c.closed() || watermark-c.lastSeen > idle {
				delete(table.convs, k)
				return true
			}
			return false
		})
		if err := fw.write(done); err != nil {
			return total, err
		}
		if fo.OnBatch != nil {
			fo.OnBatch(len(fresh))
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
			continue
		}
		break
	}
	// Interrupted: what is still open is printed as it stands.
	if err := fw.write(table.results(nil)); err != nil {
		return total, err
	}
	return total, nil
}

// followWriter prints conversations as they end, the header once.
type followWriter struct {
	out    Output
	header bool
	mu     sync.Mutex
}

func (f *followWriter) write(convs []Conversation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.out.mode() == ModeJSON {
		if len(convs) == 0 {
			return nil
		}
		return f.out.writeConversations(convs)
	}
	if len(convs) == 0 && f.header {
		return nil
	}
	// writeConversations writes a header each time: keep only the first.
	var buf bytes.Buffer
	o := f.out
	o.W = &buf
	if err := o.writeConversations(convs); err != nil {
		return err
	}
	b := buf.Bytes()
	if f.header {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	f.header = true
	_, err := f.out.W.Write(b)
	return err
}

// sendPage hands p to the reader of a page fetcher (pageReader), unless
// ctx ends first.
func sendPage(ctx context.Context, pages chan<- linePage, p linePage) bool {
	select {
	case pages <- p:
		return true
	case <-ctx.Done():
		return false
	}
}
