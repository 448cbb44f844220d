package saga

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Saga is what operators see of a saga.
type Saga struct {
	ID         string
	Definition string
	State      State
	// PausedState is where Retry resumes a saga in needs_attention
	// (running or compensating).
	PausedState State
	// Data is the saga's data as JSON.
	Data json.RawMessage
	// Step is the index of the current step; StepName its name.
	Step     int
	StepName string
	// Attempts of the current action or compensation.
	Attempts int
	// Reason explains a rejected or compensated saga.
	Reason string
	// LastError is the error that stopped or is delaying the saga.
	LastError    string
	Owner        string
	LeaseUntil   time.Time
	FencingToken int64
	NextRunAt    time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// FinishedAt is zero until the saga completed, was rejected or
	// compensated.
	FinishedAt time.Time
	// Steps and Log are filled by Get only.
	Steps []StepRecord
	Log   []LogEntry
}

// StepRecord is one action or compensation of a saga, in the order they
// run: the actions, then the compensations that ran (last action first).
type StepRecord struct {
	Index int
	Name  string
	Kind  Kind
	// Compensates names the action a compensation undoes.
	Compensates    string
	Participant    string
	Method         string
	IdempotencyKey string
	State          StepState
	Attempts       int
	Output         []byte
	// Error is the last attempt's error.
	Error         string
	Errors        []AttemptError
	StartedAt     time.Time
	FinishedAt    time.Time
	NextAttemptAt time.Time
}

// AttemptError is the error of one failed attempt.
type AttemptError struct {
	Attempt   int
	Code      string
	Message   string
	Retryable bool
	At        time.Time
}

// LogEntry is one line of a saga's audit log: a failed attempt, a stop in
// needs_attention, or an operator's action (with who and why).
type LogEntry struct {
	At        time.Time
	Event     string
	Step      string
	Kind      Kind
	Attempt   int
	Code      string
	Message   string
	Retryable bool
	Actor     string
}

func (e *Engine) view(r *sagaRow) Saga {
	s := Saga{
		ID: r.id, Definition: r.definition, State: r.state, PausedState: r.paused, Data: json.RawMessage(r.data),
		Step: r.step, Attempts: r.attempts, Reason: r.reason, LastError: r.lastError, Owner: r.owner,
		LeaseUntil: r.leaseUntil, FencingToken: r.token, NextRunAt: r.nextRunAt,
		CreatedAt: r.createdAt, UpdatedAt: r.updatedAt,
	}
	if r.finishedAt.Valid {
		s.FinishedAt = r.finishedAt.Time
	}
	if d, ok := e.defs[r.definition]; ok && r.step >= 0 && r.step < d.len() {
		s.StepName = d.info(r.step).name
	}
	return s
}

// Get returns saga id with its steps and log.
func (e *Engine) Get(ctx context.Context, id string) (Saga, error) {
	r, err := loadSaga(ctx, e.db, id)
	if err != nil {
		return Saga{}, err
	}
	s := e.view(r)
	logs, err := e.loadLog(ctx, r)
	if err != nil {
		return Saga{}, err
	}
	s.Log = logs
	steps, err := e.loadSteps(ctx, r, logs)
	if err != nil {
		return Saga{}, err
	}
	s.Steps = steps
	return s, nil
}

