package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// checkMetrics reads /metrics and /healthz of a running agent.
func checkMetrics(t *testing.T, a *Agent) {
	t.Helper()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.MetricsAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	a.do(func() { a.tick() }) // a fresh snapshot
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`flowlog_interface_packets_total{interface="va"`, `flowlog_interface_bytes_total{interface="vb"`,
		`flowlog_records_total{flow_log_id="fl-`, `flowlog_flow_table_flows{`, `flowlog_flow_table_capacity{`,
		`flowlog_source_packets_total{source="` + a.SourceKind() + `"}`, `flowlog_interfaces_attached 3`,
		`flowlog_spool_backlog_bytes{`, `flowlog_source_drops_total{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if a.SourceKind() == "ebpf" && !strings.Contains(body, "flowlog_source_map_fill_ratio") {
		t.Error("/metrics lacks the eBPF map fill")
	}
	code, body = get("/healthz")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || h.Status != "ok" || h.Interfaces != 3 || len(h.FlowLogs) != 2 {
		t.Errorf("/healthz %d %s (%v)", code, body, err)
	}
}
