package analyze

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// Endpoint is one side of a conversation.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

// String returns addr:port ([v6]:port), or the address alone for
// protocols without ports (port 0).
func (e Endpoint) String() string {
	if e.Port == 0 {
		return e.Addr.String()
	}
	return netip.AddrPortFrom(e.Addr, e.Port).String()
}

func (e Endpoint) compare(o Endpoint) int {
	if c := e.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	return cmp.Compare(e.Port, o.Port)
}

// Verdicts of a conversation. TCP verdicts come from tcp-flags; the
// "(guess)" ones from packet and byte counts when the format has no
// tcp-flags.
const (
	VerdictEstablished    = "established"
	VerdictNoAnswerSYN    = "no answer to SYN"
	VerdictAnsweredRST    = "answered by RST"
	VerdictRejected       = "rejected"
	VerdictReplyRejected  = "reply rejected"
	VerdictResetBy        = "reset by "         // + client, server or both
	VerdictClosedFINBy    = "closed by FIN by " // + client, server or both
	VerdictStillOpen      = "still open"
	VerdictAnswered       = "answered"  // non-TCP: traffic both ways
	VerdictNoAnswer       = "no answer" // non-TCP: one way only
	VerdictNoAnswerGuess  = "no answer (guess)"
	VerdictRSTGuess       = "answered by RST (guess)"
	VerdictOneWayGuess    = "one-way (reply not logged)"
	VerdictTwoWayUnknown  = "two-way, state unknown"
	InitiatorByFlags      = "flags"
	InitiatorByPorts      = "ports"
	InitiatorByOnlySender = "only sender"
	InitiatorByTime       = "time"
	InitiatorUnknown      = "unknown"
)

// Handshake states of a TCP conversation.
const (
	HandshakeComplete = "complete"
	HandshakeSYNOnly  = "SYN only"
	HandshakeSYNACK   = "SYN-ACK only"
	HandshakeNotSeen  = "not seen"
)

// convKey identifies a conversation: both directions of one 5-tuple on
// one interface. A and B are in canonical order (A < B).
type convKey struct {
	iface string
	proto int16 // -1 when the format has no protocol
	a, b  Endpoint
}

// dirStats accumulates the records of one direction of a conversation.
type dirStats struct {
	records, packets, bytes uint64
	accepted, rejected      uint64 // records by action
	flagRecords             uint64 // records with a tcp-flags value
	countRecords            uint64 // records with packets or bytes
	flags                   uint8  // OR of tcp-flags
	first, last             int64  // min start, max end
	hasTime                 bool
	// The window of the earliest-ending record with FIN, and with RST
	// (when flags has the bit).
	finStart, finEnd int64
	rstStart, rstEnd int64
}

func (d *dirStats) merge(o *dirStats) {
	if o.records == 0 {
		return
	}
	d.records += o.records
	d.packets += o.packets
	d.bytes += o.bytes
	d.accepted += o.accepted
	d.rejected += o.rejected
	d.flagRecords += o.flagRecords
	d.countRecords += o.countRecords
	if o.flags&flow.TCPFlagFIN != 0 && (d.flags&flow.TCPFlagFIN == 0 || o.finEnd < d.finEnd) {
		d.finStart, d.finEnd = o.finStart, o.finEnd
	}
	if o.flags&flow.TCPFlagRST != 0 && (d.flags&flow.TCPFlagRST == 0 || o.rstEnd < d.rstEnd) {
		d.rstStart, d.rstEnd = o.rstStart, o.rstEnd
	}
	d.flags |= o.flags
	if o.hasTime {
		if !d.hasTime || o.first < d.first {
			d.first = o.first
		}
		if !d.hasTime || o.last > d.last {
			d.last = o.last
		}
		d.hasTime = true
	}
}

// conv is one conversation being put together: d[0] is A→B, d[1] B→A.
type conv struct {
	d        [2]dirStats
	lastSeen int64 // max end, for --follow
}

