package domain

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

var fuzzNow = time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)

// FuzzParseCard feeds arbitrary card input to the validator: it must never
// panic; a refusal must be an invalid card naming only card fields and
// never holding the number; an accepted card must satisfy every rule, and
// print nothing but its brand and last four digits.
func FuzzParseCard(f *testing.F) {
	f.Add("4242424242424242", 12, 2030, "123")
	f.Add("4242 4242 4242 4242", 1, 2027, "000")
	f.Add("3782-822463-10005", 6, 2031, "1234")
	f.Add("4000000000000119", 3, 2026, "999")
	f.Add("", 0, 0, "")
	f.Add("４２４２", 12, 2030, "１２３")
	f.Add("4242424242424241", 2, 2026, "12")
	f.Fuzz(func(t *testing.T, number string, month, year int, cvc string) {
		card, err := ParseCard(number, month, year, cvc, fuzzNow)
		digits := strings.NewReplacer(" ", "", "-", "").Replace(number)
		if err != nil {
			if !errors.Is(err, ErrInvalidCard) {
				t.Fatalf("ParseCard(%q, %d, %d, %q) error = %v, want an invalid card", number, month, year, cvc, err)
			}
			fe := FieldErrors(err, "")
			if len(fe) == 0 {
				t.Fatalf("ParseCard(%q, ...) error %v names no field", number, err)
			}
			for _, f := range fe {
				switch f.Field {
				case "card_number", "exp_month", "exp_year", "cvc":
				default:
					t.Fatalf("ParseCard(%q, ...) names field %q", number, f.Field)
				}
			}
			if len(digits) >= 6 && strings.Contains(err.Error(), digits) {
				t.Fatalf("ParseCard(%q, ...) error %q holds the number", number, err)
			}
			return
		}
		n := card.Number()
		if n != digits || len(n) < MinCardDigits || len(n) > MaxCardDigits || !Luhn(n) {
			t.Fatalf("ParseCard(%q) accepted %q", number, n)
		}
		if card.Last4() != n[len(n)-4:] || card.Brand() != DetectBrand(n) || !card.Brand().acceptsLength(len(n)) {
			t.Fatalf("ParseCard(%q) = brand %s last4 %s", number, card.Brand(), card.Last4())
		}
		if len(cvc) != card.Brand().CVCLength() || month < 1 || month > 12 || Expired(month, year, fuzzNow) || year > fuzzNow.Year()+MaxExpiryYears {
			t.Fatalf("ParseCard(%q, %d, %d, %q) accepted a bad expiry or CVC", number, month, year, cvc)
		}
		for _, out := range []string{card.String(), card.GoString(), card.LogValue().String()} {
			if strings.Contains(out, n) {
				t.Fatalf("printing the card gives %q, which holds the number", out)
			}
		}
	})
}

// FuzzLuhn compares Luhn with a reference computed with big integers of
// the digit sum.
func FuzzLuhn(f *testing.F) {
	f.Add("4242424242424242")
	f.Add("79927398713")
	f.Add("0")
	f.Add("x1")
	f.Fuzz(func(t *testing.T, s string) {
		got := Luhn(s)
		want := s != ""
		sum := new(big.Int)
		for i := 0; i < len(s) && want; i++ {
			c := s[len(s)-1-i]
			if c < '0' || c > '9' {
				want = false
				break
			}
			d := int64(c - '0')
			if i%2 == 1 {
				d = d*2/10 + d*2%10
			}
			sum.Add(sum, big.NewInt(d))
		}
		if want {
			want = new(big.Int).Mod(sum, big.NewInt(10)).Sign() == 0
		}
		if got != want {
			t.Fatalf("Luhn(%q) = %v, want %v", s, got, want)
		}
	})
}

// FuzzPageToken feeds arbitrary strings to the page-token decoder: it must
// never panic, must refuse with an invalid page_token, and must accept only
// the canonical encoding of what it decodes.
func FuzzPageToken(f *testing.F) {
	f.Add(EncodePageToken(Cursor{Time: fuzzNow, ID: "ch-1"}, "invoices", "acct"))
	f.Add(EncodePageToken(Cursor{ID: "premium"}, "plans"))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := DecodePageToken(token, "invoices", "acct")
		if err != nil {
			fe := FieldErrors(err, "")
			if len(fe) != 1 || fe[0].Field != "page_token" {
				t.Fatalf("DecodePageToken(%q) error = %v, want an invalid page_token", token, err)
			}
			return
		}
		if again := EncodePageToken(c, "invoices", "acct"); again != token {
			t.Fatalf("EncodePageToken(DecodePageToken(%q)) = %q, want the input back", token, again)
		}
	})
}

// FuzzMoney checks Add and Sub against big-integer arithmetic: exact when
// the result fits in int64, ErrOverflow when it does not.
func FuzzMoney(f *testing.F) {
	f.Add(int64(799), int64(1549), true)
	f.Add(int64(-1<<63), int64(1), false)
	f.Fuzz(func(t *testing.T, a, b int64, add bool) {
		ma, mb := NewMoney(a, USD), NewMoney(b, USD)
		want := new(big.Int).SetInt64(a)
		var got Money
		var err error
		if add {
			want.Add(want, big.NewInt(b))
			got, err = ma.Add(mb)
		} else {
			want.Sub(want, big.NewInt(b))
			got, err = ma.Sub(mb)
		}
		if !want.IsInt64() {
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("%d op %d = %v, %v, want ErrOverflow", a, b, got, err)
			}
			return
		}
		if err != nil || got.Minor != want.Int64() || got.Currency != USD {
			t.Fatalf("%d op %d = %v, %v, want %s USD", a, b, got, err, want)
		}
	})
}
