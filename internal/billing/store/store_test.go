package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/store"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 123456000, time.UTC)

func usd(n int64) domain.Money { return domain.NewMoney(n, domain.USD) }

// fixture is a database with a customer and a payment method.
type fixture struct {
	db *storage.DB
	st *store.Store
	pm domain.PaymentMethod
}

func newFixture(t *testing.T, db *storage.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	st := store.New()
	if err := st.CheckSchema(ctx, db); err != nil {
		t.Fatalf("CheckSchema: %v", err)
	}
	f := &fixture{db: db, st: st}
	f.pm = f.addPM(t, "acct-1", "pm-1", "key-1")
	return f
}

func (f *fixture) addPM(t *testing.T, account, id, key string) domain.PaymentMethod {
	t.Helper()
	ctx := context.Background()
	if _, err := f.st.EnsureCustomer(ctx, f.db, account, "cus-"+account, t0); err != nil {
		t.Fatalf("EnsureCustomer(%s): %v", account, err)
	}
	pm := domain.PaymentMethod{ID: id, AccountID: account, Brand: domain.BrandVisa, Last4: "4242", ExpMonth: 12, ExpYear: 2030,
		Token: "tok_" + id, TokenClass: "approve", IdempotencyKey: key, CreatedAt: t0}
	if err := f.st.InsertPaymentMethod(ctx, f.db, pm); err != nil {
		t.Fatalf("InsertPaymentMethod(%s): %v", id, err)
	}
	return pm
}

func (f *fixture) charge(id, key, order, account string, status domain.ChargeStatus, minor int64, at time.Time) domain.Charge {
	c := domain.Charge{ID: id, IdempotencyKey: key, SagaID: "saga-" + order, OrderID: order, AccountID: account,
		Amount: usd(minor), Description: "Standard plan, monthly", Status: status, PaymentMethodID: f.pm.ID,
		Refunded: usd(0), CreatedAt: at}
	switch status {
	case domain.ChargeSucceeded:
		c.ProcessorRef = "ch_" + id
	case domain.ChargeDeclined:
		c.DeclineCode = domain.DeclineCardDeclined
	case domain.ChargeCancelled:
		c.PaymentMethodID = ""
	}
	return c
}

// TestStore is the repository contract suite: every case runs on SQLite
// and on PostgreSQL, each on emptied tables of one database per backend.
func TestStore(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"customers and payment methods", testCustomersAndPaymentMethods},
		{"charges", testCharges},
		{"refund limits", testRefundLimits},
		{"refunds", testRefunds},
		{"invoice pages", testListInvoicesPages},
		{"charge pages", testListCharges},
		{"charge attempts", testChargeAttempts},
	}
	storagetest.ForEach(t, "billing", store.Migrations, func(t *testing.T, db *storage.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, table := range []string{"invoices", "refunds", "charges", "payment_methods", "customers", "charge_attempts"} {
					if _, err := db.Exec(context.Background(), "DELETE FROM "+table); err != nil {
						t.Fatalf("empty %s: %v", table, err)
					}
				}
				c.fn(t, newFixture(t, db))
			})
		}
	})
}

