//go:build tools

// Pins kube-router for the test cluster's NetworkPolicy enforcement (--run-firewall only).
// Built from this folder by tools/cluster/build-extras.sh:
//
//	go build -mod=readonly github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
