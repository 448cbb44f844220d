package saga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Options configures an Engine. Zero fields take the defaults shown.
type Options struct {
	// Owner names this engine in leases; default hostname-random, unique
	// per process.
	Owner string
	// Concurrency is how many sagas are driven at once (default 32).
	Concurrency int
	// Lease is how long an owner holds a saga without renewing it
	// (default 30s). It is renewed every Lease/3 while a step runs; a saga
	// whose owner died is taken over once its lease expires.
	Lease time.Duration
	// PollInterval is how often the database is scanned for runnable
	// sagas: new ones not notified, due for retry, or with an expired
	// lease (default 1s).
	PollInterval time.Duration
	// PollBatch bounds the sagas taken per scan (default 256).
	PollBatch int
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// TracerProvider makes the spans of step invocations; default the
	// global provider.
	TracerProvider trace.TracerProvider
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Engine drives the sagas of the definitions registered with it, stored
// in one database. Create and Notify may be called before Run; Run drives
// the sagas until its context ends.
type Engine struct {
	db      *storage.DB
	opts    Options
	defs    map[string]definition
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer
	queue   chan job

	mu      sync.Mutex
	active  map[string]*activity // queued or being driven here
	fresh   map[string]*fresh    // created here, not yet picked up
	waiting map[string]*waiter   // waiting here to retry
	stalls  map[string]int       // consecutive failed state writes
	warned  map[string]bool      // unknown definitions already logged
	running bool

	// sqliteWrites serialises this engine's write transactions on SQLite,
	// which allows one writer at a time: waiting here is cheaper than
	// SQLite's busy-wait between many goroutines.
	sqliteWrites sync.Mutex

	// abandonOnStop makes a stopping engine keep its leases, as a crashed
	// process would (tests).
	abandonOnStop bool
}

// job asks a worker to drive one saga.
type job struct {
	id    string
	force bool // drive even if not due (after a failed state write)
}

type activity struct{ again bool }

type fresh struct {
	row *sagaRow
	at  time.Time
}

type waiter struct {
	timer *time.Timer
	token int64
}

// New returns an engine over db (already migrated with Migrate) that
// drives sagas of defs.
func New(db *storage.DB, opts Options, defs ...Definer) (*Engine, error) {
	if opts.Owner == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "engine"
		}
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Owner = host + "-" + hex.EncodeToString(b)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.PollBatch <= 0 {
		opts.PollBatch = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = otel.GetTracerProvider()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("saga: metrics: %w", err)
	}
	e := &Engine{
		db: db, opts: opts, defs: map[string]definition{},
		log:     opts.Logger.With("component", "saga", "owner", opts.Owner),
		metrics: m,
		tracer:  opts.TracerProvider.Tracer("github.com/marquee-tv/marquee/internal/saga"),
		queue:   make(chan job, 64*opts.Concurrency),
		active:  map[string]*activity{}, fresh: map[string]*fresh{}, waiting: map[string]*waiter{},
		stalls: map[string]int{}, warned: map[string]bool{},
	}
	for _, d := range defs {
		def := d.def()
		if _, dup := e.defs[def.name()]; dup {
			return nil, fmt.Errorf("saga: definition %s registered twice", def.name())
		}
		e.defs[def.name()] = def
	}
	return e, nil
}

// inTx runs fn in a transaction of the engine's database.
func (e *Engine) inTx(ctx context.Context, fn func(tx *storage.Tx) error) error {
	if e.db.Dialect() == storage.SQLite {
		e.sqliteWrites.Lock()
		defer e.sqliteWrites.Unlock()
	}
	return e.db.InTx(ctx, fn)
}

// Owner returns the name this engine holds leases under.
func (e *Engine) Owner() string { return e.opts.Owner }

var idRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ErrExists is returned by Create when a saga with that id exists.
var ErrExists = errors.New("saga: already exists")

// Create records a new saga of def with data inside the caller's
// transaction tx, so that the owning service's own writes and the saga
// commit or roll back together. data must be def's data type D (or *D).
// The creating engine holds the saga's lease and has recorded the first
// attempt of the first step: call Notify(id) once tx has committed and
// this engine starts the saga at once. (Without Notify, this engine's
// poller finds it within PollInterval.)
func (e *Engine) Create(ctx context.Context, tx *storage.Tx, def Definer, id string, data any) error {
	d, ok := e.defs[def.Name()]
	if !ok {
		return fmt.Errorf("%w: %s is not registered with this engine", ErrUnknownDefinition, def.Name())
	}
	if !idRE.MatchString(id) {
		return fmt.Errorf("saga: bad id %q (want 1-128 of A-Z a-z 0-9 . _ : -)", id)
	}
	raw, err := d.encode(data)
	if err != nil {
		return err
	}
	now := ts(time.Now())
	r := &sagaRow{
		id: id, definition: d.name(), state: StateRunning, data: raw, step: 0, attempts: 1, stepStartedAt: now,
		owner: e.opts.Owner, leaseUntil: now.Add(e.opts.Lease), token: 1, nextRunAt: now,
		createdAt: now, updatedAt: now,
	}
	_, err = tx.Exec(ctx, `INSERT INTO marquee_saga (`+sagaColumns+`)
VALUES ($1, $2, $3, '', $4, 0, 1, $7, '', '', $5, $6, 1, $7, $7, $7, NULL)`,
		id, d.name(), string(StateRunning), raw, e.opts.Owner, r.leaseUntil, now)
	if storage.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %s", ErrExists, id)
	}
	if err != nil {
		return fmt.Errorf("saga: create %s: %w", id, err)
	}
	e.mu.Lock()
	e.fresh[id] = &fresh{row: r, at: now}
	e.mu.Unlock()
	return nil
}

