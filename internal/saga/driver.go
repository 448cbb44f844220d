package saga

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// run is a saga being driven: its row as last written by this engine,
// its definition and the outputs of its succeeded actions.
type run struct {
	row     *sagaRow
	def     definition
	outputs map[int][]byte
}

func (r *run) outputsByName() map[string][]byte {
	m := make(map[string][]byte, len(r.outputs))
	for i, b := range r.outputs {
		m[r.def.info(i).name] = b
	}
	return m
}

var (
	errLeaseLost = errors.New("saga: lease lost while the step ran")
	errTimeout   = errors.New("saga: step attempt timed out")
)

// maxStalls is how many consecutive failed state writes a saga survives
// before the engine tries to park it in needs_attention.
const maxStalls = 8

// drive runs saga j.id from its current position until it finishes, waits
// for a retry, needs attention, or this engine loses it or stops.
func (e *Engine) drive(ctx context.Context, j job) {
	e.metrics.inflight.Inc()
	defer e.metrics.inflight.Dec()
	var r *run
	// The first drive of a saga created here starts from the row Create
	// wrote. Only the one drive active for the saga takes it, so no later
	// drive can start from that (by then stale) row.
	e.mu.Lock()
	f := e.fresh[j.id]
	delete(e.fresh, j.id)
	e.mu.Unlock()
	if f != nil {
		def := e.defs[f.row.definition]
		e.metrics.started.WithLabelValues(f.row.definition).Inc()
		r = &run{row: f.row, def: def, outputs: map[int][]byte{}}
	} else {
		var err error
		r, err = e.claim(ctx, j.id, j.force)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("saga claim failed", "saga", j.id, "err", err)
				e.wait(j.id, 0, e.stallDelay(j.id), false)
			}
			return
		}
		if r == nil {
			return // not due, not ours, or finished
		}
	}
	for {
		info := r.def.info(r.row.step)
		kind := r.row.kind()
		policy := info.retry
		if kind == KindCompensation {
			policy = info.compRetry
		}
		var out []byte
		var err error
		var elapsed time.Duration
		spent := r.row.attempts > policy.MaxAttempts
		if spent {
			// Earlier owners died mid-attempt until the budget ran out.
			err = fmt.Errorf("attempt budget of %d spent by interrupted attempts", policy.MaxAttempts)
		} else {
			var lost bool
			out, elapsed, lost, err = e.invoke(ctx, r, info, kind)
			if ctx.Err() != nil {
				// Stopping: the attempt's outcome is unknown and not
				// recorded; whoever drives the saga next sends it again.
				if !e.abandonOnStop {
					e.release(ctx, r.row.id, r.row.token, true)
				}
				return
			}
			if lost {
				e.metrics.fenced.WithLabelValues(r.row.definition).Inc()
				e.log.Warn("saga lease lost during a step; another owner drives it", "saga", r.row.id, "step", info.name)
				return
			}
		}
		tr := e.next(r, out, err, spent)
		e.metrics.stepSeconds.WithLabelValues(r.row.definition, info.name, string(kind), tr.outcome).Observe(elapsed.Seconds())
		if err := e.commit(ctx, r, tr); err != nil {
			if errors.Is(err, ErrFenced) {
				e.metrics.fenced.WithLabelValues(r.row.definition).Inc()
				e.log.Warn("saga write refused: another owner took the lease", "saga", r.row.id)
				return
			}
			if ctx.Err() != nil {
				return
			}
			e.stalled(ctx, r, err)
			return
		}
		e.mu.Lock()
		delete(e.stalls, r.row.id)
		e.mu.Unlock()
		r.row = tr.row
		if tr.finished {
			r.def.afterFinish(r.row.id, r.row.state, r.row.reason, r.row.data, r.outputsByName())
		}
		if tr.finished || r.row.state == StateNeedsAttention {
			e.metrics.finished(r.row.definition, r.row.state)
			args := []any{"saga", r.row.id, "definition", r.row.definition, "state", string(r.row.state), "reason", r.row.reason}
			switch r.row.state {
			case StateNeedsAttention:
				e.log.Warn("saga needs attention", append(args, "last_error", r.row.lastError)...)
			case StateCompleted:
				e.log.Debug("saga finished", args...)
			default:
				e.log.Info("saga finished", args...)
			}
			return
		}
		if tr.wait > 0 {
			e.wait(r.row.id, r.row.token, tr.wait, false)
			return
		}
	}
}

