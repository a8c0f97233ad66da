package analyze

import (
	"context"
	"strconv"
	"time"
)

// Connections reads the inputs, pairs the two directions of each
// conversation (across inputs and aggregation windows, in whatever order
// the records come) and prints one line per conversation with who
// initiated it and what became of it.
func Connections(ctx context.Context, inputs []Input, rc ReadConfig, opt ConnOptions, out Output) (Stats, error) {
	t, st := readConversations(ctx, inputs, rc, &opt)
	convs := t.results(nil)
	st.Notes = append(st.Notes, t.notes(convs)...)
	return st, out.writeConversations(convs)
}

// readConversations reads inputs into one conversation table.
func readConversations(ctx context.Context, inputs []Input, rc ReadConfig, opt *ConnOptions) (*convTable, Stats) {
	e := newEngine(rc, connFields, false)
	vs, st := e.run(ctx, inputs, func() visitor { return newConvTable(opt) })
	t := vs[0].(*convTable)
	for _, v := range vs[1:] {
		t.merge(v.(*convTable))
	}
	return t, st
}

// results classifies the conversations that keep selects (all when nil)
// and returns them sorted.
func (t *convTable) results(keep func(convKey, *conv) bool) []Conversation {
	convs := make([]Conversation, 0, len(t.convs))
	for k, c := range t.convs {
		if keep == nil || keep(k, c) {
			convs = append(convs, classify(k, c))
		}
	}
	sortConversations(convs)
	return convs
}

// notes explains what the reader should know about these results.
func (t *convTable) notes(convs []Conversation) []string {
	var notes []string
	tcpNoFlags := false
	for i := range convs {
		if (convs[i].Protocol == 6 || convs[i].Protocol == -1) && !convs[i].FlagsKnown {
			tcpNoFlags = true
			break
		}
	}
	if tcpNoFlags && t.sawFormatNoFlags {
		notes = append(notes, "the log format has no tcp-flags field: TCP verdicts marked (guess) come from packets and bytes each way, and initiators from ports and times; log ${tcp-flags} to know")
	}
	if t.sawFormatNoProto {
		notes = append(notes, "the log format has no protocol field: conversations of every protocol are shown together")
	}
	if t.sawNoAddr > 0 {
		notes = append(notes, strconv.FormatInt(t.sawNoAddr, 10)+" records without source and destination addresses were left out")
	}
	return notes
}

// conversationJSON is a Conversation as --output json writes it.
type conversationJSON struct {
	Client     string `json:"client"`
	ClientAddr string `json:"client_addr"`
	ClientPort uint16 `json:"client_port"`
	Server     string `json:"server"`
	ServerAddr string `json:"server_addr"`
	ServerPort uint16 `json:"server_port"`
	First      string `json:"first,omitempty"`
	Last       string `json:"last,omitempty"`
	Conversation
}

func (out Output) writeConversations(convs []Conversation) error {
	switch out.mode() {
	case ModeJSON:
		return out.writeJSONLines(len(convs), func(i int) any {
			c := &convs[i]
			j := conversationJSON{
				Client: c.Client.String(), ClientAddr: c.Client.Addr.String(), ClientPort: c.Client.Port,
				Server: c.Server.String(), ServerAddr: c.Server.Addr.String(), ServerPort: c.Server.Port,
				Conversation: *c,
			}
			if c.HasTime {
				j.First, j.Last = c.First.Format(time.RFC3339), c.Last.Format(time.RFC3339)
			}
			return j
		})
	}
	t := &table{
		head:  []string{"interface", "proto", "client", "server", "initiator_by", "verdict", "handshake", "first", "last", "packets_c2s", "bytes_c2s", "packets_s2c", "bytes_s2c"},
		right: []bool{false, false, false, false, false, false, false, false, false, true, true, true, true},
	}
	for i := range convs {
		t.rows = append(t.rows, out.conversationRow(&convs[i]))
	}
	return out.writeTable(t)
}

func (out Output) conversationRow(c *Conversation) []string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	count := func(n uint64) string {
		if !c.CountsKnown {
			return "-"
		}
		return strconv.FormatUint(n, 10)
	}
	return []string{
		dash(c.Interface), protoName(c.Protocol), c.Client.String(), c.Server.String(), c.InitiatorBy,
		c.Verdict, dash(c.Handshake), out.timeText(c.First, c.HasTime), out.timeText(c.Last, c.HasTime),
		count(c.ToServer.Packets), count(c.ToServer.Bytes), count(c.ToClient.Packets), count(c.ToClient.Bytes),
	}
}
