package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/marquee-tv/marquee/internal/gateway/breaker"
	"github.com/marquee-tv/marquee/internal/gateway/httpproxy"
	"github.com/marquee-tv/marquee/internal/gateway/routes"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// generation is one loaded routing configuration with what it needs: the
// compiled table, the HTTP upstreams it declares and the breakers of its
// upstreams. It is immutable; a reload builds a new one and swaps it in
// atomically, and each request uses the one it started with to its end.
type generation struct {
	table    *routes.Table
	http     map[string]*httpproxy.Upstream
	breakers map[string]*breaker.Breaker
	// grpcUpstreams are the gRPC upstreams the routes use, sorted.
	grpcUpstreams []string
	// authenticates is whether a route may look at credentials.
	authenticates bool
}

// fileStamp identifies a version of the routing file.
type fileStamp struct {
	mod  time.Time
	size int64
	sum  [32]byte
}

// env is what routing documents are validated against.
func (g *Gateway) env() routes.Env {
	return routes.Env{GRPC: g.bindings, Roles: []string{principal.RoleViewer, principal.RoleAdmin}}
}

// readRoutes reads the routing document: the file, the configured bytes or
// the default.
func (g *Gateway) readRoutes() ([]byte, fileStamp, error) {
	if g.cfg.RoutesFile == "" {
		doc := g.cfg.Routes
		if doc == nil {
			doc = routes.Default
		}
		return doc, fileStamp{sum: sha256.Sum256(doc)}, nil
	}
	f, err := os.Open(g.cfg.RoutesFile)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("gateway: routes: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("gateway: routes: %w", err)
	}
	doc, err := io.ReadAll(io.LimitReader(f, routes.MaxDocumentSize+1))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("gateway: routes: %w", err)
	}
	return doc, fileStamp{mod: fi.ModTime(), size: fi.Size(), sum: sha256.Sum256(doc)}, nil
}

// load compiles doc and makes it the routing table in force. On error the
// table in force stays.
func (g *Gateway) load(doc []byte, stamp fileStamp) error {
	t, err := routes.Parse(doc, g.env())
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.gen.Load()
	gen := &generation{table: t, http: map[string]*httpproxy.Upstream{}, breakers: map[string]*breaker.Breaker{}}

	for name, addrs := range t.HTTPUpstreams {
		all := slices.Concat(addrs, g.cfg.HTTPUpstreams[name])
		slices.Sort(all)
		all = slices.Compact(all)
		// Keep the pool of an upstream whose addresses did not change.
		if old != nil {
			if u, ok := old.http[name]; ok && slices.Equal(u.Addrs(), all) {
				gen.http[name] = u
				continue
			}
		}
		if len(all) == 0 {
			g.logger.Warn("routes: HTTP upstream has no address; its routes answer 503", slog.String("upstream", name))
		}
		gen.http[name] = httpproxy.New(name, all)
	}
	used, grpcUsed := map[string]bool{}, map[string]bool{}
	for _, r := range t.Routes {
		if r.Upstream != "" {
			used[r.Upstream] = true
		}
		if r.Kind == routes.KindGRPC && !grpcUsed[r.Upstream] {
			grpcUsed[r.Upstream] = true
			gen.grpcUpstreams = append(gen.grpcUpstreams, r.Upstream)
		}
		if r.Auth != routes.AuthNone {
			gen.authenticates = true
		}
	}
	sort.Strings(gen.grpcUpstreams)
	for name := range used {
		s := breakerSettings(t, name)
		b, ok := g.breakers[name]
		if ok {
			b.SetSettings(s)
		} else {
			b = breaker.New(name, s, g.metrics.breakerChange)
			g.breakers[name] = b
			g.metrics.breakerState.WithLabelValues(name).Set(0)
		}
		gen.breakers[name] = b
	}
	g.gen.Store(gen)
	g.routesAt, g.seenAt = stamp, stamp
	if old != nil {
		for name, u := range old.http {
			if gen.http[name] != u {
				u.Close() // idle connections only; requests in flight finish
			}
		}
	}
	g.metrics.routes.Set(float64(len(t.Routes)))
	return nil
}

