//go:build tools

// Pins Prometheus 3.5.0 (Go module v0.305.0), the version of the chart's image
// (charts/prometheus.ts: prom/prometheus:v3.5.0), for the test cluster. tools/cluster/build-extras.sh
// builds it with the service discoveries of sd/plugins.go only; from this folder,
//
//	CGO_ENABLED=0 go build -mod=readonly -tags netgo github.com/prometheus/prometheus/cmd/prometheus
//
// builds it with all of them, as upstream.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
