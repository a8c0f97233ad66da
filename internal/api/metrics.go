package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API server's Prometheus metrics. Labels take only
// values the server chooses (service names, error codes, the actions
// services answered), never raw client input, so a client cannot grow
// them without bound.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	calls    *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewMetrics returns the metrics in a registry of their own, with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowlog_api_requests_total",
			Help: "API requests by service and outcome: OK, or the AWS error code answered.",
		}, []string{"service", "code"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowlog_api_calls_total",
			Help: "API calls that succeeded, by service and action.",
		}, []string{"service", "action"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowlog_api_request_seconds",
			Help:    "Time from a request's arrival to its answer, by service (agents' long polls included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"service"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowlog_api_requests_in_flight",
			Help: "API requests being served now (agents' long polls included).",
		}),
	}
	m.reg.MustRegister(m.requests, m.calls, m.seconds, m.inFlight,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics are registered, for /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// observe counts one answered request of service: code is "OK" or the
// error code; action is counted only for successes.
func (m *Metrics) observe(service, action, code string, took time.Duration) {
	if m == nil {
		return
	}
	if service == "" {
		service = "unknown"
	}
	m.requests.WithLabelValues(service, code).Inc()
	if code == "OK" {
		m.calls.WithLabelValues(service, action).Inc()
	}
	m.seconds.WithLabelValues(service).Observe(took.Seconds())
}
