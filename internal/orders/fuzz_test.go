package orders_test

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	"github.com/marquee-tv/marquee/internal/orders"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// FuzzCreateOrder sends arbitrary orders: each is accepted PENDING (or
// answered as the order its key already made) or refused with a client
// error, never an internal one.
func FuzzCreateOrder(f *testing.F) {
	f.Add("k1", "basic", "", cardOK, int32(12), int32(2030), "123")
	f.Add("k2", "", "t-0001", "4242 4242 4242 4242", int32(1), int32(2099), "000")
	f.Add("", "gold", "t-0002", "12", int32(13), int32(-1), "abcd")
	f.Add("k\x00", "../../etc", "t-0007", "4242424242424241", int32(0), int32(99999), "")
	h := newHarness(f, storagetest.OpenSQLite(f, "orders", orders.Migrations))
	ctx := as("fuzzer")
	f.Fuzz(func(t *testing.T, key, plan, title, number string, month, year int32, cvc string) {
		if !utf8s(key, plan, title, number, cvc) {
			t.Skip("proto strings are UTF-8; the client refuses to send others")
		}
		resp, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{
			IdempotencyKey: key, PlanId: plan, TitleId: title,
			Payment: &billingv1.PaymentCard{CardNumber: number, ExpMonth: month, ExpYear: year, Cvc: cvc},
		})
		switch status.Code(err) {
		case codes.OK:
			if resp.GetOrderId() == "" {
				t.Fatalf("CreateOrder accepted without an order id")
			}
		case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition:
		default:
			t.Fatalf("CreateOrder(key=%q plan=%q title=%q card=%q %d/%d cvc=%q) = %v, want ok or a client error", key, plan, title, number, month, year, cvc, err)
		}
	})
}

// FuzzListOrders sends arbitrary list requests: answered or
// InvalidArgument.
func FuzzListOrders(f *testing.F) {
	f.Add(int32(0), "", "")
	f.Add(int32(5), "bm90IGEgdG9rZW4", "PENDING")
	f.Add(int32(-3), "MjAzMC0wMS0wMlQwMzowNDowNVp8by0x", "done")
	h := newHarness(f, storagetest.OpenSQLite(f, "orders", orders.Migrations))
	ctx := as("fuzzer")
	f.Fuzz(func(t *testing.T, size int32, token, st string) {
		if !utf8s(token, st) {
			t.Skip("proto strings are UTF-8; the client refuses to send others")
		}
		_, err := h.client.ListOrders(ctx, &ordersv1.ListOrdersRequest{PageSize: size, PageToken: token, Status: st})
		if c := status.Code(err); c != codes.OK && c != codes.InvalidArgument {
			t.Fatalf("ListOrders(%d, %q, %q) = %v, want ok or InvalidArgument", size, token, st, err)
		}
	})
}

func utf8s(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
