// Package saga is an orchestrator of distributed transactions: it drives
// sagas, ordered steps each calling a participant service, and undoes the
// completed steps in reverse when one fails, with a durable log in the
// owning service's own database. It knows nothing of the sagas it runs:
// a service declares a typed Definition and creates sagas of it inside its
// own local transactions.
//
// # Life of a saga
//
// The owning service calls Engine.Create inside the transaction that
// records its own entity (an order), so the entity and its saga commit
// together, then Engine.Notify after the commit. The engine writes every
// state change before it acts on it: the attempt of a step is recorded
// before the participant is called, and its result in the same
// transaction that records the start of the next step. A process that dies
// at any instant leaves a saga whose log says which step may have been
// sent; whoever drives it next sends that step again with the same
// idempotency key, and the participant (see package saga/barrier) answers
// the original result.
//
// States:
//
//	running ──► completed                   every action succeeded
//	   │ └────► rejected                    a step was refused, nothing to undo
//	   ▼
//	compensating ──► compensated            compensations ran in reverse
//	   │ (either)
//	   ▼
//	needs_attention ──(operator Retry)──► back to where it stopped
//	                ──(operator ForceCompensate)──► compensating
//
// A business failure (Fail) of an action compensates the steps before it;
// a transient error is retried with exponential backoff and jitter until
// the step's attempt budget runs out, and then the step itself is
// compensated too, since it may have taken effect. Compensations are
// retried until they succeed; one that exhausts its budget or fails for
// good stops the saga in needs_attention with the reason, so no saga is
// ever silently stuck.
//
// # Ownership
//
// Several replicas of the owning service may run engines on one database.
// Each saga is driven by one owner at a time: the owner holds a lease
// (owner, lease_until) renewed while it drives, and a fencing token that
// increases every time another owner takes the lease. Every state write is
// conditional on the token the writer holds, so a stale owner (paused past
// its lease) has its writes refused and stops.
//
// # Storage
//
// The tables marquee_saga (one row per saga), marquee_saga_step (one row
// per action or compensation that started) and marquee_saga_log (attempt
// errors and operator actions) are created by Migrate, which the owning
// service calls after opening its database.
package saga

import (
	"errors"
	"fmt"
)

// State is a saga's state.
type State string

// The states of a saga (see the package documentation).
const (
	StateRunning        State = "running"
	StateCompensating   State = "compensating"
	StateCompleted      State = "completed"
	StateRejected       State = "rejected"
	StateCompensated    State = "compensated"
	StateNeedsAttention State = "needs_attention"
)

// Terminal reports whether s is a final state.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateRejected || s == StateCompensated
}

// Valid reports whether s is one of the states above.
func (s State) Valid() bool {
	switch s {
	case StateRunning, StateCompensating, StateCompleted, StateRejected, StateCompensated, StateNeedsAttention:
		return true
	}
	return false
}

// Kind tells an action from a compensation.
type Kind string

// The kinds of step invocations.
const (
	KindAction       Kind = "action"
	KindCompensation Kind = "compensation"
)

// StepState is the state of one action or compensation in the log.
type StepState string

// The states of a step.
const (
	StepPending   StepState = "pending"   // not started yet
	StepRunning   StepState = "running"   // an attempt is in flight or waiting to retry
	StepSucceeded StepState = "succeeded" // done
	StepRefused   StepState = "refused"   // a business failure (Fail)
	StepFailed    StepState = "failed"    // attempts exhausted, or failed for good
	StepSkipped   StepState = "skipped"   // never ran: the saga ended before it
)

// ReasonForced is the reason of a saga compensated by an operator.
const ReasonForced = "compensated_by_admin"

// IdempotencyKey is the key every invocation of a step carries, the same
// on every attempt: "<saga id>/<step>/<kind>".
func IdempotencyKey(sagaID, step string, kind Kind) string {
	return sagaID + "/" + step + "/" + string(kind)
}

// Failure is a business failure of a step: not retried. An action's
// failure ends the saga rejected (nothing to undo) or compensated; a
// compensation's or retriable step's failure needs an operator.
type Failure struct {
	// Reason is a short machine-readable code, such as "card_declined";
	// it becomes the saga's reason.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Fail returns a *Failure with reason, wrapping err (which may be nil).
func Fail(reason string, err error) error { return &Failure{Reason: reason, Err: err} }

// Error describes the failure.
func (f *Failure) Error() string {
	if f.Err == nil {
		return "refused: " + f.Reason
	}
	return fmt.Sprintf("refused: %s: %v", f.Reason, f.Err)
}

// Unwrap returns the underlying error.
func (f *Failure) Unwrap() error { return f.Err }

// AsFailure returns the *Failure in err's chain.
func AsFailure(err error) (*Failure, bool) {
	var f *Failure
	ok := errors.As(err, &f)
	return f, ok
}

// Errors returned by the engine.
var (
	// ErrNotFound: no saga has that id.
	ErrNotFound = errors.New("saga: not found")
	// ErrFinished: the saga is completed, rejected or compensated.
	ErrFinished = errors.New("saga: already finished")
	// ErrNotPaused: Retry of a saga that does not need attention.
	ErrNotPaused = errors.New("saga: not in needs_attention")
	// ErrPastPivot: ForceCompensate of a saga whose pivot succeeded.
	ErrPastPivot = errors.New("saga: past its pivot, it can only complete")
	// ErrFenced: a write by an owner that lost the saga's lease.
	ErrFenced = errors.New("saga: lease lost to another owner (fenced)")
	// ErrUnknownDefinition: the saga's definition is not registered.
	ErrUnknownDefinition = errors.New("saga: unknown definition")
)
