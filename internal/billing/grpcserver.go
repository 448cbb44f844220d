package billing

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/store"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// server implements billingv1.BillingServiceServer. Every handler
// validates its whole input before doing anything, returns domain errors,
// and has them mapped to a status by toStatus (errors.go), deferred.
type server struct {
	billingv1.UnimplementedBillingServiceServer
	svc *Service
}

var _ billingv1.BillingServiceServer = (*server)(nil)

// ListPlans returns the plans, cheapest first, and the rental terms.
func (s *server) ListPlans(ctx context.Context, req *billingv1.ListPlansRequest) (_ *billingv1.ListPlansResponse, err error) {
	defer s.mapError(ctx, "ListPlans", &err)
	size, err := domain.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	plans := domain.Plans()
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		c, err := domain.DecodePageToken(tok, "plans")
		if err != nil {
			return nil, err
		}
		start = -1
		for i, p := range plans {
			if p.ID == c.ID {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, domain.Invalid("page_token", "malformed page token")
		}
	}
	end := min(start+size, len(plans))
	resp := &billingv1.ListPlansResponse{}
	for _, p := range plans[start:end] {
		resp.Plans = append(resp.Plans, &billingv1.Plan{
			Id: p.ID, Name: p.Name, Price: moneyProto(p.Price), MaxStreams: int32(p.MaxStreams),
			BillingPeriod: p.Period, Description: p.Description,
		})
	}
	if end < len(plans) {
		resp.NextPageToken = domain.EncodePageToken(domain.Cursor{ID: plans[end-1].ID}, "plans")
	}
	r := domain.RentalTerms()
	resp.Rental = &billingv1.RentalTerms{Price: moneyProto(r.Price), DurationSeconds: int32(r.Duration.Seconds())}
	return resp, nil
}

// parseCard validates a card of a request.
func (s *server) parseCard(c *billingv1.PaymentCard, field string) (domain.Card, error) {
	if c == nil {
		return domain.Card{}, domain.Invalid(field, "is required")
	}
	return domain.ParseCard(c.GetCardNumber(), int(c.GetExpMonth()), int(c.GetExpYear()), c.GetCvc(), s.svc.now())
}

// CreatePaymentMethod validates and tokenises a card for account_id.
func (s *server) CreatePaymentMethod(ctx context.Context, req *billingv1.CreatePaymentMethodRequest) (_ *billingv1.CreatePaymentMethodResponse, err error) {
	defer s.mapError(ctx, "CreatePaymentMethod", &err)
	var errs []error
	if key := req.GetIdempotencyKey(); key != "" {
		errs = append(errs, domain.CheckKey("idempotency_key", key))
	}
	errs = append(errs, domain.CheckID("account_id", req.GetAccountId()))
	card, cerr := s.parseCard(req.GetCard(), "card")
	errs = append(errs, cerr)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	pm, err := s.svc.createPaymentMethod(ctx, req.GetAccountId(), req.GetIdempotencyKey(), card)
	if err != nil {
		return nil, err
	}
	return &billingv1.CreatePaymentMethodResponse{PaymentMethod: paymentMethodProto(pm)}, nil
}

