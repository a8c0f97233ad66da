package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowlog/flowlog/internal/capture/afpacket"
	"github.com/flowlog/flowlog/internal/capture/ebpf"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/spool"
)

// metrics holds what /metrics and /healthz show: a snapshot the loop
// takes after every drain, and counters of rare events.
type metrics struct {
	reg *prometheus.Registry

	attachErrors atomic.Uint64
	drainErrors  atomic.Uint64
	lostDetached atomic.Uint64 // lost packets, all interfaces, since start

	mu   sync.Mutex
	snap snapshot
}

type snapshot struct {
	at         time.Time
	source     string
	interfaces []ifaceSnap
	logs       []logSnap
	retired    []retiredSnap

	packets, bytes  uint64 // all interfaces since start, detached ones included
	sourcePackets   uint64
	sourceDrops     uint64
	mapFill         float64 // eBPF flow map entries at the last drain / capacity; -1 if none
	drainDuration   time.Duration
	detachedPackets uint64
	detachedBytes   uint64
}

type ifaceSnap struct {
	id, name, netns, eni string
	packets, bytes, lost uint64
}

type logSnap struct {
	id        string
	stats     pipeline.LiveStats
	capacity  int
	spool     *spool.Stats
	lastError error
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.snap.mapFill = -1
	m.reg.MustRegister(m)
	return m
}

