package orders

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	"github.com/marquee-tv/marquee/internal/orders/domain"
	"github.com/marquee-tv/marquee/internal/saga"
)

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func orderProto(o domain.Order) *ordersv1.Order {
	return &ordersv1.Order{
		Id: o.ID, AccountId: o.AccountID, Kind: o.Kind, PlanId: o.PlanID, TitleId: o.TitleID,
		Amount: &billingv1.Money{AmountMinor: o.AmountMinor, Currency: o.Currency},
		Status: o.Status, Reason: o.Reason, SagaId: o.SagaID, ChargeId: o.ChargeID, EntitlementId: o.EntitlementID,
		CreatedAt: stamp(o.CreatedAt), UpdatedAt: stamp(o.UpdatedAt), CompletedAt: stamp(o.CompletedAt),
	}
}

func sagaProto(s saga.Saga) *ordersv1.Saga {
	var d sagaData
	_ = json.Unmarshal(s.Data, &d) // a saga of ours always decodes; an empty order id otherwise
	p := &ordersv1.Saga{
		Id: s.ID, OrderId: d.OrderID, Kind: s.Definition, State: string(s.State), Owner: s.Owner,
		FencingToken: s.FencingToken, LastError: s.LastError,
		CreatedAt: stamp(s.CreatedAt), UpdatedAt: stamp(s.UpdatedAt), FinishedAt: stamp(s.FinishedAt),
	}
	if s.Owner != "" {
		p.LeaseExpiresAt = stamp(s.LeaseUntil)
	}
	for _, st := range s.Steps {
		ps := &ordersv1.SagaStep{
			Name: st.Name, Kind: string(st.Kind), Compensates: st.Compensates, Participant: st.Participant,
			Method: st.Method, IdempotencyKey: st.IdempotencyKey, State: string(st.State), Attempts: int32(st.Attempts),
			StartedAt: stamp(st.StartedAt), FinishedAt: stamp(st.FinishedAt), NextAttemptAt: stamp(st.NextAttemptAt),
		}
		for _, e := range st.Errors {
			ps.Errors = append(ps.Errors, &ordersv1.SagaStepError{Attempt: int32(e.Attempt), Code: e.Code, Message: e.Message, Retryable: e.Retryable, At: stamp(e.At)})
		}
		p.Steps = append(p.Steps, ps)
	}
	return p
}