// Charge takes money for an order's saga step; see the package comment.
func (s *server) Charge(ctx context.Context, req *billingv1.ChargeRequest) (_ *billingv1.ChargeResponse, err error) {
	defer s.mapError(ctx, "Charge", &err)
	in := chargeInput{
		key: req.GetIdempotencyKey(), orderID: req.GetOrderId(), sagaID: req.GetSagaId(), accountID: req.GetAccountId(),
		description: req.GetDescription(),
	}
	errs := []error{
		domain.CheckKey("idempotency_key", in.key),
		domain.CheckID("order_id", in.orderID),
		domain.CheckID("saga_id", in.sagaID),
		domain.CheckID("account_id", in.accountID),
		domain.CheckText("description", in.description, domain.MaxDescriptionLen),
	}
	if req.GetAmount() == nil {
		errs = append(errs, domain.Invalid("amount", "is required"))
	} else {
		var aerr error
		in.amount, aerr = domain.CheckAmount("amount", req.GetAmount().GetAmountMinor(), req.GetAmount().GetCurrency())
		errs = append(errs, aerr)
	}
	switch src := req.GetSource().(type) {
	case *billingv1.ChargeRequest_PaymentMethodId:
		in.paymentMethodID = src.PaymentMethodId
		errs = append(errs, domain.CheckID("payment_method_id", in.paymentMethodID))
	case *billingv1.ChargeRequest_Payment:
		card, cerr := s.parseCard(src.Payment, "payment")
		in.card = &card
		errs = append(errs, cerr)
	default:
		errs = append(errs, domain.Invalid("source", "payment_method_id or payment is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c, pm, err := s.svc.charge(ctx, in)
	if err != nil {
		return nil, err
	}
	if pm != nil {
		// Just recorded: its payment method is at hand and it has no
		// refunds yet.
		return &billingv1.ChargeResponse{Charge: chargeMessage(c, pm)}, nil
	}
	pc, err := s.svc.chargeProto(ctx, c)
	if err != nil {
		return nil, err
	}
	return &billingv1.ChargeResponse{Charge: pc}, nil
}

// Refund undoes a charge of a saga; see the package comment.
func (s *server) Refund(ctx context.Context, req *billingv1.RefundRequest) (_ *billingv1.RefundResponse, err error) {
	defer s.mapError(ctx, "Refund", &err)
	in := refundInput{
		key: req.GetIdempotencyKey(), orderID: req.GetOrderId(), sagaID: req.GetSagaId(), accountID: req.GetAccountId(),
		chargeKey: req.GetChargeIdempotencyKey(), reason: req.GetReason(),
	}
	if err := errors.Join(
		domain.CheckKey("idempotency_key", in.key),
		domain.CheckID("order_id", in.orderID),
		domain.CheckID("saga_id", in.sagaID),
		domain.CheckID("account_id", in.accountID),
		domain.CheckKey("charge_idempotency_key", in.chargeKey),
		domain.CheckText("reason", in.reason, domain.MaxReasonLen),
	); err != nil {
		return nil, err
	}
	r, err := s.svc.refund(ctx, in)
	if err != nil {
		return nil, err
	}
	return &billingv1.RefundResponse{Refund: refundProto(r)}, nil
}

// GetCharge returns one charge with its refunds.
func (s *server) GetCharge(ctx context.Context, req *billingv1.GetChargeRequest) (_ *billingv1.GetChargeResponse, err error) {
	defer s.mapError(ctx, "GetCharge", &err)
	if err := domain.CheckID("id", req.GetId()); err != nil {
		return nil, err
	}
	c, err := s.svc.store.Charge(ctx, s.svc.db, req.GetId())
	if err != nil {
		return nil, err
	}
	pc, err := s.svc.chargeProto(ctx, c)
	if err != nil {
		return nil, err
	}
	return &billingv1.GetChargeResponse{Charge: pc}, nil
}

// ListCharges lists charges by order or account, newest first.
func (s *server) ListCharges(ctx context.Context, req *billingv1.ListChargesRequest) (_ *billingv1.ListChargesResponse, err error) {
	defer s.mapError(ctx, "ListCharges", &err)
	var errs []error
	if req.GetOrderId() != "" {
		errs = append(errs, domain.CheckID("order_id", req.GetOrderId()))
	}
	if req.GetAccountId() != "" {
		errs = append(errs, domain.CheckID("account_id", req.GetAccountId()))
	}
	size, serr := domain.PageSize(req.GetPageSize())
	errs = append(errs, serr)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f := store.ChargeFilter{OrderID: req.GetOrderId(), AccountID: req.GetAccountId()}
	charges, next, err := s.svc.store.ListCharges(ctx, s.svc.db, f, size, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &billingv1.ListChargesResponse{NextPageToken: next}
	for _, c := range charges {
		pc, err := s.svc.chargeProto(ctx, c)
		if err != nil {
			return nil, err
		}
		resp.Charges = append(resp.Charges, pc)
	}
	return resp, nil
}

// ListInvoices lists the caller's invoices with their refunds, newest
// first.
func (s *server) ListInvoices(ctx context.Context, req *billingv1.ListInvoicesRequest) (_ *billingv1.ListInvoicesResponse, err error) {
	defer s.mapError(ctx, "ListInvoices", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	size, err := domain.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	invoices, next, err := s.svc.store.ListInvoices(ctx, s.svc.db, p.AccountID, size, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(invoices))
	for i, inv := range invoices {
		ids[i] = inv.PaymentMethodID
	}
	pms, err := s.svc.store.PaymentMethods(ctx, s.svc.db, ids)
	if err != nil {
		return nil, err
	}
	resp := &billingv1.ListInvoicesResponse{NextPageToken: next}
	for _, inv := range invoices {
		refunds, err := s.svc.store.RefundsOfCharge(ctx, s.svc.db, inv.ChargeID)
		if err != nil {
			return nil, err
		}
		pi := &billingv1.Invoice{
			Id:          inv.ID,
			OrderId:     inv.OrderID,
			ChargeId:    inv.ChargeID,
			Description: inv.Description,
			Amount:      moneyProto(inv.Amount),
			Refunded:    moneyProto(inv.Refunded),
			Status:      string(inv.Status()),
			IssuedAt:    timestamppb.New(inv.IssuedAt),
		}
		if pm, ok := pms[inv.PaymentMethodID]; ok {
			// Brand and last four digits only.
			pi.PaymentMethod = &billingv1.PaymentMethod{Brand: string(pm.Brand), Last4: pm.Last4}
		}
		for _, r := range refunds {
			pi.Refunds = append(pi.Refunds, refundProto(r))
		}
		resp.Invoices = append(resp.Invoices, pi)
	}
	return resp, nil
}

// chargeProto converts c with its payment method and refunds.
func (svc *Service) chargeProto(ctx context.Context, c domain.Charge) (*billingv1.Charge, error) {
	var pm *domain.PaymentMethod
	if c.PaymentMethodID != "" {
		got, err := svc.store.PaymentMethod(ctx, svc.db, c.PaymentMethodID)
		if err != nil {
			return nil, fmt.Errorf("payment method of charge %s: %w", c.ID, err)
		}
		pm = &got
	}
	pc := chargeMessage(c, pm)
	refunds, err := svc.store.RefundsOfCharge(ctx, svc.db, c.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range refunds {
		pc.Refunds = append(pc.Refunds, refundProto(r))
	}
	return pc, nil
}

// chargeMessage converts c with pm (nil for none), without refunds.
func chargeMessage(c domain.Charge, pm *domain.PaymentMethod) *billingv1.Charge {
	pc := &billingv1.Charge{
		Id:             c.ID,
		AccountId:      c.AccountID,
		OrderId:        c.OrderID,
		SagaId:         c.SagaID,
		IdempotencyKey: c.IdempotencyKey,
		Amount:         moneyProto(c.Amount),
		Description:    c.Description,
		Status:         string(c.Status),
		DeclineCode:    string(c.DeclineCode),
		Refunded:       moneyProto(c.Refunded),
		CreatedAt:      timestamppb.New(c.CreatedAt),
	}
	if pm != nil {
		pc.PaymentMethod = paymentMethodProto(*pm)
	}
	return pc
}

// moneyProto converts m; a Money without a currency (no amount at all)
// is nil.
func moneyProto(m domain.Money) *billingv1.Money {
	if m.Currency == "" {
		return nil
	}
	return &billingv1.Money{AmountMinor: m.Minor, Currency: string(m.Currency)}
}

func paymentMethodProto(pm domain.PaymentMethod) *billingv1.PaymentMethod {
	return &billingv1.PaymentMethod{
		Id:        pm.ID,
		AccountId: pm.AccountID,
		Brand:     string(pm.Brand),
		Last4:     pm.Last4,
		ExpMonth:  int32(pm.ExpMonth),
		ExpYear:   int32(pm.ExpYear),
		CreatedAt: timestamppb.New(pm.CreatedAt),
	}
}

func refundProto(r domain.Refund) *billingv1.Refund {
	return &billingv1.Refund{
		Id:             r.ID,
		ChargeId:       r.ChargeID,
		OrderId:        r.OrderID,
		SagaId:         r.SagaID,
		IdempotencyKey: r.IdempotencyKey,
		Amount:         moneyProto(r.Amount),
		Status:         string(r.Status),
		Reason:         r.Reason,
		CreatedAt:      timestamppb.New(r.CreatedAt),
	}
}