// convTable pairs records into conversations.
type convTable struct {
	noHooks
	opt   *ConnOptions
	convs map[convKey]*conv

	sawFormatNoFlags bool // a format without tcp-flags was read
	sawFormatNoProto bool
	sawNoAddr        int64 // records without addresses
}

// ConnOptions select the conversations Connections reports.
type ConnOptions struct {
	// Protocol keeps conversations of one IANA protocol number; 0 means
	// TCP (the default), -1 every protocol. Records of formats without a
	// protocol field are always kept.
	Protocol int
	// Hosts keeps conversations with an endpoint in one of these
	// prefixes (a single address is a /32 or /128); empty: all.
	Hosts []netip.Prefix
	// Ports keeps conversations with an endpoint on one of these ports.
	Ports []uint16
	// Idle is how long, in record time, a conversation must be quiet
	// before --follow reports it; 0 means DefaultFollowIdle.
	Idle time.Duration
}

func newConvTable(opt *ConnOptions) *convTable {
	return &convTable{opt: opt, convs: map[convKey]*conv{}}
}

// connFields are the fields Connections reads.
var connFields = flow.FieldSet(0).With(flow.FieldInterfaceID).With(flow.FieldSrcAddr).With(flow.FieldDstAddr).
	With(flow.FieldPktSrcAddr).With(flow.FieldPktDstAddr).With(flow.FieldSrcPort).With(flow.FieldDstPort).
	With(flow.FieldProtocol).With(flow.FieldPackets).With(flow.FieldBytes).With(flow.FieldStart).
	With(flow.FieldEnd).With(flow.FieldAction).With(flow.FieldLogStatus).With(flow.FieldTCPFlags)

func (t *convTable) format(f *flow.Format) {
	if !f.Has(flow.FieldTCPFlags) {
		t.sawFormatNoFlags = true
	}
	if !f.Has(flow.FieldProtocol) {
		t.sawFormatNoProto = true
	}
}

func (t *convTable) record(r *flow.Record, _ []byte) {
	if r.Present.Has(flow.FieldLogStatus) && r.LogStatus != flow.LogStatusOK {
		return
	}
	proto := int16(-1)
	if r.Present.Has(flow.FieldProtocol) {
		proto = int16(r.Protocol)
		switch p := t.opt.Protocol; {
		case p == 0 && proto != 6:
			return
		case p > 0 && int(proto) != p:
			return
		}
	}
	var src, dst Endpoint
	switch {
	case r.Present.Has(flow.FieldPktSrcAddr) && r.Present.Has(flow.FieldPktDstAddr):
		src.Addr, dst.Addr = r.PktSrcAddr, r.PktDstAddr
	case r.Present.Has(flow.FieldSrcAddr) && r.Present.Has(flow.FieldDstAddr):
		src.Addr, dst.Addr = r.SrcAddr, r.DstAddr
	default:
		t.sawNoAddr++
		return
	}
	src.Addr, dst.Addr = src.Addr.Unmap(), dst.Addr.Unmap()
	if r.Present.Has(flow.FieldSrcPort) {
		src.Port = r.SrcPort
	}
	if r.Present.Has(flow.FieldDstPort) {
		dst.Port = r.DstPort
	}
	if !t.wanted(src, dst) {
		return
	}
	k := convKey{proto: proto}
	if r.Present.Has(flow.FieldInterfaceID) {
		k.iface = r.InterfaceID
	}
	dir := 0
	if src.compare(dst) <= 0 {
		k.a, k.b = src, dst
	} else {
		k.a, k.b = dst, src
		dir = 1
	}
	c := t.convs[k]
	if c == nil {
		c = &conv{}
		t.convs[k] = c
	}
	d := &c.d[dir]
	one := dirStats{records: 1}
	if r.Present.Has(flow.FieldPackets) {
		one.packets = r.Packets
	}
	if r.Present.Has(flow.FieldBytes) {
		one.bytes = r.Bytes
	}
	if r.Present&(1<<flow.FieldPackets|1<<flow.FieldBytes) != 0 {
		one.countRecords = 1
	}
	if r.Present.Has(flow.FieldAction) {
		switch r.Action {
		case flow.ActionAccept:
			one.accepted = 1
		case flow.ActionReject:
			one.rejected = 1
		}
	}
	if r.Present.Has(flow.FieldTCPFlags) {
		one.flagRecords = 1
		one.flags = r.TCPFlags
	}
	if r.Present.Has(flow.FieldStart) || r.Present.Has(flow.FieldEnd) {
		one.hasTime = true
		one.first, one.last = r.Start, r.End
		if !r.Present.Has(flow.FieldStart) {
			one.first = r.End
		}
		if !r.Present.Has(flow.FieldEnd) {
			one.last = r.Start
		}
		one.finStart, one.finEnd = one.first, one.last
		one.rstStart, one.rstEnd = one.first, one.last
		c.lastSeen = max(c.lastSeen, one.last)
	}
	d.merge(&one)
}

