package serve

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are what /metrics shows, in Prometheus' text format.
type metrics struct {
	registry  *prometheus.Registry
	builds    *prometheus.CounterVec // by result: ok, failed
	running   prometheus.Gauge
	manifests *prometheus.CounterVec // by cache: hit (kept), miss (built or waited for)
	served    prometheus.Counter     // bytes of manifests and blobs sent
	pruned    prometheus.Counter     // images dropped from the storage
	locks     *prometheus.CounterVec // nixpkgs locks, by result: ok, moved, stale, failed
	handler   http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nixery_serve_builds_total", Help: "Images built, by result.",
		}, []string{"result"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nixery_serve_builds_running", Help: "Builds running now.",
		}),
		manifests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nixery_serve_manifest_requests_total", Help: "Manifest requests by tag, by whether the image was kept already.",
		}, []string{"cache"}),
		served: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nixery_serve_bytes_served_total", Help: "Bytes of manifests and blobs sent.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nixery_serve_images_pruned_total", Help: "Images dropped from the storage to keep it within --max-images and --max-storage.",
		}),
		locks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nixery_serve_nixpkgs_locks_total", Help: "Locks of the nixpkgs revisions tags name, by result: ok, moved (to another revision than before), stale (failed; the last lock stands), failed.",
		}, []string{"result"}),
	}
	m.registry.MustRegister(m.builds, m.running, m.manifests, m.served, m.pruned, m.locks)
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}