func breakerSettings(t *routes.Table, name string) breaker.Settings {
	d, ok := t.Breakers[name]
	if !ok {
		d = t.Breakers["default"]
	}
	return breaker.Settings{
		Failures:    d.Failures,
		ErrorRate:   d.ErrorRate,
		MinRequests: d.MinRequests,
		Window:      time.Duration(d.Window),
		OpenFor:     time.Duration(d.OpenFor),
	}
}

// ErrNoRoutesFile is what Reload returns when the routes come from
// Config.Routes or the default, which cannot change.
var ErrNoRoutesFile = errors.New("gateway: no routes file to reload")

// Reload reads the routing file again and, when it is valid and changed,
// swaps it in; requests in flight finish with the routes they started
// with. A file that is not valid is refused, logged and counted, and the
// routes in force stay.
func (g *Gateway) Reload() error {
	if g.cfg.RoutesFile == "" {
		return ErrNoRoutesFile
	}
	doc, stamp, err := g.readRoutes()
	g.reloadMu.Lock()
	g.seenAt = stamp
	g.reloadMu.Unlock()
	if err == nil {
		g.reloadMu.Lock()
		same := stamp.sum == g.routesAt.sum
		if same {
			g.routesAt = stamp
		}
		g.reloadMu.Unlock()
		if same {
			return nil
		}
		err = g.load(doc, stamp)
	}
	if err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		g.logger.Error("routes: reload refused; keeping the routes in force",
			slog.String("file", g.cfg.RoutesFile), slog.String("error", err.Error()))
		return err
	}
	g.metrics.reloads.WithLabelValues("ok").Inc()
	g.logger.Info("routes: reloaded", slog.String("file", g.cfg.RoutesFile),
		slog.Int("routes", len(g.gen.Load().table.Routes)))
	return nil
}

// changed reports whether the routing file looks different (modification
// time or size) from the one last read, loaded or refused: a bad file is
// reported once, not at every poll.
func (g *Gateway) changed() bool {
	fi, err := os.Stat(g.cfg.RoutesFile)
	if err != nil {
		return false // a missing file is logged when a reload is asked for
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return !fi.ModTime().Equal(g.seenAt.mod) || fi.Size() != g.seenAt.size
}

// Run does the gateway's background work until ctx ends: it reloads the
// routing file when it changes and on SIGHUP, refreshes the signing keys
// periodically, and follows session revocations on NATS when NATSURL is
// set. It returns nil when ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { g.watchRoutes(ctx) })
	wg.Go(func() {
		if err := g.auth.Keys().Load(ctx); err != nil && ctx.Err() == nil {
			g.logger.Warn("signing keys not loaded yet; retrying on demand", slog.String("error", err.Error()))
		}
		g.auth.Keys().Run(ctx, g.cfg.JWKSRefreshInterval)
	})
	if g.cfg.NATSURL != "" {
		wg.Go(func() { g.followRevocations(ctx) })
	} else {
		g.logger.Info("no NATS: revoked sessions' access tokens work until they expire")
	}
	wg.Wait()
	return nil
}

// watchRoutes polls the routing file and listens for SIGHUP.
func (g *Gateway) watchRoutes(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if g.cfg.RoutesFile != "" {
		t := time.NewTicker(g.cfg.RoutesPollInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := g.Reload(); errors.Is(err, ErrNoRoutesFile) {
				g.logger.Info("SIGHUP: no routes file to reload")
			}
		case <-tick:
			if g.changed() {
				g.Reload() // logged
			}
		}
	}
}

// followRevocations connects to NATS and feeds the revocation set, until
// ctx ends.
func (g *Gateway) followRevocations(ctx context.Context) {
	nc, js, err := events.Connect(ctx, g.cfg.NATSURL, "gateway", g.logger)
	if err != nil {
		if ctx.Err() == nil {
			g.logger.Error("revocations: cannot connect to NATS", slog.String("error", err.Error()))
		}
		return
	}
	defer nc.Close()
	if err := g.auth.FollowRevocations(ctx, nc, js, events.StreamName, 10*time.Second); err != nil {
		g.logger.Error("revocations: not followed", slog.String("error", err.Error()))
	}
}