// Notify tells the engine that saga id is runnable: call it after the
// transaction that created it (or changed it) committed. A saga this
// engine created starts at once without another write.
func (e *Engine) Notify(id string) {
	e.enqueue(job{id: id}, true)
}

// enqueue queues j unless the saga is already queued or being driven
// here; again marks such a saga to be driven once more when its current
// drive ends (something changed meanwhile). It reports whether j was
// queued.
func (e *Engine) enqueue(j job, again bool) bool {
	e.mu.Lock()
	if a, ok := e.active[j.id]; ok {
		if again {
			a.again = true
		}
		e.mu.Unlock()
		return false
	}
	e.active[j.id] = &activity{}
	e.mu.Unlock()
	select {
	case e.queue <- j:
		return true
	default:
		// Full: the poller picks it up later.
		e.mu.Lock()
		delete(e.active, j.id)
		e.mu.Unlock()
		return false
	}
}

// done ends the drive of id, queueing it again if asked meanwhile.
func (e *Engine) done(id string) {
	e.mu.Lock()
	a := e.active[id]
	delete(e.active, id)
	e.mu.Unlock()
	if a != nil && a.again {
		e.enqueue(job{id: id}, false)
	}
}

// Run drives sagas until ctx ends: Concurrency workers, fed by Notify,
// retry timers and a poller that resumes every unfinished saga it may
// own (at once on start, then every PollInterval). On return, the sagas
// this engine was driving or waiting on have their leases released so
// that another engine resumes them without waiting for expiry.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("saga: engine already running")
	}
	e.running = true
	e.mu.Unlock()

	var wg sync.WaitGroup
	for range e.opts.Concurrency {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-e.queue:
					e.drive(ctx, j)
					e.done(j.id)
				}
			}
		})
	}
	e.log.Info("saga engine running", "concurrency", e.opts.Concurrency, "lease", e.opts.Lease.String())
	t := time.NewTicker(e.opts.PollInterval)
	defer t.Stop()
	for {
		if err := e.poll(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("saga poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			e.stopWaiting()
			e.mu.Lock()
			e.running = false
			e.mu.Unlock()
			return nil
		case <-t.C:
		}
	}
}

// poll queues the runnable sagas this engine may drive: those it owns or
// nobody owns that are due, and those whose owner's lease expired.
func (e *Engine) poll(ctx context.Context) error {
	now := ts(time.Now())
	e.pruneFresh(now)
	rows, err := e.db.Query(ctx, `SELECT id, definition FROM marquee_saga
WHERE state IN ('running', 'compensating')
  AND (lease_until < $1 OR ((owner = $2 OR owner = '') AND next_run_at <= $1))
ORDER BY next_run_at LIMIT $3`, now, e.opts.Owner, e.opts.PollBatch)
	if err != nil {
		return err
	}
	type cand struct{ id, def string }
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.def); err != nil {
			rows.Close()
			return err
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range cands {
		if _, ok := e.defs[c.def]; !ok {
			e.mu.Lock()
			if !e.warned[c.id] {
				e.warned[c.id] = true
				e.log.Warn("saga of an unknown definition left to other engines", "saga", c.id, "definition", c.def)
			}
			e.mu.Unlock()
			continue
		}
		e.enqueue(job{id: c.id}, false)
	}
	return nil
}

// pruneFresh forgets sagas created here whose transaction never
// committed (or whose Notify never came: the poller claims those).
func (e *Engine) pruneFresh(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, f := range e.fresh {
		if now.Sub(f.at) > time.Minute {
			delete(e.fresh, id)
		}
	}
}

// wait schedules saga id to be driven again after d.
func (e *Engine) wait(id string, token int64, d time.Duration, force bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w, ok := e.waiting[id]; ok {
		w.timer.Stop()
	}
	w := &waiter{token: token}
	w.timer = time.AfterFunc(d, func() {
		e.mu.Lock()
		if e.waiting[id] == w {
			delete(e.waiting, id)
		}
		e.mu.Unlock()
		e.enqueue(job{id: id, force: force}, true)
	})
	e.waiting[id] = w
}

// stopWaiting cancels the retry timers and releases those sagas' leases.
func (e *Engine) stopWaiting() {
	e.mu.Lock()
	ws := e.waiting
	e.waiting = map[string]*waiter{}
	e.mu.Unlock()
	for id, w := range ws {
		w.timer.Stop()
		if !e.abandonOnStop {
			e.release(context.Background(), id, w.token, false)
		}
	}
}

// release gives up the lease of saga id held with token; immediate makes
// it due at once (its attempt was cut short).
func (e *Engine) release(ctx context.Context, id string, token int64, immediate bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := ts(time.Now())
	q := `UPDATE marquee_saga SET owner = '', lease_until = $1, updated_at = $1 WHERE id = $2 AND owner = $3 AND fencing_token = $4`
	if immediate {
		q = `UPDATE marquee_saga SET owner = '', lease_until = $1, next_run_at = $1, updated_at = $1 WHERE id = $2 AND owner = $3 AND fencing_token = $4`
	}
	if _, err := e.db.Exec(ctx, q, now, id, e.opts.Owner, token); err != nil {
		e.log.Warn("saga lease release failed; it expires by itself", "saga", id, "err", err)
	}
}
