package billing

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// fuzzServer is the service over a fresh SQLite database, with a fast
// slow card.
func fuzzServer(f *testing.F) *server {
	f.Helper()
	db := storagetest.OpenSQLite(f, "billing", Migrations)
	svc, err := NewService(context.Background(), db, Options{
		Processor: processor.NewSimulator(time.Millisecond),
		Now:       func() time.Time { return time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		f.Fatal(err)
	}
	return svc.server
}

// checkAnswer fails on an internal error, or on card digits (13 or more of
// the input) in the answer or the error.
func checkAnswer(t *testing.T, what, number string, answer string, err error) {
	t.Helper()
	switch code := status.Code(err); code {
	case codes.OK, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Unavailable, codes.Aborted, codes.Unauthenticated:
	default:
		t.Fatalf("%s: error %v, want a client error", what, err)
	}
	digits := strings.NewReplacer(" ", "", "-", "").Replace(number)
	if len(digits) >= 13 {
		if strings.Contains(answer, digits) || (err != nil && strings.Contains(err.Error(), digits)) {
			t.Fatalf("%s: the answer holds the card number: %s %v", what, answer, err)
		}
	}
}

// FuzzCharge feeds arbitrary Charge requests to the handler: it must never
// panic, never fail internally, and never echo the card number.
func FuzzCharge(f *testing.F) {
	s := fuzzServer(f)
	f.Add("k1", "o1", "s1", "a1", int64(1549), "USD", "Standard plan, monthly", processor.CardApproved, int32(12), int32(2030), "123", "")
	f.Add("k2", "o2", "s2", "a2", int64(799), "USD", "", processor.CardDeclined, int32(1), int32(2027), "000", "")
	f.Add("k3", "o3", "s3", "a3", int64(399), "USD", "rental", processor.CardUnavailable, int32(6), int32(2029), "999", "")
	f.Add("k4", "o4", "s4", "a4", int64(1), "EUR", "x", "3782 822463 10005", int32(6), int32(2029), "1234", "")
	f.Add("k1", "o1", "s1", "a1", int64(1550), "USD", "Standard plan, monthly", processor.CardApproved, int32(12), int32(2030), "123", "")
	f.Add("k5", "o5", "s5", "a5", int64(100), "USD", "", "", int32(0), int32(0), "", "pm-unknown")
	f.Add("", "", "", "", int64(-1), "usd", "\x00", "4242424242424241", int32(13), int32(99), "12a", "")
	f.Fuzz(func(t *testing.T, key, orderID, sagaID, account string, minor int64, currency, desc, number string, month, year int32, cvc, pmID string) {
		req := &billingv1.ChargeRequest{IdempotencyKey: key, OrderId: orderID, SagaId: sagaID, AccountId: account,
			Amount: &billingv1.Money{AmountMinor: minor, Currency: currency}, Description: desc}
		if pmID != "" {
			req.Source = &billingv1.ChargeRequest_PaymentMethodId{PaymentMethodId: pmID}
		} else {
			req.Source = &billingv1.ChargeRequest_Payment{Payment: &billingv1.PaymentCard{CardNumber: number, ExpMonth: month, ExpYear: year, Cvc: cvc}}
		}
		resp, err := s.Charge(context.Background(), req)
		checkAnswer(t, "Charge", number, resp.String(), err)
		if err == nil && resp.GetCharge().GetId() == "" {
			t.Fatalf("Charge answered no charge and no error")
		}
		rr, err := s.Refund(context.Background(), &billingv1.RefundRequest{IdempotencyKey: key + "/r", OrderId: orderID, SagaId: sagaID, AccountId: account, ChargeIdempotencyKey: key, Reason: desc})
		checkAnswer(t, "Refund", number, rr.String(), err)
	})
}

// FuzzCreatePaymentMethod feeds arbitrary cards to CreatePaymentMethod.
func FuzzCreatePaymentMethod(f *testing.F) {
	s := fuzzServer(f)
	f.Add("k1", "a1", processor.CardApproved, int32(12), int32(2030), "123")
	f.Add("k1", "a1", "5555555555554444", int32(12), int32(2030), "123")
	f.Add("", "a2", "4242-4242-4242-4242", int32(3), int32(2026), "999")
	f.Add("k3", "", "", int32(0), int32(0), "")
	f.Fuzz(func(t *testing.T, key, account, number string, month, year int32, cvc string) {
		resp, err := s.CreatePaymentMethod(context.Background(), &billingv1.CreatePaymentMethodRequest{IdempotencyKey: key, AccountId: account,
			Card: &billingv1.PaymentCard{CardNumber: number, ExpMonth: month, ExpYear: year, Cvc: cvc}})
		checkAnswer(t, "CreatePaymentMethod", number, resp.String(), err)
		if err == nil {
			if pm := resp.GetPaymentMethod(); len(pm.GetLast4()) != 4 || pm.GetBrand() == "" {
				t.Fatalf("CreatePaymentMethod = %v, want brand and last4", pm)
			}
		}
	})
}

// FuzzListInvoices feeds arbitrary page requests to ListInvoices.
func FuzzListInvoices(f *testing.F) {
	s := fuzzServer(f)
	f.Add("acct", int32(0), "")
	f.Add("acct", int32(101), "AQ")
	f.Add("", int32(5), "x")
	f.Fuzz(func(t *testing.T, account string, size int32, token string) {
		ctx := context.Background()
		if account != "" {
			ctx = metadata.NewIncomingContext(ctx, principal.Principal{AccountID: account}.MD())
		}
		resp, err := s.ListInvoices(ctx, &billingv1.ListInvoicesRequest{PageSize: size, PageToken: token})
		checkAnswer(t, "ListInvoices", "", resp.String(), err)
		plans, err := s.ListPlans(ctx, &billingv1.ListPlansRequest{PageSize: size, PageToken: token})
		checkAnswer(t, "ListPlans", "", plans.String(), err)
	})
}
