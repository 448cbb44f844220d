package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/orders/domain"
	"github.com/marquee-tv/marquee/internal/orders/store"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/saga"
)

// SagaName is the name of the CreateOrder saga definition.
const SagaName = "create_order"

// Step names of the CreateOrder saga.
const (
	stepCharge = "charge"
	stepGrant  = "grant_entitlement"
)

// Reasons of orders that fail because a participant never answered.
const (
	ReasonPaymentUnavailable     = "payment_unavailable"
	ReasonEntitlementUnavailable = "entitlement_unavailable"
)

// sagaData is what the saga log keeps of an order: everything its steps
// send, and no card (a payment method id instead).
type sagaData struct {
	OrderID         string `json:"order_id"`
	AccountID       string `json:"account_id"`
	Kind            string `json:"kind"`
	PlanID          string `json:"plan_id,omitempty"`
	TitleID         string `json:"title_id,omitempty"`
	AmountMinor     int64  `json:"amount_minor"`
	Currency        string `json:"currency"`
	Description     string `json:"description"`
	PaymentMethodID string `json:"payment_method_id"`
	MaxStreams      int32  `json:"max_streams,omitempty"`
	RentalSeconds   int32  `json:"rental_seconds,omitempty"`
}

// The outputs of the steps, kept in the saga log.
type chargeOutput struct {
	ChargeID string `json:"charge_id"`
}

type grantOutput struct {
	EntitlementID string `json:"entitlement_id"`
}

// The default retry policies of the saga's steps: an unavailable
// processor is retried for about ten seconds before the order fails;
// compensations keep trying for several minutes before the saga needs
// attention.
var (
	defaultActionRetry       = saga.RetryPolicy{MaxAttempts: 6, Initial: 250 * time.Millisecond, Max: 4 * time.Second, Multiplier: 2, Jitter: 0.2}
	defaultCompensationRetry = saga.RetryPolicy{MaxAttempts: 30, Initial: 250 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2}
)

func (s *Service) definition(action, comp saga.RetryPolicy) (*saga.Definition[sagaData], error) {
	action = merge(action, defaultActionRetry)
	comp = merge(comp, defaultCompensationRetry)
	return saga.Define(SagaName, []saga.Step[sagaData]{
		{
			Name: stepCharge, Class: saga.Compensatable,
			Action: s.charge, Compensation: s.refund, CompensationName: "refund",
			// A processor may take several seconds to answer.
			Timeout: 15 * time.Second, Retry: action, CompensationRetry: comp,
			ExhaustedReason: ReasonPaymentUnavailable,
			Participant:     "billing", Method: billingv1.BillingService_Charge_FullMethodName,
			CompensationMethod: billingv1.BillingService_Refund_FullMethodName,
		},
		{
			Name: stepGrant, Class: saga.Pivot,
			Action: s.grant, Compensation: s.revoke, CompensationName: "revoke_entitlement",
			Timeout: 10 * time.Second, Retry: action, CompensationRetry: comp,
			ExhaustedReason: ReasonEntitlementUnavailable,
			Participant:     "playback", Method: playbackv1.PlaybackService_GrantEntitlement_FullMethodName,
			CompensationMethod: playbackv1.PlaybackService_RevokeEntitlement_FullMethodName,
		},
	}, saga.DefinitionOptions[sagaData]{OnFinish: s.finish, AfterFinish: func(saga.Finish[sagaData]) { s.notify() }})
}

func merge(p, d saga.RetryPolicy) saga.RetryPolicy {
	if p.MaxAttempts > 0 {
		d.MaxAttempts = p.MaxAttempts
	}
	if p.Initial > 0 {
		d.Initial = p.Initial
	}
	if p.Max > 0 {
		d.Max = p.Max
	}
	if p.Multiplier >= 1 {
		d.Multiplier = p.Multiplier
	}
	if p.Jitter > 0 {
		d.Jitter = p.Jitter
	}
	return d
}

// onBehalf makes the saga's calls carry the order's account as caller.
func onBehalf(ctx context.Context, d sagaData) context.Context {
	return principal.NewOutgoingContext(ctx, principal.Principal{AccountID: d.AccountID, Roles: []string{principal.RoleViewer}})
}

// classify turns a participant's error into a saga outcome: statuses that
// retrying cannot change are business failures (saga.Fail, with the
// product reason in lower case); the rest (UNAVAILABLE, DEADLINE_EXCEEDED,
// ABORTED IN_PROGRESS, RESOURCE_EXHAUSTED, INTERNAL, ...) are transient.
func classify(err error) error {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.PermissionDenied,
		codes.Unauthenticated, codes.AlreadyExists, codes.OutOfRange, codes.Unimplemented:
		reason := rpcerr.Reason(err)
		if reason == "" {
			reason = status.Code(err).String()
		}
		return saga.Fail(strings.ToLower(reason), err)
	}
	return err
}

