//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/mesh/ca"
)

// haproxyPair is the peer: two HAProxy processes set up as a sidecar pair.
// The application sends h2c to the client side, which forwards over mTLS
// (HTTP/2) to the server side, which forwards h2c to the application.
type haproxyPair struct {
	addr                   string
	version                string
	clientSide, serverSide *child
}

// The two configurations, alike but for the TLS end. Each process has one
// thread (nbthread 1), no logging and no health checks; upstream
// connections are kept and shared between requests (http-reuse always),
// as the sidecars keep theirs. Certificates are mesh workload certificates
// from a CA like the control plane's (ECDSA P-256, TLS 1.3 only, client
// certificates required and verified against the mesh root); HAProxy does
// not check the SPIFFE ID in them, the sidecars do.
const haproxyCommon = `global
	nbthread 1
	maxconn 4096

defaults
	mode http
	timeout connect 5s
	timeout client 10m
	timeout server 10m
	timeout http-keep-alive 10m
	http-reuse always
`

const haproxyClientConf = haproxyCommon + `
frontend outbound
	bind %[1]s proto h2
	default_backend mesh

backend mesh
	server server-side %[2]s ssl verify required ca-file %[3]s crt %[4]s alpn h2 ssl-min-ver TLSv1.3
`

const haproxyServerConf = haproxyCommon + `
frontend inbound
	bind %[1]s ssl crt %[2]s ca-file %[3]s verify required alpn h2 ssl-min-ver TLSv1.3
	default_backend app

backend app
	server app %[4]s proto h2
`

// startHAProxy writes certificates and configurations and starts the two
// HAProxy processes, pinned like the sidecars.
func startHAProxy(ctx context.Context, k *children, bin, appAddr string) (*haproxyPair, error) {
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -v: %w", bin, err)
	}
	version, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")

	dir := filepath.Join(k.dir, "haproxy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	auth, err := ca.NewInMemory()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, auth.RootPEM(), 0o644); err != nil {
		return nil, err
	}
	certs := map[string]string{}
	for _, svc := range []string{clientService, serverService} {
		now := time.Now()
		c, err := auth.Issue(svc, now.Add(-time.Minute), now.Add(24*time.Hour))
		if err != nil {
			return nil, err
		}
		key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
		pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: key})
		certs[svc] = filepath.Join(dir, svc+".pem")
		if err := os.WriteFile(certs[svc], b.Bytes(), 0o600); err != nil {
			return nil, err
		}
	}
	addrs, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	clientAddr, serverAddr := addrs[0], addrs[1]
	confs := []struct{ name, text string }{
		{"haproxy-server", fmt.Sprintf(haproxyServerConf, serverAddr, certs[serverService], root, appAddr)},
		{"haproxy-client", fmt.Sprintf(haproxyClientConf, clientAddr, serverAddr, root, certs[clientService])},
	}
	var started []*child
	for _, c := range confs {
		file := filepath.Join(dir, c.name+".cfg")
		if err := os.WriteFile(file, []byte(c.text), 0o644); err != nil {
			return nil, err
		}
		if out, err := exec.Command(bin, "-c", "-q", "-f", file).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", file, err, out)
		}
		// -db: stay in the foreground.
		ch, err := k.start(c.name, true, nil, bin, "-db", "-f", file)
		if err != nil {
			return nil, err
		}
		started = append(started, ch)
	}
	for i, a := range []string{serverAddr, clientAddr} {
		if err := waitTCP(ctx, started[i], a, readyTimeout); err != nil {
			return nil, err
		}
	}
	return &haproxyPair{addr: clientAddr, version: version, serverSide: started[0], clientSide: started[1]}, nil
}
