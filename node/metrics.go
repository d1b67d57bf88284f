package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus series, on a registry of its own so
// several nodes can run in one test process.
type metrics struct {
	reg          *prometheus.Registry
	authFailures prometheus.Counter
	badInput     *prometheus.CounterVec // by cause
	jobs         *prometheus.CounterVec // by kind and final state
	peerBytes    *prometheus.CounterVec // by direction
	proposals    *prometheus.CounterVec // by decision
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_control_auth_failures_total", Help: "Operator calls refused for a missing, unknown or under-privileged token."}),
		badInput: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_bad_input_total", Help: "Rejected input by cause (unpinned peer, bad signature, replay, expired, oversized, malformed)."}, []string{"cause"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_jobs_total", Help: "Jobs reaching a final state."}, []string{"kind", "state"}),
		peerBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_peer_payload_bytes_total", Help: "Protocol payload bytes exchanged with peers."}, []string{"direction"}),
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_job_proposals_total", Help: "Job proposals received, by decision."}, []string{"decision"}),
	}
	m.reg.MustRegister(m.authFailures, m.badInput, m.jobs, m.peerBytes, m.proposals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
