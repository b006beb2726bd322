//go:build ignore

// Stands in for github.com/prometheus/prometheus/plugins/plugins.go in the copy of the module that
// tools/cluster/build-extras.sh builds: the service discoveries the test cluster needs. Prometheus
// 3.5.0 has no build tags to leave discoveries out (remove_all_sd and enable_<name>_sd came in a
// later release), and its plugins.go registers all 24 of them, with the AWS, Azure and GCE SDKs. The
// plugins package's minimum.go still registers file_sd and http_sd; static_configs need no plugin.
// The build constraint above keeps this file out of this module's own packages (and out of `go
// mod tidy`); build-extras.sh drops it from the copy.
package plugins

import (
	// Register kubernetes plugin: the chart's scrape config (dashboards/prometheus/kubernetes.yml).
	_ "github.com/prometheus/prometheus/discovery/kubernetes"
)
