module chaos-lab/tools/cluster/prometheus

go 1.23.0

require github.com/prometheus/prometheus v0.305.0

// Copied from Prometheus v0.305.0's own go.mod: a dependency's replace and exclude directives
// do not apply in the module that requires it, and the release binary was built with them.
exclude github.com/linode/linodego v1.0.0

exclude (
	github.com/grpc-ecosystem/grpc-gateway v1.14.7
	google.golang.org/api v0.30.0
)

replace github.com/fsnotify/fsnotify v1.8.0 => github.com/fsnotify/fsnotify v1.7.0