func (e *Engine) loadLog(ctx context.Context, r *sagaRow) ([]LogEntry, error) {
	id := r.id
	rows, err := e.db.Query(ctx, `SELECT at, event, step_index, kind, attempt, code, message, retryable, actor
FROM marquee_saga_log WHERE saga_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("saga: log of %s: %w", id, err)
	}
	defer rows.Close()
	def := e.defs[r.definition]
	var out []LogEntry
	for rows.Next() {
		var l LogEntry
		var idx, retryable int
		var kind string
		if err := rows.Scan(&l.At, &l.Event, &idx, &kind, &l.Attempt, &l.Code, &l.Message, &retryable, &l.Actor); err != nil {
			return nil, fmt.Errorf("saga: log of %s: %w", id, err)
		}
		l.At, l.Kind, l.Retryable = l.At.UTC(), Kind(kind), retryable != 0
		if def != nil && idx >= 0 && idx < def.len() {
			l.Step = def.info(idx).name
			if l.Kind == KindCompensation {
				l.Step = def.info(idx).compName
			}
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func (e *Engine) loadSteps(ctx context.Context, r *sagaRow, logs []LogEntry) ([]StepRecord, error) {
	rows, err := e.db.Query(ctx, `SELECT step_index, kind, name, state, attempts, output, error, started_at, finished_at, next_attempt_at
FROM marquee_saga_step WHERE saga_id = $1`, r.id)
	if err != nil {
		return nil, fmt.Errorf("saga: steps of %s: %w", r.id, err)
	}
	defer rows.Close()
	type key struct {
		i int
		k Kind
	}
	got := map[key]StepRecord{}
	for rows.Next() {
		var s StepRecord
		var kind, state string
		var finished, next sql.NullTime
		if err := rows.Scan(&s.Index, &kind, &s.Name, &state, &s.Attempts, &s.Output, &s.Error, &s.StartedAt, &finished, &next); err != nil {
			return nil, fmt.Errorf("saga: steps of %s: %w", r.id, err)
		}
		s.Kind, s.State, s.StartedAt = Kind(kind), StepState(state), s.StartedAt.UTC()
		if finished.Valid {
			s.FinishedAt = finished.Time.UTC()
		}
		if next.Valid {
			s.NextAttemptAt = next.Time.UTC()
		}
		got[key{s.Index, s.Kind}] = s
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if r.state == StateRunning || r.state == StateCompensating {
		// The step in progress is described by the saga row.
		s := got[key{r.step, r.kind()}]
		s.Index, s.Kind, s.State, s.Attempts, s.StartedAt = r.step, r.kind(), StepRunning, r.attempts, r.stepStartedAt
		s.Output, s.Error, s.FinishedAt, s.NextAttemptAt = nil, "", time.Time{}, time.Time{}
		if r.owner != "" && r.nextRunAt.Before(r.leaseUntil) {
			// Waiting to retry: the lease runs past the next attempt
			// (while an attempt is in flight both move together).
			s.NextAttemptAt = r.nextRunAt
		}
		got[key{r.step, r.kind()}] = s
	}
	def, known := e.defs[r.definition]
	n := 0
	for k := range got {
		n = max(n, k.i+1)
	}
	if known {
		n = def.len()
	}
	fill := func(s *StepRecord, i int, k Kind) {
		name := ""
		if known {
			in := def.info(i)
			s.Participant, s.Method, name = in.participant, in.method, in.name
			if k == KindCompensation {
				s.Method, s.Compensates = in.compMethod, in.name
				if s.Name == "" {
					s.Name = in.compName
				}
			} else if s.Name == "" {
				s.Name = in.name
			}
		}
		if name == "" {
			name = s.Name
		}
		s.IdempotencyKey = IdempotencyKey(r.id, name, k)
		for _, l := range logs {
			if l.Event != eventOperatorRetry && l.Event != eventOperatorCompensate && l.Kind == k && l.Step == s.Name && l.Code+l.Message != "" {
				s.Errors = append(s.Errors, AttemptError{Attempt: l.Attempt, Code: l.Code, Message: l.Message, Retryable: l.Retryable, At: l.At})
			}
		}
		if len(s.Errors) > 10 {
			s.Errors = s.Errors[len(s.Errors)-10:]
		}
	}
	var out []StepRecord
	for i := 0; i < n; i++ {
		s, ok := got[key{i, KindAction}]
		if !ok {
			s = StepRecord{Index: i, Kind: KindAction, State: StepPending}
			if r.state.Terminal() {
				s.State = StepSkipped
			}
		}
		fill(&s, i, KindAction)
		out = append(out, s)
	}
	for i := n - 1; i >= 0; i-- {
		if s, ok := got[key{i, KindCompensation}]; ok {
			fill(&s, i, KindCompensation)
			out = append(out, s)
		}
	}
	return out, nil
}

// ListOptions filters and pages List.
type ListOptions struct {
	// State keeps sagas in that state; empty keeps all.
	State State
	// Limit is the page size (1..1000; default 20).
	Limit int
	// PageToken continues a previous page.
	PageToken string
}

// ErrBadPageToken is returned by List for a token it did not make.
var ErrBadPageToken = errors.New("saga: bad page token")

// List returns sagas newest first, without their steps, and the token of
// the next page ("" on the last).
func (e *Engine) List(ctx context.Context, o ListOptions) ([]Saga, string, error) {
	if o.Limit <= 0 {
		o.Limit = 20
	}
	o.Limit = min(o.Limit, 1000)
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if o.State != "" {
		where = append(where, "state = "+arg(string(o.State)))
	}
	if o.PageToken != "" {
		at, id, err := DecodePageToken(o.PageToken)
		if err != nil {
			return nil, "", err
		}
		a, i := arg(at), arg(id)
		where = append(where, "(created_at < "+a+" OR (created_at = "+a+" AND id < "+i+"))")
	}
	q := `SELECT ` + sagaColumns + ` FROM marquee_saga`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(o.Limit+1)
	rows, err := e.db.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("saga: list: %w", err)
	}
	defer rows.Close()
	var out []Saga
	for rows.Next() {
		r, err := scanSaga(rows)
		if err != nil {
			return nil, "", fmt.Errorf("saga: list: %w", err)
		}
		out = append(out, e.view(r))
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("saga: list: %w", err)
	}
	next := ""
	if len(out) > o.Limit {
		out = out[:o.Limit]
		last := out[len(out)-1]
		next = EncodePageToken(last.CreatedAt, last.ID)
	}
	return out, next, nil
}

// EncodePageToken makes the opaque token of a page of List starting after
// the saga created at at with id.
func EncodePageToken(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(ts(at).Format(time.RFC3339Nano) + "|" + id))
}

// DecodePageToken reads a token made by EncodePageToken.
func DecodePageToken(tok string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) > 300 {
		return time.Time{}, "", ErrBadPageToken
	}
	at, id, ok := strings.Cut(string(b), "|")
	if !ok || !idRE.MatchString(id) {
		return time.Time{}, "", ErrBadPageToken
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	return ts(t), id, nil
}

// Retry resumes a saga in needs_attention from where it stopped, with its
// attempt counter reset, and records who asked and why. Sagas in other
// states fail with ErrNotPaused (or ErrFinished, ErrNotFound).
func (e *Engine) Retry(ctx context.Context, id, actor, why string) (Saga, error) {
	err := e.operatorTx(ctx, func(tx *storage.Tx) error {
		r, err := loadSaga(ctx, tx, id)
		if err != nil {
			return err
		}
		switch {
		case r.state.Terminal():
			return fmt.Errorf("%w: %s is %s", ErrFinished, id, r.state)
		case r.state != StateNeedsAttention:
			return fmt.Errorf("%w: %s is %s", ErrNotPaused, id, r.state)
		}
		now := ts(time.Now())
		if err := e.operatorWrite(ctx, tx, r, r.paused, r.step, r.reason, now); err != nil {
			return err
		}
		return insertLog(ctx, tx, id, now, logEntry{event: eventOperatorRetry, index: r.step, kind: r.kind(), attempt: r.attempts, message: why, actor: actor})
	})
	if err != nil {
		return Saga{}, err
	}
	e.Notify(id)
	return e.Get(ctx, id)
}

// ForceCompensate stops a saga that has not finished and runs the
// compensations of the steps it started, in reverse (an action that may
// be in flight included: its participant refuses it if it arrives after
// its compensation). The saga's reason becomes ReasonForced unless it was
// already compensating for a reason of its own; who asked and why are
// recorded. A finished saga fails with ErrFinished; one past its pivot
// with ErrPastPivot. The owner driving it, if any, is fenced off.
func (e *Engine) ForceCompensate(ctx context.Context, id, actor, why string) (Saga, error) {
	var finished *sagaRow
	err := e.operatorTx(ctx, func(tx *storage.Tx) error {
		finished = nil
		r, err := loadSaga(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.state.Terminal() {
			return fmt.Errorf("%w: %s is %s", ErrFinished, id, r.state)
		}
		def, ok := e.defs[r.definition]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownDefinition, r.definition)
		}
		now := ts(time.Now())
		logIt := func() error {
			return insertLog(ctx, tx, id, now, logEntry{event: eventOperatorCompensate, index: r.step, kind: r.kind(), attempt: r.attempts, message: why, actor: actor})
		}
		if r.kind() == KindCompensation {
			// Already compensating: resume it if it was stopped.
			if r.state == StateNeedsAttention {
				if err := e.operatorWrite(ctx, tx, r, StateCompensating, r.step, r.reason, now); err != nil {
					return err
				}
			}
			return logIt()
		}
		if p := def.pivot(); p >= 0 && r.step > p {
			return fmt.Errorf("%w: %s is at step %s", ErrPastPivot, id, def.info(r.step).name)
		}
		top := r.step - 1
		var started int
		err = tx.QueryRow(ctx, `SELECT COUNT(*) FROM marquee_saga_step WHERE saga_id = $1 AND step_index = $2 AND kind = 'action'`, id, r.step).Scan(&started)
		if err != nil {
			return fmt.Errorf("saga: force compensate %s: %w", id, err)
		}
		if started > 0 || r.attempts > 0 {
			// An attempt was recorded (before it was sent), or the step
			// ran before an operator's Retry: it may have taken effect,
			// so undo it too.
			top = r.step
		}
		j := def.prevCompensable(top)
		if j >= 0 {
			if err := e.operatorWrite(ctx, tx, r, StateCompensating, j, ReasonForced, now); err != nil {
				return err
			}
			return logIt()
		}
		// Nothing to undo: the saga ends here.
		res, err := tx.Exec(ctx, `UPDATE marquee_saga SET state = 'compensated', paused_state = '', reason = $1, owner = '',
	fencing_token = fencing_token + 1, lease_until = $2, next_run_at = $2, updated_at = $2, finished_at = $2
WHERE id = $3 AND fencing_token = $4`, ReasonForced, now, id, r.token)
		if err != nil {
			return fmt.Errorf("saga: force compensate %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errChanged
		}
		if err := logIt(); err != nil {
			return err
		}
		outputs, err := loadOutputs(ctx, tx, id)
		if err != nil {
			return err
		}
		byName := map[string][]byte{}
		for i, b := range outputs {
			byName[def.info(i).name] = b
		}
		if err := def.finish(ctx, tx, id, StateCompensated, ReasonForced, r.data, byName); err != nil {
			return fmt.Errorf("saga: finish %s: %w", id, err)
		}
		finished = r
		return nil
	})
	if err != nil {
		return Saga{}, err
	}
	if finished != nil {
		e.metrics.finished(finished.definition, StateCompensated)
		if def, ok := e.defs[finished.definition]; ok {
			outputs, err := loadOutputs(ctx, e.db, id)
			if err == nil {
				byName := map[string][]byte{}
				for i, b := range outputs {
					byName[def.info(i).name] = b
				}
				def.afterFinish(id, StateCompensated, ReasonForced, finished.data, byName)
			}
		}
	} else {
		e.Notify(id)
	}
	return e.Get(ctx, id)
}

// errChanged reports that a saga changed between an operator action's
// read and its write (its driver recorded progress meanwhile).
var errChanged = errors.New("saga: changed concurrently")

// operatorTx runs an operator action's transaction, again from its read
// when the saga's driver recorded progress in between.
func (e *Engine) operatorTx(ctx context.Context, fn func(tx *storage.Tx) error) error {
	for i := 0; ; i++ {
		err := e.inTx(ctx, fn)
		if !errors.Is(err, errChanged) || i == 20 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
		}
	}
}

// operatorWrite moves saga r to state at step with fresh attempts,
// releasing it from any owner (whose later writes are fenced off) and
// making it due now. It fails if r changed since it was read.
func (e *Engine) operatorWrite(ctx context.Context, tx *storage.Tx, r *sagaRow, st State, step int, reason string, now time.Time) error {
	res, err := tx.Exec(ctx, `UPDATE marquee_saga SET state = $1, paused_state = '', step = $2, attempts = 0, reason = $3,
	last_error = '', owner = '', fencing_token = fencing_token + 1, lease_until = $4, next_run_at = $4, updated_at = $4,
	step_started_at = $4
WHERE id = $5 AND fencing_token = $6 AND state = $7 AND step = $8`, string(st), step, reason, now, r.id, r.token, string(r.state), r.step)
	if err != nil {
		return fmt.Errorf("saga: update %s: %w", r.id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errChanged
	}
	return nil
}
