//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/mesh/policy"
)

// The two services of the benchmark's mesh.
const (
	clientService = "bench-client"
	serverService = "bench-server"
)

// benchPolicy lets the client call every method of the server, with no
// timeout, retries, faults or outlier ejection: the sidecars only forward.
var benchPolicy = []byte(`services:
  ` + serverService + `:
    allow:
      - from: ` + clientService + `
        methods: ["*"]
`)

// readyTimeout bounds each program's start; generous, for a loaded
// machine.
const readyTimeout = 60 * time.Second

// meshPair is a control plane and the two sidecars: the application sends
// to the client sidecar's outbound address.
type meshPair struct {
	outbound                 string
	controlPlane             *child
	clientSide, serverSide   *child
	clientAdmin, serverAdmin string // admin addresses (pprof)
}

// startMesh starts `marquee control-plane` and a sidecar beside each side,
// the server's forwarding to appAddr, and waits until all three are ready.
// The sidecars are pinned like the other proxies; the control plane is
// not (it is idle during the runs).
func startMesh(ctx context.Context, k *children, bin, appAddr string) (*meshPair, error) {
	if _, err := policy.Parse(benchPolicy); err != nil {
		return nil, fmt.Errorf("bench policy: %w", err)
	}
	dir := filepath.Join(k.dir, "control-plane")
	policyFile := filepath.Join(k.dir, "policy.yaml")
	if err := os.WriteFile(policyFile, benchPolicy, 0o644); err != nil {
		return nil, err
	}
	// Made here, before the control plane reads it, so that the sidecars'
	// join tokens can be computed from it.
	secret, err := ca.LoadOrCreateJoinSecret(filepath.Join(dir, "mesh", "join.key"))
	if err != nil {
		return nil, err
	}
	addrs, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	cpConsole, cpGRPC, cpAdmin := addrs[0], addrs[1], addrs[2]
	cliIn, cliOut, cliAdmin := addrs[3], addrs[4], addrs[5]
	srvIn, srvOut, srvAdmin := addrs[6], addrs[7], addrs[8]
	parent := strconv.Itoa(os.Getpid())

	cp, err := k.start("control-plane", false, nil, bin, "control-plane",
		"--console-addr", cpConsole, "--grpc-addr", cpGRPC, "--admin-addr", cpAdmin,
		"--data", dir, "--policy", policyFile, "--parent-pid", parent)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, cp, "http://"+cpAdmin+"/readyz", readyTimeout); err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "mesh", "root.pem")
	sidecar := func(name, service, in, out, admin string) (*child, error) {
		return k.start(name, true, []string{"MARQUEE_JOIN_TOKEN=" + ca.JoinToken(secret, service)}, bin, "sidecar",
			"--service", service, "--version", "v1", "--instance", service+"-1",
			"--inbound", in, "--outbound", out, "--admin-addr", admin, "--app-grpc", appAddr,
			"--control-plane", cpGRPC, "--trust-bundle", root, "--access-log=false", "--parent-pid", parent)
	}
	// The client's sidecar has an inbound too, as it would beside an
	// application that also serves; nothing calls it.
	cli, err := sidecar("sidecar-client", clientService, cliIn, cliOut, cliAdmin)
	if err != nil {
		return nil, err
	}
	srv, err := sidecar("sidecar-server", serverService, srvIn, srvOut, srvAdmin)
	if err != nil {
		return nil, err
	}
	for _, s := range []struct {
		c     *child
		admin string
	}{{cli, cliAdmin}, {srv, srvAdmin}} {
		if err := waitHTTP(ctx, s.c, "http://"+s.admin+"/readyz", readyTimeout); err != nil {
			return nil, err
		}
	}
	return &meshPair{outbound: cliOut, controlPlane: cp, clientSide: cli, serverSide: srv,
		clientAdmin: cliAdmin, serverAdmin: srvAdmin}, nil
}

// freePorts returns n distinct free loopback addresses.
func freePorts(n int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		a, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}