// wanted applies --host and --port.
func (t *convTable) wanted(a, b Endpoint) bool {
	if len(t.opt.Hosts) > 0 {
		ok := false
		for _, p := range t.opt.Hosts {
			if p.Contains(a.Addr) || p.Contains(b.Addr) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(t.opt.Ports) > 0 {
		return slices.Contains(t.opt.Ports, a.Port) || slices.Contains(t.opt.Ports, b.Port)
	}
	return true
}

// merge adds the conversations of o to t.
func (t *convTable) merge(o *convTable) {
	for k, oc := range o.convs {
		c := t.convs[k]
		if c == nil {
			t.convs[k] = oc
			continue
		}
		c.d[0].merge(&oc.d[0])
		c.d[1].merge(&oc.d[1])
		c.lastSeen = max(c.lastSeen, oc.lastSeen)
	}
	t.sawFormatNoFlags = t.sawFormatNoFlags || o.sawFormatNoFlags
	t.sawFormatNoProto = t.sawFormatNoProto || o.sawFormatNoProto
	t.sawNoAddr += o.sawNoAddr
}

// DirSummary is what one direction of a conversation carried.
type DirSummary struct {
	Records  uint64 `json:"records"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
	Accepted uint64 `json:"accepted_records"`
	Rejected uint64 `json:"rejected_records"`
	// TCPFlags is the OR of the records' tcp-flags, as names ("SYN",
	// "SYN-ACK", "FIN", "RST"); empty without tcp-flags.
	TCPFlags []string `json:"tcp_flags"`
}

// Conversation is one reported conversation.
type Conversation struct {
	Interface   string     `json:"interface"`
	Protocol    int        `json:"protocol"` // -1: the format has no protocol
	Client      Endpoint   `json:"-"`
	Server      Endpoint   `json:"-"`
	InitiatorBy string     `json:"initiator_by"` // flags, ports, only sender, time or unknown
	Verdict     string     `json:"verdict"`
	Handshake   string     `json:"handshake,omitempty"` // TCP with tcp-flags only
	FlagsKnown  bool       `json:"tcp_flags_known"`
	CountsKnown bool       `json:"counts_known"` // records had packets or bytes
	First, Last time.Time  `json:"-"`
	HasTime     bool       `json:"-"`
	ToServer    DirSummary `json:"client_to_server"`
	ToClient    DirSummary `json:"server_to_client"`
}

func flagNames(f uint8, known bool) []string {
	if !known {
		return nil
	}
	names := []string{}
	switch {
	case f&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN|flow.TCPFlagACK:
		names = append(names, "SYN-ACK")
	case f&flow.TCPFlagSYN != 0:
		names = append(names, "SYN")
	}
	if f&flow.TCPFlagFIN != 0 {
		names = append(names, "FIN")
	}
	if f&flow.TCPFlagRST != 0 {
		names = append(names, "RST")
	}
	return names
}

func (d *dirStats) summary() DirSummary {
	return DirSummary{
		Records: d.records, Packets: d.packets, Bytes: d.bytes, Accepted: d.accepted, Rejected: d.rejected,
		TCPFlags: flagNames(d.flags, d.flagRecords > 0),
	}
}

// isEphemeral reports whether p is in the range systems pick client ports
// from (IANA's 49152 and up, Linux's 32768 and up).
func isEphemeral(p uint16) bool { return p >= 32768 }

// classify decides who initiated the conversation and what became of it.
func classify(k convKey, c *conv) Conversation {
	d := &c.d
	isTCP := k.proto == 6 || (k.proto == -1 && (d[0].flags|d[1].flags) != 0)
	flagsKnown := isTCP && d[0].flagRecords+d[1].flagRecords > 0

	// Who initiated: the side that sent SYN without ACK, or the other
	// side of the one that sent SYN-ACK. Record order and ports say
	// nothing certain; they are used, and named, only when flags cannot
	// tell.
	client, by := -1, ""
	if flagsKnown {
		synAck := func(f uint8) bool { return f&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN|flow.TCPFlagACK }
		synOnly := func(f uint8) bool { return f&flow.TCPFlagSYN != 0 && f&flow.TCPFlagACK == 0 }
		switch {
		case synAck(d[1].flags) && !synAck(d[0].flags):
			client = 0
		case synAck(d[0].flags) && !synAck(d[1].flags):
			client = 1
		case synOnly(d[0].flags) && !synOnly(d[1].flags):
			client = 0
		case synOnly(d[1].flags) && !synOnly(d[0].flags):
			client = 1
		}
		if client >= 0 {
			by = InitiatorByFlags
		}
	}
	if client < 0 {
		client, by = guessClient(k, c)
	}
	C, S := &d[client], &d[1-client]
	conv := Conversation{
		Interface: k.iface, Protocol: int(k.proto), InitiatorBy: by, FlagsKnown: flagsKnown,
		CountsKnown: d[0].countRecords+d[1].countRecords > 0,
		ToServer:    C.summary(), ToClient: S.summary(),
	}
	if client == 0 {
		conv.Client, conv.Server = k.a, k.b
	} else {
		conv.Client, conv.Server = k.b, k.a
	}
	var all dirStats
	all.merge(C)
	all.merge(S)
	if all.hasTime {
		conv.HasTime = true
		conv.First, conv.Last = time.Unix(all.first, 0).UTC(), time.Unix(all.last, 0).UTC()
	}
	conv.Verdict, conv.Handshake = verdict(isTCP, flagsKnown, k.a.Addr.Is4(), C, S)
	return conv
}

// guessClient picks the initiator without flags: the side on a service
// port, else the only side that sent anything, else the side whose
// records start first; by says which.
func guessClient(k convKey, c *conv) (int, string) {
	pa, pb := k.a.Port, k.b.Port
	// client index 0 means A→B is client→server, so B is the server.
	switch {
	case pa != pb && pa != 0 && pb != 0 && pa < 1024 && pb >= 1024:
		return 1, InitiatorByPorts
	case pa != pb && pa != 0 && pb != 0 && pb < 1024 && pa >= 1024:
		return 0, InitiatorByPorts
	case pa != 0 && pb != 0 && isEphemeral(pa) && !isEphemeral(pb):
		return 0, InitiatorByPorts
	case pa != 0 && pb != 0 && isEphemeral(pb) && !isEphemeral(pa):
		return 1, InitiatorByPorts
	}
	switch {
	case c.d[0].records > 0 && c.d[1].records == 0:
		return 0, InitiatorByOnlySender
	case c.d[1].records > 0 && c.d[0].records == 0:
		return 1, InitiatorByOnlySender
	}
	if c.d[0].hasTime && c.d[1].hasTime && c.d[0].first != c.d[1].first {
		if c.d[0].first < c.d[1].first {
			return 0, InitiatorByTime
		}
		return 1, InitiatorByTime
	}
	return 0, InitiatorUnknown
}

// side names who did something: client, server or both. When both did,
// the one whose record of it ended before the other's began did it first;
// records that overlap in time cannot tell (a record's end is its last
// packet, not necessarily the FIN), so then it is both.
func side(byClient, byServer bool, cStart, cEnd, sStart, sEnd int64) string {
	switch {
	case byClient && !byServer:
		return "client"
	case byServer && !byClient:
		return "server"
	case cEnd < sStart:
		return "client"
	case sEnd < cStart:
		return "server"
	}
	return "both"
}

func verdict(isTCP, flagsKnown, ipv4 bool, C, S *dirStats) (string, string) {
	accepted, rejected := C.accepted+S.accepted, C.rejected+S.rejected
	hasC, hasS := C.records > 0, S.records > 0
	handshake := ""
	if flagsKnown {
		syn := C.flags&flow.TCPFlagSYN != 0
		synAck := S.flags&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN|flow.TCPFlagACK
		switch {
		case syn && synAck:
			handshake = HandshakeComplete
		case syn:
			handshake = HandshakeSYNOnly
		case synAck:
			handshake = HandshakeSYNACK
		default:
			handshake = HandshakeNotSeen
		}
	}
	// A filter's verdict explains everything after it.
	switch {
	case rejected > 0 && accepted == 0:
		return VerdictRejected, handshake
	case C.rejected > 0 && C.accepted == 0:
		return VerdictRejected, handshake
	case C.accepted > 0 && S.rejected > 0 && S.accepted == 0:
		return VerdictReplyRejected, handshake
	}
	if !isTCP {
		if hasC && hasS {
			return VerdictAnswered, handshake
		}
		return VerdictNoAnswer, handshake
	}
	if !flagsKnown {
		// Without flags, the shape of the traffic is all there is: a
		// failed handshake is a few small packets one way; a refusal is
		// one or two bare (RST) segments back.
		hdr := uint64(60) // IP and TCP headers without options: a RST
		if ipv4 {
			hdr = 40
		}
		switch {
		case !hasS && C.packets <= 7 && C.bytes <= (hdr+40)*C.packets:
			return VerdictNoAnswerGuess, ""
		case !hasS || !hasC:
			return VerdictOneWayGuess, ""
		case S.packets > 0 && S.packets <= 2 && S.bytes <= hdr*S.packets:
			return VerdictRSTGuess, ""
		}
		return VerdictTwoWayUnknown, ""
	}
	syn := C.flags&flow.TCPFlagSYN != 0
	synAck := S.flags&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN|flow.TCPFlagACK
	rstC, rstS := C.flags&flow.TCPFlagRST != 0, S.flags&flow.TCPFlagRST != 0
	finC, finS := C.flags&flow.TCPFlagFIN != 0, S.flags&flow.TCPFlagFIN != 0
	switch {
	case rstS && syn && !synAck && !finS && !rstC:
		return VerdictAnsweredRST, handshake
	case rstC || rstS:
		return VerdictResetBy + side(rstC, rstS, C.rstStart, C.rstEnd, S.rstStart, S.rstEnd), handshake
	case finC || finS:
		return VerdictClosedFINBy + side(finC, finS, C.finStart, C.finEnd, S.finStart, S.finEnd), handshake
	case syn && synAck:
		return VerdictEstablished, handshake
	case syn && !hasS:
		return VerdictNoAnswerSYN, handshake
	}
	return VerdictStillOpen, handshake
}

// closed reports whether a conversation is over by its flags: reset, or
// FIN from both sides.
func (c *conv) closed() bool {
	f0, f1 := c.d[0].flags, c.d[1].flags
	if (f0|f1)&flow.TCPFlagRST != 0 {
		return true
	}
	return f0&flow.TCPFlagFIN != 0 && f1&flow.TCPFlagFIN != 0
}

// sortConversations orders conversations by first time, then interface
// and endpoints, so output is deterministic.
func sortConversations(cs []Conversation) {
	slices.SortFunc(cs, func(a, b Conversation) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		if c := strings.Compare(a.Interface, b.Interface); c != 0 {
			return c
		}
		if c := a.Client.compare(b.Client); c != 0 {
			return c
		}
		if c := a.Server.compare(b.Server); c != 0 {
			return c
		}
		return cmp.Compare(a.Protocol, b.Protocol)
	})
}

// protoName names common protocols in tables.
func protoName(p int) string {
	switch p {
	case -1:
		return "-"
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	}
	return strconv.Itoa(p)
}
