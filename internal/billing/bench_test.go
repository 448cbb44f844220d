package billing_test

import (
	"context"
	"testing"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	"github.com/marquee-tv/marquee/internal/billing"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// BenchmarkCharge measures the saga's payment step over gRPC: a Charge of
// a stored payment method behind the barrier (processor call, charge,
// invoice, outbox event and barrier row in one local transaction), on each
// backend, with 8 callers per CPU as the orchestrator's workers would be.
func BenchmarkCharge(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *storage.DB
	}{
		{"sqlite", func(tb testing.TB) *storage.DB { return storagetest.OpenSQLite(tb, "billing", billing.Migrations) }},
		{"postgres", func(tb testing.TB) *storage.DB { return storagetest.OpenPostgres(tb, "billing", billing.Migrations) }},
	} {
		b.Run(backend.name, func(b *testing.B) {
			e := serve(b, backend.open(b))
			o := newOrder()
			pm, err := e.client.CreatePaymentMethod(context.Background(), &billingv1.CreatePaymentMethodRequest{AccountId: o.account, Card: card(processor.CardApproved)})
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					oi := newOrder()
					oi.account = o.account
					if _, err := e.client.Charge(context.Background(), oi.chargeWith(1549, pm.GetPaymentMethod().GetId())); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
