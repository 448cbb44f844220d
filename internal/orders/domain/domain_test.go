package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/orders/domain"
)

func valid() domain.CreateRequest {
	return domain.CreateRequest{AccountID: "a1", IdempotencyKey: "k1", PlanID: "basic",
		Card: domain.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: 2030, CVC: "123"}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *domain.CreateRequest)
		field  string // "" means valid
	}{
		{"valid plan", func(*domain.CreateRequest) {}, ""},
		{"valid rental", func(r *domain.CreateRequest) { r.PlanID, r.TitleID = "", "t-0001" }, ""},
		{"no key", func(r *domain.CreateRequest) { r.IdempotencyKey = "" }, "idempotency_key"},
		{"long key", func(r *domain.CreateRequest) { r.IdempotencyKey = strings.Repeat("k", 129) }, "idempotency_key"},
		{"control in key", func(r *domain.CreateRequest) { r.IdempotencyKey = "a\x00" }, "idempotency_key"},
		{"nothing", func(r *domain.CreateRequest) { r.PlanID = "" }, "plan_id"},
		{"both", func(r *domain.CreateRequest) { r.TitleID = "t-1" }, "plan_id"},
		{"bad plan id", func(r *domain.CreateRequest) { r.PlanID = "../x" }, "plan_id"},
		{"bad title id", func(r *domain.CreateRequest) { r.PlanID, r.TitleID = "", "t 1" }, "title_id"},
		{"letters in card", func(r *domain.CreateRequest) { r.Card.Number = "4242abcd42424242" }, "payment.card_number"},
		{"short card", func(r *domain.CreateRequest) { r.Card.Number = "42424242" }, "payment.card_number"},
		{"month 0", func(r *domain.CreateRequest) { r.Card.ExpMonth = 0 }, "payment.exp_month"},
		{"two-digit year", func(r *domain.CreateRequest) { r.Card.ExpYear = 30 }, "payment.exp_year"},
		{"4-digit cvc", func(r *domain.CreateRequest) { r.Card.CVC = "1234" }, "payment.cvc"},
	}
	for _, tt := range tests {
		r := valid()
		tt.change(&r)
		r.Normalize()
		err := r.Validate()
		var got string
		if fe := domain.FieldErrors(err); len(fe) > 0 {
			got = fe[0].Field
		}
		if got != tt.field || (err != nil) != (tt.field != "") {
			t.Errorf("Validate(%s) = %v, want field %q", tt.name, err, tt.field)
		}
		if err != nil && !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("Validate(%s) = %v, want it to wrap ErrInvalidArgument", tt.name, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := valid()
	base.Normalize()
	same := base
	same.Card.CVC = "999" // the CVC is not part of the request's identity
	if base.Fingerprint() != same.Fingerprint() {
		t.Errorf("Fingerprint changed with the CVC")
	}
	for name, change := range map[string]func(r *domain.CreateRequest){
		"plan":   func(r *domain.CreateRequest) { r.PlanID = "premium" },
		"rental": func(r *domain.CreateRequest) { r.PlanID, r.TitleID = "", "basic" },
		"card":   func(r *domain.CreateRequest) { r.Card.Number = "4000000000000002" },
		"expiry": func(r *domain.CreateRequest) { r.Card.ExpYear = 2031 },
	} {
		r := base
		change(&r)
		if r.Fingerprint() == base.Fingerprint() {
			t.Errorf("Fingerprint did not change with the %s", name)
		}
	}
	if strings.Contains(base.Fingerprint(), "4242") {
		t.Errorf("Fingerprint %q shows card digits", base.Fingerprint())
	}
}

func TestPageToken(t *testing.T) {
	tok := domain.PageToken{CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC), ID: "o-1"}
	got, ok, err := domain.ParsePageToken(tok.Encode())
	if err != nil || !ok || !got.CreatedAt.Equal(tok.CreatedAt) || got.ID != tok.ID {
		t.Errorf("ParsePageToken(Encode(%v)) = %v, %v, %v", tok, got, ok, err)
	}
	if _, ok, err := domain.ParsePageToken(""); ok || err != nil {
		t.Errorf(`ParsePageToken("") = %v, %v, want first page`, ok, err)
	}
	for _, bad := range []string{"x", "!!!", "bm8tYmFy", strings.Repeat("a", 500)} {
		if _, _, err := domain.ParsePageToken(bad); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("ParsePageToken(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	for in, want := range map[int32]int{0: 20, 1: 1, 100: 100} {
		if got, err := domain.PageSize(in); got != want || err != nil {
			t.Errorf("PageSize(%d) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []int32{-1, 101} {
		if _, err := domain.PageSize(in); err == nil {
			t.Errorf("PageSize(%d) = nil error, want one", in)
		}
	}
}

func FuzzCreateRequest(f *testing.F) {
	f.Add("k1", "basic", "", "4242424242424242", 12, 2030, "123")
	f.Add("", "", "t-1", "4242 4242", 0, 0, "")
	f.Fuzz(func(t *testing.T, key, plan, title, number string, month, year int, cvc string) {
		r := domain.CreateRequest{AccountID: "a", IdempotencyKey: key, PlanID: plan, TitleID: title,
			Card: domain.Card{Number: number, ExpMonth: month, ExpYear: year, CVC: cvc}}
		r.Normalize()
		err := r.Validate()
		_ = r.Fingerprint()
		if err != nil {
			if !errors.Is(err, domain.ErrInvalidArgument) || len(domain.FieldErrors(err)) == 0 {
				t.Fatalf("Validate = %v, want field errors wrapping ErrInvalidArgument", err)
			}
			return
		}
		if (r.PlanID == "") == (r.TitleID == "") || key == "" || len(r.Card.Number) < 12 || len(r.Card.CVC) != 3 {
			t.Fatalf("Validate accepted %+v", r)
		}
	})
}

func FuzzParsePageToken(f *testing.F) {
	f.Add(domain.PageToken{CreatedAt: time.Now(), ID: "o-1"}.Encode())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, ok, err := domain.ParsePageToken(s)
		if err != nil || !ok {
			return
		}
		again, ok2, err := domain.ParsePageToken(tok.Encode())
		if err != nil || !ok2 || !again.CreatedAt.Equal(tok.CreatedAt) || again.ID != tok.ID {
			t.Fatalf("round trip of %q = %v, %v, want %v", s, again, err, tok)
		}
	})
}
