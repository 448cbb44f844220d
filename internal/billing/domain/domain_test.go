package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
)

// now is the test clock.
var now = time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)

func TestLuhn(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"4242424242424242", true},
		{"4000000000000002", true},
		{"4000000000009995", true},
		{"4000000000000119", true},
		{"4000000000000259", true},
		{"378282246310005", true},
		{"5555555555554444", true},
		{"6011111111111117", true},
		{"4242424242424241", false},
		{"4242424242424243", false},
		{"0", true},
		{"18", true},
		{"", false},
		{"42a2", false},
		{"4242 4242 4242 4242", false}, // Luhn takes digits only
		{"79927398713", true},
		{"79927398710", false},
	}
	for _, tt := range tests {
		if got := domain.Luhn(tt.in); got != tt.want {
			t.Errorf("Luhn(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDetectBrand(t *testing.T) {
	tests := []struct {
		in   string
		want domain.Brand
	}{
		{"4242424242424242", domain.BrandVisa},
		{"4000000000000002", domain.BrandVisa},
		{"5555555555554444", domain.BrandMastercard},
		{"5105105105105100", domain.BrandMastercard},
		{"2223003122003222", domain.BrandMastercard},
		{"2720990000000007", domain.BrandMastercard},
		{"2220990000000008", domain.BrandUnknown},
		{"2721000000000000", domain.BrandUnknown},
		{"378282246310005", domain.BrandAmex},
		{"371449635398431", domain.BrandAmex},
		{"6011111111111117", domain.BrandDiscover},
		{"6221260000000000", domain.BrandDiscover},
		{"6229250000000000", domain.BrandDiscover},
		{"6221250000000000", domain.BrandUnknown},
		{"6445000000000000", domain.BrandDiscover},
		{"6500000000000002", domain.BrandDiscover},
		{"3530111333300000", domain.BrandUnknown}, // JCB
		{"36227206271667", domain.BrandUnknown},   // Diners
		{"", domain.BrandUnknown},
		{"5", domain.BrandUnknown},
	}
	for _, tt := range tests {
		if got := domain.DetectBrand(tt.in); got != tt.want {
			t.Errorf("DetectBrand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// fields lists the fields of the card errors inside err.
func fields(err error) []string {
	var out []string
	for _, f := range domain.FieldErrors(err, "") {
		out = append(out, f.Field)
	}
	return out
}

func TestParseCard(t *testing.T) {
	type in struct {
		number     string
		month, yr  int
		cvc        string
		brand      domain.Brand
		last4      string
		badFields  []string
		reasonPart string
	}
	tests := []in{
		{number: "4242424242424242", month: 12, yr: 2030, cvc: "123", brand: domain.BrandVisa, last4: "4242"},
		{number: "4242 4242 4242 4242", month: 1, yr: 2027, cvc: "000", brand: domain.BrandVisa, last4: "4242"},
		{number: "4242-4242-4242-4242", month: 3, yr: 2026, cvc: "999", brand: domain.BrandVisa, last4: "4242"}, // expires end of this month
		{number: "3782 822463 10005", month: 6, yr: 2031, cvc: "1234", brand: domain.BrandAmex, last4: "0005"},
		{number: "5555555555554444", month: 6, yr: 2031, cvc: "321", brand: domain.BrandMastercard, last4: "4444"},
		{number: "6011111111111117", month: 6, yr: 2031, cvc: "321", brand: domain.BrandDiscover, last4: "1117"},
		{number: "3530111333300000", month: 6, yr: 2031, cvc: "321", brand: domain.BrandUnknown, last4: "0000"},
		{number: "4222222222222", month: 6, yr: 2031, cvc: "321", brand: domain.BrandVisa, last4: "2222"}, // 13-digit visa
		// Invalid numbers.
		{number: "", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "required"},
		{number: "4242424242424241", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "Luhn"},
		{number: "4242.4242.4242.4242", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "digits"},
		{number: "424242424242", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "13 to 19"},
		{number: "42424242424242424242", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "13 to 19"},
		{number: strings.Repeat(" ", 70) + "4242424242424242", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "at most"},
		{number: "４２４２４２４２４２４２４２４２", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}},
		{number: "378282246310005", month: 12, yr: 2030, cvc: "123", badFields: []string{"cvc"}, reasonPart: "4 digits"}, // amex wants 4
		{number: "4242424242424242", month: 12, yr: 2030, cvc: "1234", badFields: []string{"cvc"}, reasonPart: "3 digits"},
		{number: "4242424242424242", month: 12, yr: 2030, cvc: "12a", badFields: []string{"cvc"}},
		{number: "4242424242424242", month: 12, yr: 2030, cvc: "", badFields: []string{"cvc"}},
		{number: "42424242424242426", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "length"}, // Luhn-valid 17-digit visa
		{number: "555555555555442", month: 12, yr: 2030, cvc: "123", badFields: []string{"card_number"}, reasonPart: "length"},   // 15-digit mastercard
		// Expiry.
		{number: "4242424242424242", month: 2, yr: 2026, cvc: "123", badFields: []string{"exp_year"}, reasonPart: "expired"},
		{number: "4242424242424242", month: 12, yr: 2025, cvc: "123", badFields: []string{"exp_year"}, reasonPart: "expired"},
		{number: "4242424242424242", month: 0, yr: 2030, cvc: "123", badFields: []string{"exp_month"}},
		{number: "4242424242424242", month: 13, yr: 2030, cvc: "123", badFields: []string{"exp_month"}},
		{number: "4242424242424242", month: 12, yr: 30, cvc: "123", badFields: []string{"exp_year"}, reasonPart: "four digits"},
		{number: "4242424242424242", month: 12, yr: 2047, cvc: "123", badFields: []string{"exp_year"}, reasonPart: "years ahead"},
		// Everything wrong at once is reported at once.
		{number: "1234", month: 0, yr: 0, cvc: "x", badFields: []string{"card_number", "exp_month", "exp_year", "cvc"}},
	}
	for _, tt := range tests {
		call := fmt.Sprintf("ParseCard(%q, %d, %d, %q)", tt.number, tt.month, tt.yr, tt.cvc)
		card, err := domain.ParseCard(tt.number, tt.month, tt.yr, tt.cvc, now)
		if tt.badFields != nil {
			if !errors.Is(err, domain.ErrInvalidCard) || !errors.Is(err, domain.ErrInvalidArgument) {
				t.Errorf("%s error = %v, want an invalid card", call, err)
				continue
			}
			if got := fields(err); !slices.Equal(got, tt.badFields) {
				t.Errorf("%s bad fields = %q, want %q", call, got, tt.badFields)
			}
			if tt.reasonPart != "" && !strings.Contains(err.Error(), tt.reasonPart) {
				t.Errorf("%s error = %q, want it to mention %q", call, err, tt.reasonPart)
			}
			if digits := strings.NewReplacer(" ", "", "-", "").Replace(tt.number); len(digits) >= 8 && strings.Contains(err.Error(), digits) {
				t.Errorf("%s error = %q, which holds the card number", call, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s error = %v, want nil", call, err)
			continue
		}
		if card.Brand() != tt.brand || card.Last4() != tt.last4 || card.ExpMonth() != tt.month || card.ExpYear() != tt.yr || card.CVC() != tt.cvc {
			t.Errorf("%s = %s %s %d/%d, want %s %s %d/%d", call, card.Brand(), card.Last4(), card.ExpMonth(), card.ExpYear(), tt.brand, tt.last4, tt.month, tt.yr)
		}
		if want := strings.NewReplacer(" ", "", "-", "").Replace(tt.number); card.Number() != want {
			t.Errorf("%s.Number() = %q, want %q", call, card.Number(), want)
		}
	}
}

func TestCheckExpiry(t *testing.T) {
	tests := []struct {
		month, year int
		at          time.Time
		wantErr     bool
	}{
		{3, 2026, now, false},
		{3, 2026, time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC), false},
		{3, 2026, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), true},
		{3, 2026, time.Date(2026, 3, 31, 20, 0, 0, 0, time.FixedZone("west", -5*3600)), true}, // 01:00 UTC on April 1
		{2, 2026, now, true},
		{1, 2046, now, false},
		{1, 2047, now, true},
	}
	for _, tt := range tests {
		err := domain.CheckExpiry(tt.month, tt.year, tt.at)
		if (err != nil) != tt.wantErr {
			t.Errorf("CheckExpiry(%d, %d, %s) = %v, want error %v", tt.month, tt.year, tt.at.Format(time.RFC3339), err, tt.wantErr)
		}
	}
}

// TestCardNeverPrintsNumber checks every way of printing a card.
func TestCardNeverPrintsNumber(t *testing.T) {
	card, err := domain.ParseCard("4000 0000 0000 0259", 12, 2030, "987", now)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("card", "card", card, "ptr", &card)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("card", "card", card)
	js, _ := json.Marshal(card)
	jsPtr, _ := json.Marshal(struct{ C *domain.Card }{&card})
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", card), "%+v": fmt.Sprintf("%+v", card), "%#v": fmt.Sprintf("%#v", card),
		"%s": fmt.Sprintf("%s", card), "%q": fmt.Sprintf("%q", card), "%x": fmt.Sprintf("%x", card),
		"%d": fmt.Sprintf("%d", card), "&%v": fmt.Sprintf("%v", &card), "in struct": fmt.Sprintf("%+v", struct{ C domain.Card }{card}),
		"slog": logged.String(), "json": string(js), "json ptr": string(jsPtr), "String": card.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, "4000000000000259") || strings.Contains(out, "987") {
			t.Errorf("printing a card with %s = %q, which holds its number or CVC", how, out)
		}
		if !strings.Contains(out, "0259") {
			t.Errorf("printing a card with %s = %q, want its last four digits", how, out)
		}
	}
}

func TestMoneyArithmetic(t *testing.T) {
	usd := func(n int64) domain.Money { return domain.NewMoney(n, domain.USD) }
	eur := func(n int64) domain.Money { return domain.NewMoney(n, "EUR") }
	tests := []struct {
		op      string
		a, b    domain.Money
		want    domain.Money
		wantErr error
	}{
		{"add", usd(799), usd(1549), usd(2348), nil},
		{"add", usd(-5), usd(5), usd(0), nil},
		{"add", domain.Money{}, usd(399), usd(399), nil},
		{"add", usd(399), domain.Money{}, usd(399), nil},
		{"add", usd(1), eur(1), domain.Money{}, domain.ErrCurrencyMismatch},
		{"add", usd(math.MaxInt64), usd(1), domain.Money{}, domain.ErrOverflow},
		{"add", usd(math.MinInt64), usd(-1), domain.Money{}, domain.ErrOverflow},
		{"sub", usd(2299), usd(2299), usd(0), nil},
		{"sub", usd(399), usd(400), usd(-1), nil},
		{"sub", usd(1), eur(1), domain.Money{}, domain.ErrCurrencyMismatch},
		{"sub", usd(math.MinInt64), usd(1), domain.Money{}, domain.ErrOverflow},
		{"sub", usd(math.MaxInt64), usd(-1), domain.Money{}, domain.ErrOverflow},
		{"sub", usd(0), usd(math.MinInt64), domain.Money{}, domain.ErrOverflow},
	}
	for _, tt := range tests {
		var got domain.Money
		var err error
		if tt.op == "add" {
			got, err = tt.a.Add(tt.b)
		} else {
			got, err = tt.a.Sub(tt.b)
		}
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s.%s(%s) = %v, %v, want %v, %v", tt.a, tt.op, tt.b, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMoneyCmp(t *testing.T) {
	tests := []struct {
		a, b    domain.Money
		want    int
		wantErr bool
	}{
		{domain.NewMoney(1, "USD"), domain.NewMoney(2, "USD"), -1, false},
		{domain.NewMoney(2, "USD"), domain.NewMoney(2, "USD"), 0, false},
		{domain.NewMoney(3, "USD"), domain.NewMoney(2, "USD"), 1, false},
		{domain.NewMoney(3, "USD"), domain.NewMoney(2, "EUR"), 0, true},
	}
	for _, tt := range tests {
		got, err := tt.a.Cmp(tt.b)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s.Cmp(%s) = %d, %v, want %d, error %v", tt.a, tt.b, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		in   domain.Money
		want string
	}{
		{domain.NewMoney(1549, "USD"), "15.49 USD"},
		{domain.NewMoney(5, "USD"), "0.05 USD"},
		{domain.NewMoney(-5, "USD"), "-0.05 USD"},
		{domain.NewMoney(0, "USD"), "0.00 USD"},
		{domain.NewMoney(1000, "JPY"), "1000 JPY"},
		{domain.NewMoney(1234, "KWD"), "1.234 KWD"},
		{domain.NewMoney(math.MinInt64, "USD"), "-92233720368547758.08 USD"},
		{domain.Money{}, "0.00"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckAmount(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     domain.Money
		badField string
	}{
		{799, "USD", domain.NewMoney(799, domain.USD), ""},
		{domain.MaxChargeMinor, "EUR", domain.NewMoney(domain.MaxChargeMinor, "EUR"), ""},
		{0, "USD", domain.Money{}, "amount.amount_minor"},
		{-1, "USD", domain.Money{}, "amount.amount_minor"},
		{domain.MaxChargeMinor + 1, "USD", domain.Money{}, "amount.amount_minor"},
		{799, "usd", domain.Money{}, "amount.currency"},
		{799, "", domain.Money{}, "amount.currency"},
		{799, "US", domain.Money{}, "amount.currency"},
		{799, "USDX", domain.Money{}, "amount.currency"},
	}
	for _, tt := range tests {
		got, err := domain.CheckAmount("amount", tt.minor, tt.currency)
		gotField := ""
		if fe := domain.FieldErrors(err, ""); len(fe) == 1 {
			gotField = fe[0].Field
		} else if err != nil {
			gotField = "?" + err.Error()
		}
		if got != tt.want || gotField != tt.badField {
			t.Errorf("CheckAmount(%d, %q) = %v, bad field %q, want %v, %q", tt.minor, tt.currency, got, gotField, tt.want, tt.badField)
		}
	}
}

func TestRefundLimits(t *testing.T) {
	usd := func(n int64) domain.Money { return domain.NewMoney(n, domain.USD) }
	tests := []struct {
		charged, refunded, amount domain.Money
		want                      domain.Money
		wantErr                   error
	}{
		{usd(2299), usd(0), usd(2299), usd(2299), nil},
		{usd(2299), usd(0), usd(1000), usd(1000), nil},
		{usd(2299), usd(1000), usd(1299), usd(2299), nil},
		{usd(2299), usd(1000), usd(1300), domain.Money{}, domain.ErrRefundExceedsCharge},
		{usd(2299), usd(2299), usd(1), domain.Money{}, domain.ErrRefundExceedsCharge},
		{usd(2299), usd(2300), usd(1), domain.Money{}, domain.ErrRefundExceedsCharge},
		{usd(2299), usd(-1), usd(1), domain.Money{}, domain.ErrRefundExceedsCharge},
		{usd(2299), usd(0), usd(0), domain.Money{}, domain.ErrInvalidArgument},
		{usd(2299), usd(0), usd(-5), domain.Money{}, domain.ErrInvalidArgument},
		{usd(2299), usd(0), domain.NewMoney(5, "EUR"), domain.Money{}, domain.ErrCurrencyMismatch},
	}
	for _, tt := range tests {
		got, err := domain.ApplyRefund(tt.charged, tt.refunded, tt.amount)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ApplyRefund(%s, %s, %s) = %v, %v, want %v, %v", tt.charged, tt.refunded, tt.amount, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestChargeRefundable(t *testing.T) {
	usd := func(n int64) domain.Money { return domain.NewMoney(n, domain.USD) }
	tests := []struct {
		status   domain.ChargeStatus
		refunded int64
		want     domain.Money
	}{
		{domain.ChargeSucceeded, 0, usd(1549)},
		{domain.ChargeSucceeded, 549, usd(1000)},
		{domain.ChargeSucceeded, 1549, usd(0)},
		{domain.ChargeDeclined, 0, usd(0)},
		{domain.ChargeCancelled, 0, usd(0)},
	}
	for _, tt := range tests {
		c := domain.Charge{Status: tt.status, Amount: usd(1549), Refunded: usd(tt.refunded)}
		if got, err := c.Refundable(); got != tt.want || err != nil {
			t.Errorf("Charge{%s, refunded %d}.Refundable() = %v, %v, want %v", tt.status, tt.refunded, got, err, tt.want)
		}
	}
}

func TestInvoiceStatus(t *testing.T) {
	tests := []struct {
		refunded int64
		want     domain.InvoiceStatus
	}{
		{0, domain.InvoicePaid},
		{1, domain.InvoicePartiallyRefunded},
		{798, domain.InvoicePartiallyRefunded},
		{799, domain.InvoiceRefunded},
	}
	for _, tt := range tests {
		inv := domain.Invoice{Amount: domain.NewMoney(799, domain.USD), Refunded: domain.NewMoney(tt.refunded, domain.USD)}
		if got := inv.Status(); got != tt.want {
			t.Errorf("Invoice{799 refunded %d}.Status() = %q, want %q", tt.refunded, got, tt.want)
		}
	}
}

func TestPlans(t *testing.T) {
	want := []struct {
		id      string
		minor   int64
		streams int
	}{{"basic", 799, 1}, {"standard", 1549, 2}, {"premium", 2299, 4}}
	plans := domain.Plans()
	if len(plans) != len(want) {
		t.Fatalf("Plans() has %d plans, want %d", len(plans), len(want))
	}
	for i, w := range want {
		p := plans[i]
		if p.ID != w.id || p.Price != domain.NewMoney(w.minor, domain.USD) || p.MaxStreams != w.streams || p.Period != "monthly" {
			t.Errorf("Plans()[%d] = %+v, want %s %d USD, %d streams, monthly", i, p, w.id, w.minor, w.streams)
		}
		if got, err := domain.PlanByID(w.id); err != nil || got.ID != w.id {
			t.Errorf("PlanByID(%q) = %v, %v", w.id, got.ID, err)
		}
	}
	if _, err := domain.PlanByID("platinum"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("PlanByID(platinum) error = %v, want ErrNotFound", err)
	}
	if r := domain.RentalTerms(); r.Price != domain.NewMoney(399, domain.USD) || r.Duration != 48*time.Hour {
		t.Errorf("RentalTerms() = %+v, want 399 USD for 48h", r)
	}
	if got := plans[2].InvoiceLine(); got != "Premium plan, monthly" {
		t.Errorf("premium.InvoiceLine() = %q, want %q", got, "Premium plan, monthly")
	}
}

func TestPageSize(t *testing.T) {
	tests := []struct {
		in      int32
		want    int
		wantErr bool
	}{{0, 20, false}, {1, 1, false}, {100, 100, false}, {101, 0, true}, {-1, 0, true}}
	for _, tt := range tests {
		got, err := domain.PageSize(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("PageSize(%d) = %d, %v, want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPageToken(t *testing.T) {
	c := domain.Cursor{Time: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), ID: "ch-1"}
	tok := domain.EncodePageToken(c, "invoices", "acct-1")
	if got, err := domain.DecodePageToken(tok, "invoices", "acct-1"); err != nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
		t.Errorf("DecodePageToken(EncodePageToken(%v)) = %v, %v, want it back", c, got, err)
	}
	for _, scope := range [][]string{{"invoices", "acct-2"}, {"invoices"}, {"invoicesacct-1"}, {"charges", "acct-1"}} {
		if _, err := domain.DecodePageToken(tok, scope...); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("DecodePageToken(token of acct-1, %q) error = %v, want an invalid page_token", scope, err)
		}
	}
	for _, bad := range []string{"", "x", tok[:len(tok)-1], tok + "A", strings.Repeat("A", 600), "!!!!"} {
		if _, err := domain.DecodePageToken(bad, "invoices", "acct-1"); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("DecodePageToken(%q) error = %v, want an invalid page_token", bad, err)
		}
	}
}

func TestCheckText(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{{"Premium plan, monthly", false}, {"tab\there", false}, {"", false}, {"new\nline", true}, {"\x7f", true}, {"\xff", true}, {strings.Repeat("é", 251), true}}
	for _, tt := range tests {
		if err := domain.CheckText("description", tt.in, domain.MaxDescriptionLen); (err != nil) != tt.wantErr {
			t.Errorf("CheckText(%q) = %v, want error %v", tt.in, err, tt.wantErr)
		}
	}
}
