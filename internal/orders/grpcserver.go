package orders

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	"github.com/marquee-tv/marquee/internal/orders/domain"
	"github.com/marquee-tv/marquee/internal/orders/store"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/saga"
)

// server is the gRPC edge of Service.
type server struct {
	ordersv1.UnimplementedOrdersServiceServer
	svc *Service
	log interface {
		WarnContext(ctx context.Context, msg string, args ...any)
		ErrorContext(ctx context.Context, msg string, args ...any)
	}
}

var _ ordersv1.OrdersServiceServer = (*server)(nil)

// Register serves the OrdersService on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	ordersv1.RegisterOrdersServiceServer(r, &server{svc: s, log: s.log})
}

// CreateOrder places an order for the caller and starts its saga.
func (s *server) CreateOrder(ctx context.Context, req *ordersv1.CreateOrderRequest) (_ *ordersv1.CreateOrderResponse, err error) {
	defer s.mapError(ctx, "CreateOrder", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	in := domain.CreateRequest{
		AccountID: p.AccountID, IdempotencyKey: idempotencyKey(ctx, req.GetIdempotencyKey()),
		PlanID: req.GetPlanId(), TitleID: req.GetTitleId(),
	}
	if c := req.GetPayment(); c != nil {
		in.Card = domain.Card{Number: c.GetCardNumber(), ExpMonth: int(c.GetExpMonth()), ExpYear: int(c.GetExpYear()), CVC: c.GetCvc()}
	}
	o, _, err := s.svc.CreateOrder(ctx, in)
	if err != nil {
		return nil, err
	}
	return &ordersv1.CreateOrderResponse{OrderId: o.ID, Status: o.Status}, nil
}

// idempotencyKey is the request's idempotency_key or, when that is empty,
// the Idempotency-Key header, which the gateway forwards as metadata.
func idempotencyKey(ctx context.Context, field string) string {
	if field != "" {
		return field
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("idempotency-key"); len(v) == 1 {
		return v[0]
	}
	return ""
}

// GetOrder returns one of the caller's orders.
func (s *server) GetOrder(ctx context.Context, req *ordersv1.GetOrderRequest) (_ *ordersv1.GetOrderResponse, err error) {
	defer s.mapError(ctx, "GetOrder", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, domain.Invalid("id", "is required")
	}
	o, err := s.svc.GetOrder(ctx, p.AccountID, req.GetId())
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetOrderResponse{Order: orderProto(o)}, nil
}

// ListOrders lists the caller's orders, newest first.
func (s *server) ListOrders(ctx context.Context, req *ordersv1.ListOrdersRequest) (_ *ordersv1.ListOrdersResponse, err error) {
	defer s.mapError(ctx, "ListOrders", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	size, err := domain.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	list, next, err := s.svc.ListOrders(ctx, p.AccountID, req.GetStatus(), size, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &ordersv1.ListOrdersResponse{NextPageToken: next, Orders: make([]*ordersv1.Order, 0, len(list))}
	for _, o := range list {
		resp.Orders = append(resp.Orders, orderProto(o))
	}
	return resp, nil
}

// ListSagas lists sagas newest first. Admin only.
func (s *server) ListSagas(ctx context.Context, req *ordersv1.ListSagasRequest) (_ *ordersv1.ListSagasResponse, err error) {
	defer s.mapError(ctx, "ListSagas", &err)
	if _, err := principal.RequireRole(ctx, principal.RoleAdmin); err != nil {
		return nil, err
	}
	size, err := domain.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	st := saga.State(req.GetState())
	if st != "" && !st.Valid() {
		return nil, domain.Invalid("state", "must be running, compensating, completed, rejected, compensated or needs_attention")
	}
	if id := req.GetOrderId(); id != "" {
		o, err := store.Get(ctx, s.svc.db, id)
		if errors.Is(err, domain.ErrNotFound) {
			return &ordersv1.ListSagasResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		sg, err := s.svc.engine.Get(ctx, o.SagaID)
		if err != nil {
			return nil, err
		}
		resp := &ordersv1.ListSagasResponse{}
		if st == "" || sg.State == st {
			sg.Steps, sg.Log = nil, nil
			resp.Sagas = append(resp.Sagas, sagaProto(sg))
		}
		return resp, nil
	}
	list, next, err := s.svc.engine.List(ctx, saga.ListOptions{State: st, Limit: size, PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	resp := &ordersv1.ListSagasResponse{NextPageToken: next, Sagas: make([]*ordersv1.Saga, 0, len(list))}
	for _, sg := range list {
		resp.Sagas = append(resp.Sagas, sagaProto(sg))
	}
	return resp, nil
}

// GetSaga returns a saga with its steps. Admin only.
func (s *server) GetSaga(ctx context.Context, req *ordersv1.GetSagaRequest) (_ *ordersv1.GetSagaResponse, err error) {
	defer s.mapError(ctx, "GetSaga", &err)
	if _, err := principal.RequireRole(ctx, principal.RoleAdmin); err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, domain.Invalid("id", "is required")
	}
	sg, err := s.svc.engine.Get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &ordersv1.GetSagaResponse{Saga: sagaProto(sg)}, nil
}

// RetrySaga resumes a saga that needs attention. Admin only; audited.
func (s *server) RetrySaga(ctx context.Context, req *ordersv1.RetrySagaRequest) (_ *ordersv1.RetrySagaResponse, err error) {
	defer s.mapError(ctx, "RetrySaga", &err)
	p, err := principal.RequireRole(ctx, principal.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, domain.Invalid("id", "is required")
	}
	sg, err := s.svc.engine.Retry(ctx, req.GetId(), p.AccountID, "retried by an operator")
	if err != nil {
		return nil, err
	}
	return &ordersv1.RetrySagaResponse{Saga: sagaProto(sg)}, nil
}

// CompensateSaga compensates a saga that has not finished. Admin only;
// audited.
func (s *server) CompensateSaga(ctx context.Context, req *ordersv1.CompensateSagaRequest) (_ *ordersv1.CompensateSagaResponse, err error) {
	defer s.mapError(ctx, "CompensateSaga", &err)
	p, err := principal.RequireRole(ctx, principal.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, domain.Invalid("id", "is required")
	}
	if len(req.GetReason()) > 500 {
		return nil, domain.Invalid("reason", "at most 500 bytes")
	}
	sg, err := s.svc.engine.ForceCompensate(ctx, req.GetId(), p.AccountID, req.GetReason())
	if err != nil {
		return nil, err
	}
	return &ordersv1.CompensateSagaResponse{Saga: sagaProto(sg)}, nil
}