// stalled handles a state write that failed (database trouble, or the
// definition's OnFinish refused): the step's result is not recorded, so
// the saga is driven again later and the step re-sent (participants answer
// the original result). After maxStalls in a row, the saga is parked in
// needs_attention with the error.
func (e *Engine) stalled(ctx context.Context, r *run, cause error) {
	e.mu.Lock()
	e.stalls[r.row.id]++
	n := e.stalls[r.row.id]
	e.mu.Unlock()
	e.log.Warn("saga state write failed; will retry", "saga", r.row.id, "stalls", n, "err", cause)
	if n >= maxStalls {
		now := ts(time.Now())
		msg := "cannot record progress: " + cause.Error()
		err := e.inTx(ctx, func(tx *storage.Tx) error {
			res, err := tx.Exec(ctx, `UPDATE marquee_saga SET state = 'needs_attention', paused_state = state, owner = '',
	lease_until = $1, last_error = $2, updated_at = $1 WHERE id = $3 AND owner = $4 AND fencing_token = $5`,
				now, truncate(msg, 2000), r.row.id, e.opts.Owner, r.row.token)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return ErrFenced
			}
			return insertLog(ctx, tx, r.row.id, now, logEntry{event: eventNeedsAttention, index: r.row.step, kind: r.row.kind(), attempt: r.row.attempts, message: msg})
		})
		if err == nil {
			e.mu.Lock()
			delete(e.stalls, r.row.id)
			e.mu.Unlock()
			e.metrics.finished(r.row.definition, StateNeedsAttention)
			e.log.Error("saga needs attention: its progress cannot be recorded", "saga", r.row.id, "err", cause)
			return
		}
		if errors.Is(err, ErrFenced) {
			return
		}
	}
	e.wait(r.row.id, r.row.token, e.stallDelay(r.row.id), true)
}

func (e *Engine) stallDelay(id string) time.Duration {
	e.mu.Lock()
	n := e.stalls[id]
	e.mu.Unlock()
	return RetryPolicy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}.Backoff(n + 1)
}

// claim takes saga id if it is runnable by this engine (see poll) and
// records the start of a new attempt of its current step, in one
// transaction. Taking it from another owner increments the fencing token.
// It returns nil when the saga is not runnable here.
func (e *Engine) claim(ctx context.Context, id string, force bool) (*run, error) {
	var r *run
	err := e.inTx(ctx, func(tx *storage.Tx) error {
		r = nil
		now := ts(time.Now())
		due := `next_run_at <= $5`
		if force {
			due = `owner = $2`
		}
		// The row's own timeout is not known before reading it: hold the
		// saga out of the poll for a lease, which is renewed while driving.
		res, err := tx.Exec(ctx, `UPDATE marquee_saga SET
	fencing_token = fencing_token + CASE WHEN owner = $2 THEN 0 ELSE 1 END,
	owner = $2, lease_until = $3, next_run_at = $4, attempts = attempts + 1, updated_at = $5
WHERE id = $1 AND state IN ('running', 'compensating')
  AND (lease_until < $5 OR ((owner = $2 OR owner = '') AND `+due+`))`,
			id, e.opts.Owner, now.Add(e.opts.Lease), now.Add(e.opts.Lease), now)
		if err != nil {
			return fmt.Errorf("saga: claim %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		row, err := loadSaga(ctx, tx, id)
		if err != nil {
			return err
		}
		def, ok := e.defs[row.definition]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownDefinition, row.definition)
		}
		if row.step < 0 || row.step >= def.len() {
			return fmt.Errorf("saga: %s is at step %d of %d", id, row.step, def.len())
		}
		outputs, err := loadOutputs(ctx, tx, id)
		if err != nil {
			return err
		}
		r = &run{row: row, def: def, outputs: outputs}
		return nil
	})
	return r, err
}

