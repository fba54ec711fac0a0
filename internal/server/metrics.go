package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coffer-kms/coffer/internal/cpushare"
)

// metrics holds the server's Prometheus collectors in a registry of its own, so that two
// servers in one test process do not collide.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	panics   prometheus.Counter
	// auditFailures counts audit records that could not be written, by sink ("file",
	// "stdout"): each failed its request (SECURITY-NOTES L1, audit_failures_total).
	auditFailures *prometheus.CounterVec
	// purgesHeld is 1 while purges are held because the clock jumped forward; purgeHolds
	// counts the holds; scheduledPurges counts the objects the scheduler purged.
	purgesHeld      prometheus.Gauge
	purgeHolds      prometheus.Counter
	scheduledPurges prometheus.Counter
	// connRefused counts connections closed as soon as they were accepted, by reason
	// (connRefusedPerAddress).
	connRefused *prometheus.CounterVec
}

func newMetrics(sealed func() bool) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "coffer_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coffer_http_panics_total",
			Help: "Handler panics recovered (each answered 500).",
		}),
		auditFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_audit_failures_total",
			Help: "Audit records that could not be written (or the audit log opened), by sink; each failed its request.",
		}, []string{"sink"}),
		purgesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "coffer_purges_held",
			Help: "1 while purges are held because the clock moved forward more than purge-clock-jump-limit (until `coffer operator confirm-clock`).",
		}),
		purgeHolds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coffer_purge_clock_holds_total",
			Help: "Purge holds started because the clock moved forward more than purge-clock-jump-limit.",
		}),
		scheduledPurges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coffer_scheduled_purges_total",
			Help: "Soft-deleted keys, secrets and certificates purged by the scheduler at the end of their retention.",
		}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_connections_refused_total",
			Help: "Connections closed as soon as they were accepted, before the TLS handshake, by reason: per-address, the source address already held max-connections-per-address.",
		}, []string{"reason"}),
	}
	m.connRefused.WithLabelValues(connRefusedPerAddress) // 0 from the start, for alerts on the rate
	// Both sinks from the start, so that an alert on the rate sees 0 rather than no series.
	m.auditFailures.WithLabelValues(auditSinkFile)
	m.auditFailures.WithLabelValues(auditSinkStdout)
	sealedGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "coffer_sealed",
		Help: "1 while Coffer is sealed (serving no data), 0 while unsealed.",
	}, func() float64 {
		if sealed() {
			return 1
		}
		return 0
	})
	m.registry.MustRegister(m.requests, m.latency, m.panics, m.auditFailures, sealedGauge, m.purgesHeld, m.purgeHolds, m.scheduledPurges, m.connRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// connRefusedPerAddress is the reason label of coffer_connections_refused_total for
// connections past max-connections-per-address.
const connRefusedPerAddress = "per-address"

// The sink label values of coffer_audit_failures_total.
const (
	auditSinkFile   = "file"
	auditSinkStdout = "stdout"
)

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// shareGauges publishes the state of the CPU share of software RSA work (cpushare).
func (m *metrics) shareGauges(c *cpushare.Scheduler) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "coffer_crypto_slots_free",
			Help: "Slots for software RSA private operations and key generations free now (crypto-slots).",
		}, func() float64 { return float64(c.Free()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "coffer_crypto_waiting",
			Help: "Software RSA operations waiting for a slot or for their tenant's key-generation cap.",
		}, func() float64 { return float64(c.Waiting()) }),
	)
}

// connGauge publishes the connections open now and their cap (max-connections).
func (m *metrics) connGauge(open func() float64, max int) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "coffer_open_connections",
			Help: "Client connections open now, TLS handshakes included; new ones wait in the accept queue while it equals coffer_max_connections.",
		}, open),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "coffer_max_connections",
			Help: "The cap on open client connections (max-connections).",
		}, func() float64 { return float64(max) }),
	)
}

// observe records one served request.
func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