func (s *Service) charge(ctx context.Context, c saga.Call[sagaData]) ([]byte, error) {
	d := c.Data
	resp, err := s.billing.Charge(onBehalf(ctx, d), &billingv1.ChargeRequest{
		IdempotencyKey: c.IdempotencyKey, OrderId: d.OrderID, SagaId: c.SagaID, AccountId: d.AccountID,
		Amount:      &billingv1.Money{AmountMinor: d.AmountMinor, Currency: d.Currency},
		Description: d.Description,
		Source:      &billingv1.ChargeRequest_PaymentMethodId{PaymentMethodId: d.PaymentMethodID},
	})
	if err != nil {
		return nil, classify(err)
	}
	ch := resp.GetCharge()
	switch ch.GetStatus() {
	case "succeeded":
		return json.Marshal(chargeOutput{ChargeID: ch.GetId()})
	case "declined":
		code := ch.GetDeclineCode()
		if code == "" {
			code = "card_declined"
		}
		return nil, saga.Fail(code, nil)
	case "cancelled":
		// Its refund came first (an operator compensated the saga).
		return nil, saga.Fail("charge_cancelled", nil)
	default:
		return nil, fmt.Errorf("billing answered charge status %q", ch.GetStatus())
	}
}

func (s *Service) refund(ctx context.Context, c saga.Call[sagaData]) ([]byte, error) {
	d := c.Data
	resp, err := s.billing.Refund(onBehalf(ctx, d), &billingv1.RefundRequest{
		IdempotencyKey: c.IdempotencyKey, OrderId: d.OrderID, SagaId: c.SagaID, AccountId: d.AccountID,
		ChargeIdempotencyKey: c.ActionKey, Reason: c.Reason,
	})
	if err != nil {
		return nil, classify(err)
	}
	return json.Marshal(map[string]string{"refund_id": resp.GetRefund().GetId(), "status": resp.GetRefund().GetStatus()})
}

func (s *Service) grant(ctx context.Context, c saga.Call[sagaData]) ([]byte, error) {
	d := c.Data
	resp, err := s.playback.GrantEntitlement(onBehalf(ctx, d), &playbackv1.GrantEntitlementRequest{
		IdempotencyKey: c.IdempotencyKey, OrderId: d.OrderID, SagaId: c.SagaID, AccountId: d.AccountID,
		PlanId: d.PlanID, MaxStreams: d.MaxStreams, TitleId: d.TitleID, RentalDurationSeconds: d.RentalSeconds,
	})
	if err != nil {
		return nil, classify(err)
	}
	e := resp.GetEntitlement()
	if e.GetStatus() == "cancelled" {
		return nil, saga.Fail("grant_cancelled", nil)
	}
	return json.Marshal(grantOutput{EntitlementID: e.GetId()})
}

func (s *Service) revoke(ctx context.Context, c saga.Call[sagaData]) ([]byte, error) {
	d := c.Data
	resp, err := s.playback.RevokeEntitlement(onBehalf(ctx, d), &playbackv1.RevokeEntitlementRequest{
		IdempotencyKey: c.IdempotencyKey, OrderId: d.OrderID, SagaId: c.SagaID, AccountId: d.AccountID,
		GrantIdempotencyKey: c.ActionKey, Reason: c.Reason,
	})
	if err != nil {
		return nil, classify(err)
	}
	return json.Marshal(map[string]string{"entitlement_id": resp.GetEntitlement().GetId(), "status": resp.GetEntitlement().GetStatus()})
}

// finish runs in the saga's final transaction: the order takes its final
// status and its event goes to the outbox.
func (s *Service) finish(ctx context.Context, tx *storage.Tx, f saga.Finish[sagaData]) error {
	var st, subject string
	switch f.State {
	case saga.StateCompleted:
		st, subject = domain.StatusCompleted, CompletedSubject
	case saga.StateRejected:
		st, subject = domain.StatusRejected, RejectedSubject
	default:
		st, subject = domain.StatusFailed, FailedSubject
	}
	var ch chargeOutput
	var gr grantOutput
	if b := f.Outputs[stepCharge]; b != nil {
		if err := json.Unmarshal(b, &ch); err != nil {
			return fmt.Errorf("charge output: %w", err)
		}
	}
	if b := f.Outputs[stepGrant]; b != nil {
		if err := json.Unmarshal(b, &gr); err != nil {
			return fmt.Errorf("grant output: %w", err)
		}
	}
	changed, err := store.Finish(ctx, tx, f.Data.OrderID, st, f.Reason, ch.ChargeID, gr.EntitlementID, time.Now())
	if err != nil || !changed {
		return err
	}
	o, err := store.Get(ctx, tx, f.Data.OrderID)
	if err != nil {
		return err
	}
	ev, err := events.NewEvent(subject, o.ID, orderProto(o))
	if err != nil {
		return err
	}
	return events.Publish(ctx, tx, ev)
}