func testCustomersAndPaymentMethods(t *testing.T, f *fixture) {
	ctx := context.Background()
	id, err := f.st.EnsureCustomer(ctx, f.db, "acct-1", "cus-other", t0)
	if err != nil || id != "cus-acct-1" {
		t.Errorf("EnsureCustomer(acct-1) again = %q, %v, want the first id cus-acct-1", id, err)
	}
	got, err := f.st.PaymentMethod(ctx, f.db, "pm-1")
	if err != nil || got != f.pm {
		t.Errorf("PaymentMethod(pm-1) = %+v, %v, want %+v", got, err, f.pm)
	}
	if got, err := f.st.PaymentMethodByKey(ctx, f.db, "acct-1", "key-1"); err != nil || got.ID != "pm-1" {
		t.Errorf("PaymentMethodByKey(acct-1, key-1) = %v, %v, want pm-1", got.ID, err)
	}
	if _, err := f.st.PaymentMethodByKey(ctx, f.db, "acct-2", "key-1"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("PaymentMethodByKey(acct-2, key-1) error = %v, want ErrNotFound", err)
	}
	if _, err := f.st.PaymentMethod(ctx, f.db, "pm-x"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("PaymentMethod(pm-x) error = %v, want ErrNotFound", err)
	}
	// The same key under another account, and no key twice, are fine.
	f.addPM(t, "acct-2", "pm-2", "key-1")
	f.addPM(t, "acct-2", "pm-3", "")
	f.addPM(t, "acct-2", "pm-4", "")
	if got, err := f.st.PaymentMethod(ctx, f.db, "pm-3"); err != nil || got.IdempotencyKey != "" {
		t.Errorf("PaymentMethod(pm-3) = %+v, %v, want no key", got, err)
	}
	dup := f.pm
	dup.ID, dup.Token = "pm-5", "tok_other"
	if err := f.st.InsertPaymentMethod(ctx, f.db, dup); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("InsertPaymentMethod(same account and key) error = %v, want ErrDuplicate", err)
	}
	dup = f.pm
	dup.ID, dup.IdempotencyKey = "pm-6", "key-6"
	if err := f.st.InsertPaymentMethod(ctx, f.db, dup); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("InsertPaymentMethod(same token) error = %v, want ErrDuplicate", err)
	}
	orphan := domain.PaymentMethod{ID: "pm-7", AccountID: "no-customer", Brand: "visa", Last4: "4242", ExpMonth: 1, ExpYear: 2030, Token: "tok_7", TokenClass: "approve", CreatedAt: t0}
	if err := f.st.InsertPaymentMethod(ctx, f.db, orphan); err == nil {
		t.Errorf("InsertPaymentMethod(without customer) = nil, want an error")
	}
	pms, err := f.st.PaymentMethods(ctx, f.db, []string{"pm-1", "pm-2", "pm-x", "pm-1", ""})
	if err != nil || len(pms) != 2 || pms["pm-2"].AccountID != "acct-2" {
		t.Errorf("PaymentMethods = %v, %v, want pm-1 and pm-2", pms, err)
	}
}