// invoke runs one attempt of the current step under its timeout, in a
// span, renewing the lease meanwhile. lost reports that the lease was
// lost (the attempt was cancelled and must not be recorded).
func (e *Engine) invoke(ctx context.Context, r *run, info stepInfo, kind Kind) (out []byte, elapsed time.Duration, lost bool, err error) {
	name := info.name
	if kind == KindCompensation {
		name = info.compName
	}
	ctx, span := e.tracer.Start(ctx, "saga "+r.row.definition+"."+name, trace.WithAttributes(
		attribute.String("saga.id", r.row.id),
		attribute.String("saga.definition", r.row.definition),
		attribute.String("saga.step", info.name),
		attribute.String("saga.kind", string(kind)),
		attribute.Int("saga.attempt", r.row.attempts),
		attribute.Int64("saga.fencing_token", r.row.token),
	))
	defer span.End()

	lctx, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		e.renew(lctx, r.row.id, r.row.token, stop, lose)
	}()
	cctx, cancel := context.WithTimeoutCause(lctx, info.timeout, errTimeout)
	start := time.Now()
	out, err = safeCall(cctx, r, kind)
	elapsed = time.Since(start)
	if err != nil && errors.Is(context.Cause(cctx), errTimeout) {
		err = fmt.Errorf("%w after %s: %w", errTimeout, info.timeout, err)
	}
	cancel()
	close(stop)
	<-renewed
	lost = errors.Is(context.Cause(lctx), errLeaseLost)
	switch {
	case lost:
		span.SetStatus(otelcodes.Error, "lease lost")
	case err != nil:
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
	}
	return out, elapsed, lost, err
}

// safeCall runs the step, turning a panic into a transient error (a bug
// in a step must not take the engine down; the saga retries, then
// compensates or stops in needs_attention).
func safeCall(ctx context.Context, r *run, kind Kind) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("saga: step panicked: %v", p)
		}
	}()
	return r.def.call(ctx, r.row.step, kind, r.row.id, r.row.attempts, r.row.reason, r.row.data, r.outputsByName())
}

// renew extends the lease of saga id every Lease/3 until stop closes; if
// another owner took it, it cancels the attempt with errLeaseLost.
func (e *Engine) renew(ctx context.Context, id string, token int64, stop <-chan struct{}, lose context.CancelCauseFunc) {
	t := time.NewTicker(e.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := ts(time.Now())
		res, err := e.db.Exec(ctx, `UPDATE marquee_saga SET lease_until = $1, next_run_at = $1
WHERE id = $2 AND owner = $3 AND fencing_token = $4`, now.Add(e.opts.Lease), id, e.opts.Owner, token)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("saga lease renewal failed", "saga", id, "err", err)
			}
			continue
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			lose(errLeaseLost)
			return
		}
	}
}

// transition is the write that records the outcome of one attempt: the
// new saga row (whose position is the next step to run, if any), the row
// of the step when it ended, and an optional log entry.
type transition struct {
	row      *sagaRow
	step     *stepWrite
	log      *logEntry
	finished bool
	wait     time.Duration
	outcome  string // for metrics: succeeded, refused, retry, failed
}

// next computes the transition after an attempt of the current step that
// returned out, err. spent means the attempt budget ran out before it.
func (e *Engine) next(r *run, out []byte, err error, spent bool) transition {
	now := ts(time.Now())
	old := r.row
	row := *old
	row.updatedAt = now
	row.lastError = ""
	info := r.def.info(old.step)
	kind := old.kind()
	name, policy := info.name, info.retry
	if kind == KindCompensation {
		name, policy = info.compName, info.compRetry
	}
	tr := transition{row: &row, step: &stepWrite{index: old.step, kind: kind, name: name, attempts: old.attempts, startedAt: old.stepStartedAt, finishedAt: now}}
	failure, isFailure := AsFailure(err)
	if err != nil {
		tr.step.err = truncate(err.Error(), 2000)
		tr.log = &logEntry{event: eventAttemptFailed, index: old.step, kind: kind, attempt: old.attempts,
			code: errorCode(err), message: err.Error(), retryable: !isFailure && !spent}
		row.lastError = truncate(fmt.Sprintf("%s attempt %d: %v", name, old.attempts, err), 2000)
	}
	// begin moves the saga to the action (or compensation) at step i.
	begin := func(st State, i int) {
		row.state, row.step, row.attempts, row.stepStartedAt = st, i, 1, now
		row.nextRunAt = now.Add(e.opts.Lease)
		row.leaseUntil = now.Add(e.opts.Lease)
	}
	end := func(st State, reason string) {
		row.state, row.reason = st, reason
		row.owner, row.leaseUntil, row.nextRunAt = "", now, now
		row.finishedAt.Time, row.finishedAt.Valid = now, true
		tr.finished = true
	}
	attention := func() {
		row.paused = old.state
		row.state = StateNeedsAttention
		row.owner, row.leaseUntil, row.nextRunAt = "", now, now
	}
	retry := func() {
		d := policy.Backoff(old.attempts)
		tr.step = nil // still the saga's position: no row until it ends
		row.nextRunAt = now.Add(d)
		row.leaseUntil = row.nextRunAt.Add(e.opts.Lease)
		tr.wait = d
		tr.outcome = "retry"
	}
	// compensateFrom starts the compensations at or below step i, or ends
	// the saga in st when none has a compensation.
	compensateFrom := func(i int, st State, reason string) {
		row.reason = reason
		if j := r.def.prevCompensable(i); j >= 0 {
			begin(StateCompensating, j)
			return
		}
		end(st, reason)
	}

	switch {
	case kind == KindAction && err == nil:
		tr.step.state, tr.step.output, tr.outcome = StepSucceeded, out, "succeeded"
		r.outputs[old.step] = out
		if old.step+1 < r.def.len() {
			begin(StateRunning, old.step+1)
		} else {
			end(StateCompleted, "")
		}
	case kind == KindAction && isFailure:
		tr.step.state, tr.outcome = StepRefused, "refused"
		if info.class == Retriable {
			attention()
			break
		}
		// A refusal has no effect: undo the steps before it.
		compensateFrom(old.step-1, StateRejected, failure.Reason)
	case kind == KindAction && !spent && old.attempts < policy.MaxAttempts:
		retry()
	case kind == KindAction:
		tr.step.state, tr.outcome = StepFailed, "failed"
		if info.class == Retriable {
			attention()
			break
		}
		// The step may have taken effect: undo it too.
		compensateFrom(old.step, StateCompensated, info.exhausted)
	case err == nil: // compensation succeeded
		tr.step.state, tr.step.output, tr.outcome = StepSucceeded, out, "succeeded"
		if j := r.def.prevCompensable(old.step - 1); j >= 0 {
			begin(StateCompensating, j)
		} else {
			end(StateCompensated, old.reason)
		}
	case !isFailure && !spent && old.attempts < policy.MaxAttempts:
		retry()
	default: // compensation failed for good or ran out of attempts
		tr.step.state, tr.outcome = StepFailed, "failed"
		attention()
	}
	if row.state == StateNeedsAttention && tr.log != nil {
		tr.log.event = eventNeedsAttention
	}
	return tr
}