var (
	descIfacePackets = prometheus.NewDesc("flowlog_interface_packets_total", "IP packets counted on an attached interface.", []string{"interface_id", "interface", "netns"}, nil)
	descIfaceBytes   = prometheus.NewDesc("flowlog_interface_bytes_total", "IP bytes counted on an attached interface.", []string{"interface_id", "interface", "netns"}, nil)
	descIfaceLost    = prometheus.NewDesc("flowlog_interface_lost_packets_total", "Packets of an attached interface lost before they were counted (ring overrun, flow map full): SKIPDATA.", []string{"interface_id", "interface", "netns"}, nil)
	descAttached     = prometheus.NewDesc("flowlog_interfaces_attached", "Interfaces the source captures on.", nil, nil)
	descPackets      = prometheus.NewDesc("flowlog_packets_total", "IP packets counted on all interfaces since the agent started.", nil, nil)
	descBytes        = prometheus.NewDesc("flowlog_bytes_total", "IP bytes counted on all interfaces since the agent started.", nil, nil)
	descLost         = prometheus.NewDesc("flowlog_lost_packets_total", "Packets lost before they were counted, all interfaces.", nil, nil)
	descRecords      = prometheus.NewDesc("flowlog_records_total", "Records handed to the destination's spool, by log-status.", []string{"flow_log_id", "log_status"}, nil)
	descFlows        = prometheus.NewDesc("flowlog_flow_table_flows", "Flow records held in the flow table.", []string{"flow_log_id"}, nil)
	descCapacity     = prometheus.NewDesc("flowlog_flow_table_capacity", "Capacity of the flow table (max-flows).", []string{"flow_log_id"}, nil)
	descSkipped      = prometheus.NewDesc("flowlog_flow_table_skipped_packets_total", "Packets not recorded because the flow table was full: SKIPDATA.", []string{"flow_log_id"}, nil)
	descExcluded     = prometheus.NewDesc("flowlog_excluded_packets_total", "Packets of traffic AWS does not log (metadata, DNS resolver, DHCP...).", []string{"flow_log_id"}, nil)
	descLate         = prometheus.NewDesc("flowlog_late_packets_total", "Packets counted after their window was written (sent in a late batch).", []string{"flow_log_id"}, nil)
	descDropped      = prometheus.NewDesc("flowlog_dropped_records_total", "Records dropped because the destination fell behind (queue: in memory; spool: spool or disk full), reported as SKIPDATA.", []string{"flow_log_id", "reason"}, nil)
	descSinkErrors   = prometheus.NewDesc("flowlog_sink_errors_total", "Errors writing records to the spool or destination.", []string{"flow_log_id"}, nil)
	descBacklog      = prometheus.NewDesc("flowlog_spool_backlog_bytes", "Spooled bytes the destination has not acknowledged.", []string{"flow_log_id"}, nil)
	descRetired      = prometheus.NewDesc("flowlog_retired_spool_backlog_bytes", "Spooled bytes of a removed flow log that its destination has not acknowledged yet; the spool is removed once they are.", []string{"flow_log_id"}, nil)
	descRetries      = prometheus.NewDesc("flowlog_spool_retries_total", "Delivery attempts that failed and were retried.", []string{"flow_log_id"}, nil)
	descSrcPackets   = prometheus.NewDesc("flowlog_source_packets_total", "Packets the capture source saw (IP or not).", []string{"source"}, nil)
	descSrcDrops     = prometheus.NewDesc("flowlog_source_drops_total", "Packets the capture source lost (ring drops, flow map full).", []string{"source"}, nil)
	descMapFill      = prometheus.NewDesc("flowlog_source_map_fill_ratio", "Entries of the eBPF flow map at the last drain over its capacity.", []string{"source"}, nil)
	descDrain        = prometheus.NewDesc("flowlog_drain_duration_seconds", "Duration of the last drain of the source.", nil, nil)
	descLastDrain    = prometheus.NewDesc("flowlog_last_drain_timestamp_seconds", "Time of the last drain.", nil, nil)
	descAttachErr    = prometheus.NewDesc("flowlog_attach_errors_total", "Interfaces the source failed to attach to.", nil, nil)
	descDrainErr     = prometheus.NewDesc("flowlog_drain_errors_total", "Failed drains of the source.", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

// Collect implements prometheus.Collector from the last snapshot.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	s := m.snap
	m.mu.Unlock()
	c := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, i := range s.interfaces {
		c(descIfacePackets, float64(i.packets), i.eni, i.name, i.netns)
		c(descIfaceBytes, float64(i.bytes), i.eni, i.name, i.netns)
		c(descIfaceLost, float64(i.lost), i.eni, i.name, i.netns)
	}
	g(descAttached, float64(len(s.interfaces)))
	c(descPackets, float64(s.packets))
	c(descBytes, float64(s.bytes))
	c(descLost, float64(m.lostDetached.Load()))
	for _, l := range s.logs {
		st := l.stats
		ok := st.Records - st.NoData - st.SkipData
		c(descRecords, float64(ok), l.id, "OK")
		c(descRecords, float64(st.NoData), l.id, "NODATA")
		c(descRecords, float64(st.SkipData), l.id, "SKIPDATA")
		g(descFlows, float64(st.Table.Active), l.id)
		g(descCapacity, float64(l.capacity), l.id)
		c(descSkipped, float64(st.Table.SkippedPackets), l.id)
		c(descExcluded, float64(st.Excluded), l.id)
		c(descLate, float64(st.Table.LatePackets), l.id)
		c(descDropped, float64(st.DroppedRecords), l.id, "queue")
		c(descSinkErrors, float64(st.SinkErrors), l.id)
		if l.spool != nil {
			c(descDropped, float64(l.spool.DroppedRecords), l.id, "spool")
			g(descBacklog, float64(l.spool.BacklogBytes), l.id)
			c(descRetries, float64(l.spool.Retries), l.id)
		}
	}
	for _, r := range s.retired {
		g(descRetired, float64(r.backlogBytes), r.id)
	}
	if s.source != "" {
		c(descSrcPackets, float64(s.sourcePackets), s.source)
		c(descSrcDrops, float64(s.sourceDrops), s.source)
		if s.mapFill >= 0 {
			g(descMapFill, s.mapFill, s.source)
		}
	}
	g(descDrain, s.drainDuration.Seconds())
	if !s.at.IsZero() {
		g(descLastDrain, float64(s.at.UnixNano())/1e9)
	}
	c(descAttachErr, float64(m.attachErrors.Load()))
	c(descDrainErr, float64(m.drainErrors.Load()))
}

// snapshot records the state /metrics shows; it runs on the loop.
func (a *Agent) snapshot(now time.Time) {
	s := snapshot{at: now, source: a.srcKind, mapFill: -1}
	a.metrics.mu.Lock()
	prev := a.metrics.snap
	a.metrics.mu.Unlock()
	s.detachedPackets, s.detachedBytes = prev.detachedPackets, prev.detachedBytes
	s.packets, s.bytes = s.detachedPackets, s.detachedBytes
	for _, at := range a.links {
		s.interfaces = append(s.interfaces, ifaceSnap{
			id: fmt.Sprint(at.id), name: at.link.Name, netns: at.link.Netns, eni: at.res.InterfaceID,
			packets: at.packets, bytes: at.bytes, lost: at.lost,
		})
		s.packets += at.packets
		s.bytes += at.bytes
	}
	for _, fl := range a.logs {
		ls := logSnap{id: fl.id, stats: fl.live.Stats(), capacity: fl.def.MaxFlows, lastError: fl.live.LastError()}
		if fl.spool != nil {
			st := fl.spool.Stats()
			ls.spool = &st
		}
		s.logs = append(s.logs, ls)
	}
	s.retired = a.retiredSnapshot()
	switch src := a.src.(type) {
	case *afpacket.Source:
		st := src.Stats()
		s.sourcePackets, s.sourceDrops = st.Packets, st.Drops
	case *ebpf.Source:
		if st, err := src.Stats(); err == nil {
			s.sourcePackets, s.sourceDrops = st.Packets, st.MapFull
		}
		d := src.LastDrain()
		s.drainDuration = d.Duration
		if n := src.MaxFlows(); n > 0 {
			s.mapFill = float64(d.Entries) / float64(n)
		}
	}
	a.metrics.mu.Lock()
	a.metrics.snap = s
	a.metrics.mu.Unlock()
}

// retire keeps the counts of a detached interface in the totals.
func (m *metrics) retire(at *attached) {
	m.mu.Lock()
	m.snap.detachedPackets += at.packets
	m.snap.detachedBytes += at.bytes
	m.mu.Unlock()
}

// health is the body of /healthz.
type health struct {
	Status     string       `json:"status"` // ok, or stalled
	Source     string       `json:"source"`
	Interfaces int          `json:"interfaces"`
	LastDrain  time.Time    `json:"last_drain"`
	FlowLogs   []healthFlow `json:"flow_logs"`
}

type healthFlow struct {
	ID           string `json:"id"`
	LastError    string `json:"last_error,omitempty"`
	BacklogBytes int64  `json:"spool_backlog_bytes"`
}

// serveMetrics serves /metrics and /healthz on the configured address.
func (a *Agent) serveMetrics() error {
	if a.cfg.MetricsAddress == "none" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddress)
	if err != nil {
		return fmt.Errorf("metrics-address %s: %w", a.cfg.MetricsAddress, err)
	}
	a.addr = ln.Addr()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", a.healthz)
	a.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("serve metrics", "error", err)
		}
	}()
	return nil
}

// healthz answers 200 while the agent drains its source on time, 503
// when the loop has stalled (or stopped).
func (a *Agent) healthz(w http.ResponseWriter, _ *http.Request) {
	a.metrics.mu.Lock()
	s := a.metrics.snap
	a.metrics.mu.Unlock()
	last := time.Unix(0, a.lastTick.Load())
	h := health{Status: "ok", Source: a.srcKind, Interfaces: len(s.interfaces), LastDrain: last}
	for _, l := range s.logs {
		hf := healthFlow{ID: l.id}
		if l.lastError != nil {
			hf.LastError = l.lastError.Error()
		}
		if l.spool != nil {
			hf.BacklogBytes = l.spool.BacklogBytes
			if hf.LastError == "" && l.spool.LastError != nil {
				hf.LastError = l.spool.LastError.Error()
			}
		}
		h.FlowLogs = append(h.FlowLogs, hf)
	}
	code := http.StatusOK
	stale := max(5*time.Second, 5*a.cfg.DrainInterval)
	select {
	case <-a.done:
		h.Status, code = "stopped", http.StatusServiceUnavailable
	default:
		if a.deps.Now().Sub(last) > stale {
			h.Status, code = "stalled", http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}