func testCharges(t *testing.T, f *fixture) {
	ctx := context.Background()
	ok := f.charge("ch-1", "k-1", "o-1", "acct-1", domain.ChargeSucceeded, 1549, t0)
	if err := f.st.InsertCharge(ctx, f.db, ok); err != nil {
		t.Fatalf("InsertCharge: %v", err)
	}
	for name, get := range map[string]func() (domain.Charge, error){
		"Charge":                 func() (domain.Charge, error) { return f.st.Charge(ctx, f.db, "ch-1") },
		"ChargeByKey":            func() (domain.Charge, error) { return f.st.ChargeByKey(ctx, f.db, "k-1") },
		"SucceededChargeOfOrder": func() (domain.Charge, error) { return f.st.SucceededChargeOfOrder(ctx, f.db, "o-1") },
	} {
		if got, err := get(); err != nil || got != ok {
			t.Errorf("%s = %+v, %v, want %+v", name, got, err, ok)
		}
	}
	if _, err := f.st.ChargeByKey(ctx, f.db, "k-x"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("ChargeByKey(k-x) error = %v, want ErrNotFound", err)
	}
	tests := []struct {
		name    string
		c       domain.Charge
		wantErr error
	}{
		{"same key", f.charge("ch-2", "k-1", "o-2", "acct-1", domain.ChargeSucceeded, 100, t0), store.ErrDuplicate},
		{"same id", f.charge("ch-1", "k-2", "o-2", "acct-1", domain.ChargeSucceeded, 100, t0), store.ErrDuplicate},
		{"second success of the order", f.charge("ch-3", "k-3", "o-1", "acct-1", domain.ChargeSucceeded, 100, t0), store.ErrDuplicate},
		{"declined of the order", f.charge("ch-4", "k-4", "o-1", "acct-1", domain.ChargeDeclined, 1549, t0), nil},
		{"cancelled of the order", f.charge("ch-5", "k-5", "o-1", "acct-1", domain.ChargeCancelled, 1549, t0), nil},
	}
	for _, tt := range tests {
		if err := f.st.InsertCharge(ctx, f.db, tt.c); !errors.Is(err, tt.wantErr) {
			t.Errorf("InsertCharge(%s) error = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if got, err := f.st.ChargeByKey(ctx, f.db, "k-5"); err != nil || got.PaymentMethodID != "" || got.Status != domain.ChargeCancelled {
		t.Errorf("cancelled charge = %+v, %v, want no payment method", got, err)
	}
	if err := f.st.NoteVoid(ctx, f.db, "k-5", "ch_void"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.NoteVoid(ctx, f.db, "k-5", "ch_other"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.NoteVoid(ctx, f.db, "k-1", "ch_other"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.st.ChargeByKey(ctx, f.db, "k-5"); got.ProcessorRef != "ch_void" {
		t.Errorf("NoteVoid twice: processor ref = %q, want the first, ch_void", got.ProcessorRef)
	}
	if got, _ := f.st.ChargeByKey(ctx, f.db, "k-1"); got.ProcessorRef != "ch_ch-1" {
		t.Errorf("NoteVoid on a succeeded charge changed its ref to %q", got.ProcessorRef)
	}
}

func testRefundLimits(t *testing.T, f *fixture) {
	ctx := context.Background()
	for _, c := range []domain.Charge{
		f.charge("ch-1", "k-1", "o-1", "acct-1", domain.ChargeSucceeded, 1549, t0),
		f.charge("ch-2", "k-2", "o-2", "acct-1", domain.ChargeDeclined, 1549, t0),
	} {
		if err := f.st.InsertCharge(ctx, f.db, c); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		charge  string
		amount  domain.Money
		want    domain.Money
		wantErr error
	}{
		{"ch-1", usd(549), usd(549), nil},
		{"ch-1", usd(1001), domain.Money{}, domain.ErrRefundExceedsCharge},
		{"ch-1", domain.NewMoney(10, "EUR"), domain.Money{}, domain.ErrRefundExceedsCharge},
		{"ch-1", usd(1000), usd(1549), nil},
		{"ch-1", usd(1), domain.Money{}, domain.ErrRefundExceedsCharge},
		{"ch-2", usd(1), domain.Money{}, domain.ErrRefundExceedsCharge},
		{"ch-x", usd(1), domain.Money{}, domain.ErrRefundExceedsCharge},
	}
	for _, s := range steps {
		got, err := f.st.AddRefunded(ctx, f.db, s.charge, s.amount)
		if got != s.want || !errors.Is(err, s.wantErr) {
			t.Errorf("AddRefunded(%s, %s) = %v, %v, want %v, %v", s.charge, s.amount, got, err, s.want, s.wantErr)
		}
	}
	if _, err := f.st.AddRefunded(ctx, f.db, "ch-1", usd(0)); err == nil {
		t.Errorf("AddRefunded(0) = nil, want an error")
	}
	// The schema itself refuses what the code must never do.
	for _, q := range []string{
		"UPDATE charges SET refunded_minor = amount_minor + 1 WHERE id = 'ch-1'",
		"UPDATE charges SET refunded_minor = -1 WHERE id = 'ch-1'",
		"UPDATE charges SET refunded_minor = 1 WHERE id = 'ch-2'",
	} {
		if _, err := f.db.Exec(ctx, q); err == nil {
			t.Errorf("%s succeeded, want a check violation", q)
		}
	}
}

func testRefunds(t *testing.T, f *fixture) {
	ctx := context.Background()
	if err := f.st.InsertCharge(ctx, f.db, f.charge("ch-1", "k-1", "o-1", "acct-1", domain.ChargeSucceeded, 1549, t0)); err != nil {
		t.Fatal(err)
	}
	ok := domain.Refund{ID: "re-1", IdempotencyKey: "rk-1", SagaID: "saga-o-1", OrderID: "o-1", AccountID: "acct-1",
		ChargeIdempotencyKey: "k-1", ChargeID: "ch-1", Amount: usd(1549), Status: domain.RefundSucceeded, Reason: "title withdrawn",
		ProcessorRef: "re_1", CreatedAt: t0}
	nothing := domain.Refund{ID: "re-2", IdempotencyKey: "rk-2", SagaID: "saga-o-2", OrderID: "o-2", AccountID: "acct-1",
		ChargeIdempotencyKey: "k-2", Status: domain.RefundNothingToRefund, CreatedAt: t0.Add(time.Second)}
	for _, r := range []domain.Refund{ok, nothing} {
		if err := f.st.InsertRefund(ctx, f.db, r); err != nil {
			t.Fatalf("InsertRefund(%s): %v", r.ID, err)
		}
	}
	if got, err := f.st.RefundByKey(ctx, f.db, "rk-1"); err != nil || got != ok {
		t.Errorf("RefundByKey(rk-1) = %+v, %v, want %+v", got, err, ok)
	}
	if got, err := f.st.Refund(ctx, f.db, "re-2"); err != nil || got != nothing {
		t.Errorf("Refund(re-2) = %+v, %v, want %+v", got, err, nothing)
	}
	if got, err := f.st.RefundsOfChargeKey(ctx, f.db, "k-2"); err != nil || len(got) != 1 || got[0].ID != "re-2" {
		t.Errorf("RefundsOfChargeKey(k-2) = %v, %v, want re-2", got, err)
	}
	if got, err := f.st.RefundsOfCharge(ctx, f.db, "ch-1"); err != nil || len(got) != 1 || got[0].ID != "re-1" {
		t.Errorf("RefundsOfCharge(ch-1) = %v, %v, want re-1", got, err)
	}
	if _, err := f.st.RefundByKey(ctx, f.db, "rk-x"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("RefundByKey(rk-x) error = %v, want ErrNotFound", err)
	}
	bad := []struct {
		name string
		r    domain.Refund
	}{
		{"same key", domain.Refund{ID: "re-3", IdempotencyKey: "rk-1", SagaID: "s", OrderID: "o", AccountID: "a", ChargeIdempotencyKey: "k", Status: domain.RefundNothingToRefund, CreatedAt: t0}},
		{"nothing with a charge", domain.Refund{ID: "re-4", IdempotencyKey: "rk-4", SagaID: "s", OrderID: "o", AccountID: "a", ChargeIdempotencyKey: "k-1", ChargeID: "ch-1", Status: domain.RefundNothingToRefund, CreatedAt: t0}},
		{"succeeded of nothing", domain.Refund{ID: "re-5", IdempotencyKey: "rk-5", SagaID: "s", OrderID: "o", AccountID: "a", ChargeIdempotencyKey: "k-1", ChargeID: "ch-1", Amount: usd(0), Status: domain.RefundSucceeded, CreatedAt: t0}},
		{"unknown charge", domain.Refund{ID: "re-6", IdempotencyKey: "rk-6", SagaID: "s", OrderID: "o", AccountID: "a", ChargeIdempotencyKey: "k-1", ChargeID: "ch-x", Amount: usd(1), Status: domain.RefundSucceeded, CreatedAt: t0}},
	}
	for _, b := range bad {
		if err := f.st.InsertRefund(ctx, f.db, b.r); err == nil {
			t.Errorf("InsertRefund(%s) = nil, want an error", b.name)
		}
	}
}

func testListInvoicesPages(t *testing.T, f *fixture) {
	ctx := context.Background()
	other := f.addPM(t, "acct-2", "pm-2", "")
	var want []string
	// Seven invoices of acct-1, three of them at the same instant (the
	// id breaks the tie), and one of acct-2.
	for i := 0; i < 7; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		if i >= 4 {
			at = t0.Add(4 * time.Minute)
		}
		id := fmt.Sprintf("inv-%d", i)
		c := f.charge(fmt.Sprintf("ch-%d", i), fmt.Sprintf("k-%d", i), fmt.Sprintf("o-%d", i), "acct-1", domain.ChargeSucceeded, int64(100+i), at)
		if err := f.st.InsertCharge(ctx, f.db, c); err != nil {
			t.Fatal(err)
		}
		if err := f.st.InsertInvoice(ctx, f.db, domain.Invoice{ID: id, AccountID: "acct-1", OrderID: c.OrderID, ChargeID: c.ID,
			Description: c.Description, Amount: c.Amount, PaymentMethodID: f.pm.ID, IssuedAt: at}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	slices.Reverse(want) // inv-6, inv-5, inv-4 share a time: id descending
	c := f.charge("ch-x", "k-x", "o-x", "acct-2", domain.ChargeSucceeded, 999, t0)
	c.PaymentMethodID = other.ID
	if err := f.st.InsertCharge(ctx, f.db, c); err != nil {
		t.Fatal(err)
	}
	if err := f.st.InsertInvoice(ctx, f.db, domain.Invoice{ID: "inv-x", AccountID: "acct-2", OrderID: "o-x", ChargeID: "ch-x",
		Description: "x", Amount: usd(999), PaymentMethodID: other.ID, IssuedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.InsertInvoice(ctx, f.db, domain.Invoice{ID: "inv-dup", AccountID: "acct-2", OrderID: "o-x", ChargeID: "ch-x",
		Description: "x", Amount: usd(999), PaymentMethodID: other.ID, IssuedAt: t0}); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("second invoice of a charge: error = %v, want ErrDuplicate", err)
	}
	if _, err := f.st.AddRefunded(ctx, f.db, "ch-6", usd(6)); err != nil {
		t.Fatal(err)
	}

	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatalf("ListInvoices does not end")
		}
		page, next, err := f.st.ListInvoices(ctx, f.db, "acct-1", 3, token)
		if err != nil {
			t.Fatalf("ListInvoices(page %d): %v", pages, err)
		}
		for _, inv := range page {
			got = append(got, inv.ID)
			if inv.ID == "inv-6" && (inv.Refunded != usd(6) || inv.Status() != domain.InvoicePartiallyRefunded) {
				t.Errorf("inv-6 refunded = %v (%s), want 6 USD partially_refunded", inv.Refunded, inv.Status())
			}
			if inv.ID == "inv-0" && (!inv.IssuedAt.Equal(t0) || inv.Amount != usd(100) || inv.PaymentMethodID != "pm-1") {
				t.Errorf("inv-0 = %+v, want issued %s, 100 USD, pm-1", inv, t0)
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListInvoices pages = %v, want %v", got, want)
	}
	first, next, err := f.st.ListInvoices(ctx, f.db, "acct-1", 3, "")
	if err != nil || len(first) != 3 {
		t.Fatalf("ListInvoices = %v, %v", first, err)
	}
	if _, _, err := f.st.ListInvoices(ctx, f.db, "acct-2", 3, next); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("ListInvoices(acct-2, token of acct-1) error = %v, want an invalid page_token", err)
	}
	if got, _, err := f.st.ListInvoices(ctx, f.db, "acct-2", 10, ""); err != nil || len(got) != 1 || got[0].ID != "inv-x" {
		t.Errorf("ListInvoices(acct-2) = %v, %v, want inv-x only", got, err)
	}
}

func testListCharges(t *testing.T, f *fixture) {
	ctx := context.Background()
	charges := []domain.Charge{
		f.charge("ch-a", "k-a", "o-1", "acct-1", domain.ChargeDeclined, 100, t0),
		f.charge("ch-b", "k-b", "o-1", "acct-1", domain.ChargeSucceeded, 100, t0.Add(time.Second)),
		f.charge("ch-c", "k-c", "o-2", "acct-1", domain.ChargeSucceeded, 100, t0.Add(2*time.Second)),
		f.charge("ch-d", "k-d", "o-3", "acct-2", domain.ChargeSucceeded, 100, t0.Add(3*time.Second)),
	}
	for _, c := range charges {
		if err := f.st.InsertCharge(ctx, f.db, c); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		filter store.ChargeFilter
		want   []string
	}{
		{store.ChargeFilter{}, []string{"ch-d", "ch-c", "ch-b", "ch-a"}},
		{store.ChargeFilter{OrderID: "o-1"}, []string{"ch-b", "ch-a"}},
		{store.ChargeFilter{AccountID: "acct-1"}, []string{"ch-c", "ch-b", "ch-a"}},
		{store.ChargeFilter{AccountID: "acct-2", OrderID: "o-1"}, nil},
	}
	for _, tt := range tests {
		var got []string
		token := ""
		for i := 0; i < 10; i++ {
			page, next, err := f.st.ListCharges(ctx, f.db, tt.filter, 1, token)
			if err != nil {
				t.Fatalf("ListCharges(%+v): %v", tt.filter, err)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if token = next; token == "" {
				break
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListCharges(%+v) = %v, want %v", tt.filter, got, tt.want)
		}
	}
	_, next, err := f.st.ListCharges(ctx, f.db, store.ChargeFilter{OrderID: "o-1"}, 1, "")
	if err != nil || next == "" {
		t.Fatalf("ListCharges(o-1) next = %q, %v", next, err)
	}
	if _, _, err := f.st.ListCharges(ctx, f.db, store.ChargeFilter{OrderID: "o-2"}, 1, next); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("ListCharges(o-2, token of o-1) error = %v, want an invalid page_token", err)
	}
}

func testChargeAttempts(t *testing.T, f *fixture) {
	ctx := context.Background()
	if err := f.st.BeginAttempt(ctx, f.db, "k-1", "s-1", "a-1", t0, t0.Add(time.Minute)); err != nil {
		t.Fatalf("BeginAttempt: %v", err)
	}
	if err := f.st.BeginAttempt(ctx, f.db, "k-1", "s-1", "a-2", t0.Add(time.Second), t0.Add(time.Minute)); !errors.Is(err, domain.ErrInProgress) {
		t.Errorf("BeginAttempt while held: error = %v, want ErrInProgress", err)
	}
	if busy, err := f.st.AttemptUnderWay(ctx, f.db, "k-1", t0.Add(30*time.Second)); err != nil || !busy {
		t.Errorf("AttemptUnderWay(k-1, before expiry) = %v, %v, want true", busy, err)
	}
	if busy, err := f.st.AttemptUnderWay(ctx, f.db, "k-1", t0.Add(time.Minute)); err != nil || busy {
		t.Errorf("AttemptUnderWay(k-1, at expiry) = %v, %v, want false", busy, err)
	}
	// An expired attempt is taken over; its owner can no longer end it.
	if err := f.st.BeginAttempt(ctx, f.db, "k-1", "s-1", "a-3", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); err != nil {
		t.Errorf("BeginAttempt after expiry: %v, want a takeover", err)
	}
	if err := f.st.EndAttempt(ctx, f.db, "k-1", "a-1"); err != nil {
		t.Fatal(err)
	}
	if busy, _ := f.st.AttemptUnderWay(ctx, f.db, "k-1", t0.Add(2*time.Minute)); !busy {
		t.Errorf("EndAttempt by the expired owner removed the new attempt")
	}
	if err := f.st.EndAttempt(ctx, f.db, "k-1", "a-3"); err != nil {
		t.Fatal(err)
	}
	if busy, _ := f.st.AttemptUnderWay(ctx, f.db, "k-1", t0.Add(2*time.Minute)); busy {
		t.Errorf("EndAttempt by its owner left the attempt")
	}
	if err := f.st.BeginAttempt(ctx, f.db, "k-1", "s-1", "a-4", t0, t0.Add(time.Minute)); err != nil {
		t.Errorf("BeginAttempt after EndAttempt: %v", err)
	}
}