// prevCompensable returns the highest step index ≤ i with a
// compensation, or -1.
func (d erased[D]) prevCompensable(i int) int {
	for ; i >= 0; i-- {
		if d.d.steps[i].Compensation != nil {
			return i
		}
	}
	return -1
}

// commit writes tr, conditional on still holding the lease: a stale
// owner's write is refused with ErrFenced and changes nothing.
func (e *Engine) commit(ctx context.Context, r *run, tr transition) error {
	return e.inTx(ctx, func(tx *storage.Tx) error {
		row := tr.row
		res, err := tx.Exec(ctx, `UPDATE marquee_saga SET state = $1, paused_state = $2, step = $3, attempts = $4,
	reason = $5, last_error = $6, owner = $7, lease_until = $8, next_run_at = $9, updated_at = $10, finished_at = $11,
	step_started_at = $15
WHERE id = $12 AND owner = $13 AND fencing_token = $14`,
			string(row.state), string(row.paused), row.step, row.attempts, row.reason, row.lastError, row.owner,
			row.leaseUntil, row.nextRunAt, row.updatedAt, nullTime(row.finishedAt.Time), row.id, e.opts.Owner, r.row.token,
			row.stepStartedAt)
		if err != nil {
			return fmt.Errorf("saga: write %s: %w", row.id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("saga: write %s: %w", row.id, err)
		}
		if n == 0 {
			return ErrFenced
		}
		if tr.step != nil {
			if err := upsertStep(ctx, tx, row.id, *tr.step); err != nil {
				return err
			}
		}
		if tr.log != nil {
			if err := insertLog(ctx, tx, row.id, row.updatedAt, *tr.log); err != nil {
				return err
			}
		}
		if tr.finished {
			if err := r.def.finish(ctx, tx, row.id, row.state, row.reason, row.data, r.outputsByName()); err != nil {
				return fmt.Errorf("saga: finish %s: %w", row.id, err)
			}
		}
		return nil
	})
}

// errorCode names the error of an attempt: the gRPC status code in
// upper snake case (UNAVAILABLE, DEADLINE_EXCEEDED), REFUSED for a
// business failure without one.
func errorCode(err error) string {
	if errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return "DEADLINE_EXCEEDED"
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown && s.Code() != codes.OK {
		return upperSnake(s.Code().String())
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if c := se.GRPCStatus().Code(); c != codes.Unknown && c != codes.OK {
			return upperSnake(c.String())
		}
	}
	if _, ok := AsFailure(err); ok {
		return "REFUSED"
	}
	return "UNKNOWN"
}

func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
