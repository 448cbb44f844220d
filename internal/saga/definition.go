package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Class says what a step may do when the saga fails, and so where it may
// sit in a definition: Compensatable and ReadOnly steps come first, then at
// most one Pivot, then Retriable steps. A definition whose steps break that
// order is refused by Define.
type Class int

const (
	// Compensatable steps have a compensation that undoes them. When a
	// later step fails, their compensations run in reverse.
	Compensatable Class = iota + 1
	// ReadOnly steps have no effect to undo (a query, a validation); they
	// may sit anywhere before the pivot and have no compensation.
	ReadOnly
	// Pivot is the go/no-go step: once it succeeds the saga must complete.
	// Its compensation, if any, runs only when the pivot itself was given
	// up on with an unknown outcome (its attempts ran out on transient
	// errors), to undo an effect that may have happened.
	Pivot
	// Retriable steps come after the pivot. They cannot fail the saga: a
	// transient error is retried with backoff until it succeeds, and a
	// business failure or an exhausted attempt budget puts the saga in
	// needs_attention.
	Retriable
)

// String names the class.
func (c Class) String() string {
	switch c {
	case Compensatable:
		return "compensatable"
	case ReadOnly:
		return "read-only"
	case Pivot:
		return "pivot"
	case Retriable:
		return "retriable"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// RetryPolicy bounds the attempts of one action or compensation. The wait
// after the n-th failed attempt is Initial·Multiplier^(n-1), capped at Max,
// reduced by a random fraction of up to Jitter (so replicas retrying the
// same participant spread out).
type RetryPolicy struct {
	// MaxAttempts is the attempt budget, the first attempt included. When
	// it runs out, the action of a compensatable, read-only or pivot step
	// fails (and the saga compensates); a retriable action or a
	// compensation puts the saga in needs_attention.
	MaxAttempts int
	// Initial is the wait after the first failed attempt.
	Initial time.Duration
	// Max caps the wait.
	Max time.Duration
	// Multiplier grows the wait (2 doubles it).
	Multiplier float64
	// Jitter is the largest fraction (0..1) taken off a wait at random.
	Jitter float64
}

// DefaultActionRetry is the policy of an action that sets none.
var DefaultActionRetry = RetryPolicy{MaxAttempts: 5, Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}

// DefaultCompensationRetry is the policy of a compensation that sets none:
// compensations must succeed in the end, so their budget is larger and
// their backoff capped.
var DefaultCompensationRetry = RetryPolicy{MaxAttempts: 30, Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2}

// DefaultTimeout bounds one attempt of a step that sets no Timeout.
const DefaultTimeout = 10 * time.Second

func (p RetryPolicy) withDefaults(d RetryPolicy) RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.Initial <= 0 {
		p.Initial = d.Initial
	}
	if p.Max <= 0 {
		p.Max = max(d.Max, p.Initial)
	}
	if p.Multiplier < 1 {
		p.Multiplier = d.Multiplier
	}
	if p.Jitter < 0 || p.Jitter > 1 {
		p.Jitter = d.Jitter
	}
	return p
}

// Backoff returns the wait after failed attempt n (1-based).
func (p RetryPolicy) Backoff(n int) time.Duration {
	d := float64(p.Initial)
	for i := 1; i < n && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	d = min(d, float64(p.Max))
	d -= d * p.Jitter * rand.Float64()
	return time.Duration(d)
}

// Call is what an action or compensation is given: which saga and step it
// serves, the saga's data, and the outputs of the actions that succeeded.
type Call[D any] struct {
	// SagaID is the saga's id.
	SagaID string
	// Step is the step's name.
	Step string
	// Kind is KindAction or KindCompensation.
	Kind Kind
	// IdempotencyKey is IdempotencyKey(SagaID, Step, Kind): the same for
	// every attempt, so participants run the effect at most once.
	IdempotencyKey string
	// ActionKey is the idempotency key of the step's action; a
	// compensation names with it the action it undoes.
	ActionKey string
	// Attempt counts from 1.
	Attempt int
	// Reason is, for a compensation, why the saga is being compensated
	// (the saga's reason: a Failure reason, an ExhaustedReason or
	// ReasonForced); empty for an action.
	Reason string
	// Data is the saga's data, as given to Create.
	Data D
	// Outputs holds the output of every action that succeeded so far, by
	// step name.
	Outputs map[string][]byte
}

// Func is an action or a compensation. It returns the step's output
// (stored in the saga log and given to later steps) or an error: a
// *Failure (see Fail) is a business failure that is not retried; any other
// error is transient and retried under the step's RetryPolicy. A
// compensation's business failure puts the saga in needs_attention.
type Func[D any] func(ctx context.Context, c Call[D]) ([]byte, error)

// Step is one step of a Definition.
type Step[D any] struct {
	// Name identifies the step in the saga log and in idempotency keys:
	// lower case letters, digits and underscores.
	Name string
	// Class places the step around the pivot (see Class).
	Class Class
	// Action does the step's work.
	Action Func[D]
	// Compensation undoes Action; required for Compensatable, optional for
	// Pivot, forbidden otherwise.
	Compensation Func[D]
	// CompensationName names the compensation in the log ("refund");
	// default Name + "_compensation".
	CompensationName string
	// Timeout bounds one attempt of the action or the compensation;
	// default DefaultTimeout. An attempt that times out is a transient
	// failure.
	Timeout time.Duration
	// Retry is the action's policy; zero fields take DefaultActionRetry's.
	Retry RetryPolicy
	// CompensationRetry is the compensation's policy; zero fields take
	// DefaultCompensationRetry's.
	CompensationRetry RetryPolicy
	// ExhaustedReason is the saga's reason when this action runs out of
	// attempts; default Name + "_unavailable".
	ExhaustedReason string
	// Participant and Method describe the call for operators (the
	// service and the full gRPC method); CompensationMethod likewise.
	Participant, Method, CompensationMethod string
}

// Finish is given to a definition's OnFinish when its saga ends.
type Finish[D any] struct {
	SagaID string
	// State is StateCompleted, StateRejected or StateCompensated.
	State State
	// Reason explains a rejected or compensated saga: the Failure reason,
	// the ExhaustedReason of the step that ran out of attempts, or
	// ReasonForced.
	Reason string
	Data   D
	// Outputs holds the output of every action that succeeded, by step
	// name (compensated actions included).
	Outputs map[string][]byte
}

// DefinitionOptions configures a Definition beyond its steps.
type DefinitionOptions[D any] struct {
	// OnFinish runs in the same transaction as the saga's final state
	// write, so the owning service updates its entity and publishes its
	// events (through the outbox) atomically with the saga's end. An
	// error rolls the write back; the engine tries again later.
	OnFinish func(ctx context.Context, tx *storage.Tx, f Finish[D]) error
	// AfterFinish, if set, runs after that transaction committed (for
	// example to wake the outbox relay). It must not block.
	AfterFinish func(f Finish[D])
}

// Definition is a validated, immutable saga type: a name, its ordered
// steps and its finish callback. D is the saga's data, stored as JSON.
type Definition[D any] struct {
	name  string
	steps []Step[D]
	pivot int // index of the pivot, -1 without one
	opts  DefinitionOptions[D]
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ErrInvalidDefinition is wrapped by the errors of Define.
var ErrInvalidDefinition = errors.New("saga: invalid definition")

// Define validates and returns a saga definition. It is refused when a
// name is malformed or repeated, a step has no action, a compensatable
// step has no compensation, a read-only or retriable step has one, there is
// more than one pivot, a retriable step comes before the pivot (or there
// is none), or anything but a retriable step comes after it: a saga that
// passed its pivot can then only complete.
func Define[D any](name string, steps []Step[D], opts DefinitionOptions[D]) (*Definition[D], error) {
	bad := func(format string, args ...any) (*Definition[D], error) {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidDefinition, name, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(name) {
		return bad("name must match %s", nameRE)
	}
	if len(steps) == 0 {
		return bad("no steps")
	}
	d := &Definition[D]{name: name, steps: make([]Step[D], len(steps)), pivot: -1, opts: opts}
	seen := map[string]bool{}
	for i, s := range steps {
		if !nameRE.MatchString(s.Name) {
			return bad("step %d: name %q must match %s", i, s.Name, nameRE)
		}
		if s.CompensationName == "" {
			s.CompensationName = s.Name + "_compensation"
		}
		if !nameRE.MatchString(s.CompensationName) {
			return bad("step %s: compensation name %q must match %s", s.Name, s.CompensationName, nameRE)
		}
		if seen[s.Name] {
			return bad("step name %q used twice", s.Name)
		}
		seen[s.Name] = true
		if s.Compensation != nil {
			if seen[s.CompensationName] {
				return bad("compensation name %q used twice", s.CompensationName)
			}
			seen[s.CompensationName] = true
		}
		if s.Action == nil {
			return bad("step %s has no action", s.Name)
		}
		switch s.Class {
		case Compensatable:
			if s.Compensation == nil {
				return bad("compensatable step %s has no compensation (a step with nothing to undo is ReadOnly)", s.Name)
			}
		case ReadOnly:
			if s.Compensation != nil {
				return bad("read-only step %s has a compensation", s.Name)
			}
		case Pivot:
			if d.pivot >= 0 {
				return bad("steps %s and %s are both pivots", steps[d.pivot].Name, s.Name)
			}
			d.pivot = i
		case Retriable:
			if d.pivot < 0 {
				return bad("retriable step %s is not after a pivot", s.Name)
			}
			if s.Compensation != nil {
				return bad("retriable step %s has a compensation: nothing after the pivot is undone", s.Name)
			}
		default:
			return bad("step %s has no class", s.Name)
		}
		if d.pivot >= 0 && i > d.pivot && s.Class != Retriable {
			return bad("step %s (%s) comes after pivot %s: a saga past its pivot must not fail, so only retriable steps may follow it", s.Name, s.Class, steps[d.pivot].Name)
		}
		if s.Timeout < 0 {
			return bad("step %s has a negative timeout", s.Name)
		}
		if s.Timeout == 0 {
			s.Timeout = DefaultTimeout
		}
		s.Retry = s.Retry.withDefaults(DefaultActionRetry)
		s.CompensationRetry = s.CompensationRetry.withDefaults(DefaultCompensationRetry)
		if s.ExhaustedReason == "" {
			s.ExhaustedReason = s.Name + "_unavailable"
		}
		d.steps[i] = s
	}
	return d, nil
}

// MustDefine is Define for definitions fixed in code; it panics on an
// invalid definition.
func MustDefine[D any](name string, steps []Step[D], opts DefinitionOptions[D]) *Definition[D] {
	d, err := Define(name, steps, opts)
	if err != nil {
		panic(err)
	}
	return d
}

// Name returns the definition's name.
func (d *Definition[D]) Name() string { return d.name }

// Definer is implemented by *Definition[D] for every D; the engine runs
// definitions through it without knowing their data type.
type Definer interface {
	Name() string
	def() definition
}

func (d *Definition[D]) def() definition { return erased[D]{d} }

var _ Definer = (*Definition[struct{}])(nil)

// definition is a Definition with its data type erased.
type definition interface {
	name() string
	len() int
	info(i int) stepInfo
	pivot() int
	prevCompensable(i int) int
	encode(data any) ([]byte, error)
	call(ctx context.Context, i int, kind Kind, sagaID string, attempt int, reason string, data []byte, outputs map[string][]byte) ([]byte, error)
	finish(ctx context.Context, tx *storage.Tx, sagaID string, st State, reason string, data []byte, outputs map[string][]byte) error
	afterFinish(sagaID string, st State, reason string, data []byte, outputs map[string][]byte)
}

// stepInfo is what the engine needs to know about a step.
type stepInfo struct {
	name, compName      string
	class               Class
	hasComp             bool
	timeout             time.Duration
	retry, compRetry    RetryPolicy
	exhausted           string
	participant, method string
	compMethod          string
}

type erased[D any] struct{ d *Definition[D] }

func (e erased[D]) name() string { return e.d.name }
func (e erased[D]) len() int     { return len(e.d.steps) }
func (e erased[D]) pivot() int   { return e.d.pivot }

func (e erased[D]) info(i int) stepInfo {
	s := e.d.steps[i]
	return stepInfo{
		name: s.Name, compName: s.CompensationName, class: s.Class, hasComp: s.Compensation != nil,
		timeout: s.Timeout, retry: s.Retry, compRetry: s.CompensationRetry, exhausted: s.ExhaustedReason,
		participant: s.Participant, method: s.Method, compMethod: s.CompensationMethod,
	}
}

func (e erased[D]) encode(data any) ([]byte, error) {
	var v D
	switch d := data.(type) {
	case D:
		v = d
	case *D:
		if d == nil {
			return nil, fmt.Errorf("saga %s: nil data", e.d.name)
		}
		v = *d
	default:
		return nil, fmt.Errorf("saga %s: data is %T, want %T", e.d.name, data, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("saga %s: encode data: %w", e.d.name, err)
	}
	return b, nil
}

func (e erased[D]) decode(data []byte) (D, error) {
	var v D
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("saga %s: decode data: %w", e.d.name, err)
	}
	return v, nil
}

func (e erased[D]) call(ctx context.Context, i int, kind Kind, sagaID string, attempt int, reason string, data []byte, outputs map[string][]byte) ([]byte, error) {
	v, err := e.decode(data)
	if err != nil {
		return nil, Fail("corrupt_data", err)
	}
	s := e.d.steps[i]
	c := Call[D]{
		SagaID: sagaID, Step: s.Name, Kind: kind, Attempt: attempt, Data: v, Outputs: outputs,
		IdempotencyKey: IdempotencyKey(sagaID, s.Name, kind),
		ActionKey:      IdempotencyKey(sagaID, s.Name, KindAction),
	}
	fn := s.Action
	if kind == KindCompensation {
		fn = s.Compensation
		c.Reason = reason
	}
	return fn(ctx, c)
}

func (e erased[D]) finish(ctx context.Context, tx *storage.Tx, sagaID string, st State, reason string, data []byte, outputs map[string][]byte) error {
	if e.d.opts.OnFinish == nil {
		return nil
	}
	v, err := e.decode(data)
	if err != nil {
		return err
	}
	return e.d.opts.OnFinish(ctx, tx, Finish[D]{SagaID: sagaID, State: st, Reason: reason, Data: v, Outputs: outputs})
}

func (e erased[D]) afterFinish(sagaID string, st State, reason string, data []byte, outputs map[string][]byte) {
	if e.d.opts.AfterFinish == nil {
		return
	}
	v, err := e.decode(data)
	if err != nil {
		return
	}
	e.d.opts.AfterFinish(Finish[D]{SagaID: sagaID, State: st, Reason: reason, Data: v, Outputs: outputs})
}
