// Package peers dials other services by name. Application code asks for
// "catalog" and never sees an address: the table of names to addresses is
// configuration (in marquee dev it points at each instance, or at the local
// sidecar when the mesh is on; on Kubernetes a name falls back to the
// cluster DNS name of its Service).
package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// DefaultPort is the gRPC port a service name resolves to through DNS when
// the table does not name it (the port services listen on in Kubernetes).
const DefaultPort = "50051"

var serviceName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Table maps service names to one or more host:port addresses.
type Table map[string][]string

// ParseTable reads "catalog=127.0.0.1:7001,127.0.0.1:7002;profiles=host:7003".
func ParseTable(s string) (Table, error) {
	t := Table{}
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, addrs, ok := strings.Cut(entry, "=")
		if !ok || !serviceName.MatchString(name) {
			return nil, fmt.Errorf("peers: bad entry %q: want name=host:port[,host:port]", entry)
		}
		for _, a := range strings.Split(addrs, ",") {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("peers: %s: bad address %q: %w", name, a, err)
			}
			t[name] = append(t[name], a)
		}
	}
	return t, nil
}

// String formats the table as ParseTable reads it, sorted by name.
func (t Table) String() string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strings.Join(t[n], ",")
	}
	return strings.Join(parts, ";")
}

// Dialer hands out one shared client connection per service name.
type Dialer struct {
	table Table
	via   string // the local mesh sidecar's outbound address, if any
	opts  []grpc.DialOption

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewDialer returns a Dialer over table; opts are added to every dial (the
// defaults are plaintext, OpenTelemetry and round-robin over addresses).
func NewDialer(table Table, opts ...grpc.DialOption) *Dialer {
	return &Dialer{table: table, opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// NewSidecarDialer returns a Dialer that sends every call to the mesh
// sidecar listening at addr, naming the service in :authority; the sidecar
// chooses the instance, secures the connection and applies the policy.
func NewSidecarDialer(addr string, opts ...grpc.DialOption) (*Dialer, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("peers: bad sidecar address %q: %w", addr, err)
	}
	return &Dialer{via: addr, opts: opts, conns: map[string]*grpc.ClientConn{}}, nil
}

// Conn returns the connection to service, creating it on first use. The
// connection is lazy: it connects on the first call and reconnects by itself.
func (d *Dialer) Conn(service string) (*grpc.ClientConn, error) {
	if !serviceName.MatchString(service) {
		return nil, fmt.Errorf("peers: bad service name %q", service)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.conns[service]; ok {
		return c, nil
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		// Peers restart in about a second; reconnect at most a second
		// after the last try instead of grpc's default of up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithChainUnaryInterceptor(forwardUnary),
		grpc.WithChainStreamInterceptor(forwardStream),
	}, d.opts...)
	target := "dns:///" + net.JoinHostPort(service, DefaultPort)
	addrs := d.table[service]
	if d.via != "" {
		addrs = []string{d.via}
	}
	if len(addrs) > 0 {
		r := manual.NewBuilderWithScheme("marquee")
		state := resolver.State{}
		for _, a := range addrs {
			// ServerName becomes the :authority, which a sidecar routes by.
			state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: service})
		}
		r.InitialState(state)
		opts = append(opts, grpc.WithResolvers(r))
		target = "marquee:///" + service
	}
	c, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("peers: dial %s: %w", service, err)
	}
	d.conns[service] = c
	return c, nil
}

// forwardUnary and forwardStream pass the caller and request id of the
// call being served on to the peer (see principal.Forward).
func forwardUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(principal.Forward(ctx), method, req, reply, cc, opts...)
}

func forwardStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(principal.Forward(ctx), desc, cc, method, opts...)
}

// Close closes every connection.
func (d *Dialer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for name, c := range d.conns {
		errs = append(errs, c.Close())
		delete(d.conns, name)
	}
	return errors.Join(errs...)
}
