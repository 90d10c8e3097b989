package daemon

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/httpserve"
)

// metrics are the daemon's Prometheus metrics. What the daemon counts
// anyway (Daemon.Stats: the scanner's counters, the engine's tracked keys,
// active bans) is read at scrape time, as status reads it; bans and alert
// deliveries are counted as they happen.
type metrics struct {
	reg        *prometheus.Registry
	bans       *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

var (
	descLines   = prometheus.NewDesc("sshguard_lines_read_total", "Log lines read, per source.", []string{"source"}, nil)
	descEvents  = prometheus.NewDesc("sshguard_events_total", "Recognised sshd events, per kind.", []string{"kind"}, nil)
	descCounted = prometheus.NewDesc("sshguard_attempts_counted_total", "Counted attempts (one per guess or per probing connection), per kind.", []string{"kind"}, nil)
	descParse   = prometheus.NewDesc("sshguard_parse_errors_total", "Lines naming sshd that gave no event, per reason (unknown_shape: a message not known; unknown_header: sshd's tag where no known header puts it). sshguard-go scan --unrecognised shows them.", []string{"reason"}, nil)
	descUntrust = prometheus.NewDesc("sshguard_untrusted_lines_total", "Journal entries tagged sshd that sshd did not write (logger -t sshd by a local user): not believed.", nil, nil)
	descTracked = prometheus.NewDesc("sshguard_tracked_keys", "Client addresses (or /64s) whose attempts are being counted.", nil, nil)
	descActive  = prometheus.NewDesc("sshguard_active_bans", "Bans in force.", nil, nil)
)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sshguard_bans_total",
			Help: "Bans made since start, by origin (detected or admin)."}, []string{"origin"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sshguard_alert_deliveries_total",
			Help: "Alert delivery attempts, by channel and result (sent, retry, failed, expired)."}, []string{"channel", "result"}),
	}
	m.reg.MustRegister(m.bans, m.deliveries, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// statsCollector reads Daemon.Stats at scrape time.
type statsCollector struct{ stats func() Stats }

// The fleet's ban sharing.
var (
	descFleetPublished = prometheus.NewDesc("sshguard_fleet_published_total", "Bans and unbans of this host published to the fleet.", nil, nil)
	descFleetPending   = prometheus.NewDesc("sshguard_fleet_pending", "Bans and unbans of this host waiting to be published.", nil, nil)
	descFleetLag       = prometheus.NewDesc("sshguard_fleet_lag", "Other hosts' bans in the stream not yet applied here.", nil, nil)
	descFleetReceived  = prometheus.NewDesc("sshguard_fleet_received_total", "Other hosts' bans and unbans, by origin host and result (applied, refused_allowlist, refused_wide, expired, already, unbanned, kept, garbage, failed).", []string{"origin", "result"}, nil)
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLines, descEvents, descCounted, descParse, descUntrust, descTracked, descActive,
		descFleetPublished, descFleetPending, descFleetLag, descFleetReceived} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	st := s.Scan
	for _, src := range s.Sources {
		ch <- prometheus.MustNewConstMetric(descLines, prometheus.CounterValue, float64(src.Lines), src.Name)
	}
	for k := detect.KindFailure; k <= detect.KindNotice; k++ {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(st.ByKind[k]), k.String())
	}
	for _, k := range []detect.Kind{detect.KindFailure, detect.KindProbe} {
		ch <- prometheus.MustNewConstMetric(descCounted, prometheus.CounterValue, float64(st.Counted[k]), k.String())
	}
	ch <- prometheus.MustNewConstMetric(descParse, prometheus.CounterValue, float64(st.Unrecognised), "unknown_shape")
	ch <- prometheus.MustNewConstMetric(descParse, prometheus.CounterValue, float64(st.UnknownHead), "unknown_header")
	ch <- prometheus.MustNewConstMetric(descUntrust, prometheus.CounterValue, float64(st.Untrusted))
	ch <- prometheus.MustNewConstMetric(descTracked, prometheus.GaugeValue, float64(s.Tracked))
	if s.Err == nil {
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(s.ActiveBans))
	}
	if f := s.Fleet; f != nil {
		ch <- prometheus.MustNewConstMetric(descFleetPublished, prometheus.CounterValue, float64(f.Published))
		ch <- prometheus.MustNewConstMetric(descFleetPending, prometheus.GaugeValue, float64(f.Pending))
		ch <- prometheus.MustNewConstMetric(descFleetLag, prometheus.GaugeValue, float64(f.Lag))
		for host, m := range f.Received {
			for result, n := range m {
				ch <- prometheus.MustNewConstMetric(descFleetReceived, prometheus.CounterValue, float64(n), host, result)
			}
		}
	}
}

// metricsLimits are the metrics listener's. Prometheus scrapes every 15 s
// to a minute on a kept-alive connection (idle for 2 min, it stays open)
// and gives up after its scrape timeout (10 s by default); the answer is
// tens of KB. No credentials are asked, as of node_exporter: anyone who
// reaches the port is a client. 16 connections, 2 scrapes at once (more
// wait up to 10 s).
func metricsLimits() httpserve.Limits {
	return httpserve.Limits{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: 2 * time.Minute,
		MaxHeaderBytes: 8 << 10, MaxConns: 16, MaxRequests: 2, Queue: 10 * time.Second, SendBuffer: 256 << 10, Grace: 5 * time.Second}
}

// serve answers /metrics on addr within lim until ctx ends; listening is
// told the address once it listens.
func (m *metrics) serve(ctx context.Context, addr string, lim httpserve.Limits, listening func(addr string)) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return httpserve.Server{Handler: mux, Limits: lim}.Listen(ctx, addr, func(a net.Addr) { listening(a.String()) })
}
