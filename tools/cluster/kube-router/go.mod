module chaos-lab/tools/cluster/kube-router

// The go line of kube-router v2.1.0 itself (built upstream with Go 1.21.7): GODEBUG defaults as
// in its release. Not tidy on purpose, do not run `go mod tidy` here: tidy would resolve
// imports that only Windows builds of the +incompatible github.com/docker/docker module make
// (moby/term/windows…) at their latest versions, which moves golang.org/x/sys, OpenTelemetry and
// genproto far past kube-router's own go.mod and raises the go line. go.sum holds what the Linux
// build needs (CGO_ENABLED=0 go list -mod=mod -deps …/cmd/kube-router adds nothing to go.mod).
go 1.21

require github.com/cloudnativelabs/kube-router/v2 v2.1.0
