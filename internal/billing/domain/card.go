package domain

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Brand is a card network.
type Brand string

// The brands billing recognises; any other valid number is BrandUnknown.
const (
	BrandVisa       Brand = "visa"
	BrandMastercard Brand = "mastercard"
	BrandAmex       Brand = "amex"
	BrandDiscover   Brand = "discover"
	BrandUnknown    Brand = "unknown"
)

// Card number bounds, in digits after removing spaces and dashes.
const (
	MinCardDigits = 13
	MaxCardDigits = 19
	// MaxCardInput bounds the raw card_number text (digits, spaces and
	// dashes) so that nothing large is scanned.
	MaxCardInput = 64
	// MaxExpiryYears is how far in the future an expiry may be.
	MaxExpiryYears = 20
)

// Card is a payment card as the customer typed it, validated. It exists
// only in memory while a request is served: store its Brand, Last4 and
// expiry, never Number or CVC. Every way of printing it (String, GoString,
// Format, LogValue) shows the brand and last four digits only.
type Card struct {
	number   string
	cvc      string
	brand    Brand
	expMonth int
	expYear  int
}

// ParseCard validates a card: number of 13 to 19 digits once spaces and
// dashes are removed, passing the Luhn check and, for a recognised brand,
// of a length that brand issues; expiry month 1..12 and a four-digit year,
// not before the month of now and at most MaxExpiryYears ahead (a card is
// valid through the last day of its expiry month); CVC of 3 digits, 4 for
// amex. All problems are reported together, each as a *CardError naming
// the field and never its value.
func ParseCard(number string, expMonth, expYear int, cvc string, now time.Time) (Card, error) {
	var errs []error
	digits, err := normalizeNumber(number)
	if err != nil {
		errs = append(errs, err)
	}
	brand := Brand("") // unknown until the number is valid: then any CVC of 3 or 4 digits passes
	if err == nil {
		brand = DetectBrand(digits)
		if !brand.acceptsLength(len(digits)) {
			errs = append(errs, cardErr("card_number", fmt.Sprintf("%d digits is not a valid %s card length", len(digits), brand)))
		}
	}
	if err := CheckExpiry(expMonth, expYear, now); err != nil {
		errs = append(errs, err)
	}
	if err := checkCVC(cvc, brand); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Card{}, joinErrors(errs)
	}
	return Card{number: digits, cvc: cvc, brand: brand, expMonth: expMonth, expYear: expYear}, nil
}

// joinErrors joins errs, or returns the only one unwrapped.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return multiError(errs)
}

// multiError is errors.Join with a "; "-separated message.
type multiError []error

// Error joins the messages with "; ".
func (m multiError) Error() string {
	parts := make([]string, len(m))
	for i, e := range m {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (m multiError) Unwrap() []error { return m }

// normalizeNumber removes spaces and dashes and checks what is left is 13
// to 19 digits passing the Luhn check.
func normalizeNumber(number string) (string, error) {
	if strings.TrimSpace(number) == "" {
		return "", cardErr("card_number", "is required")
	}
	if len(number) > MaxCardInput {
		return "", cardErr("card_number", fmt.Sprintf("at most %d characters", MaxCardInput))
	}
	var b strings.Builder
	for i := 0; i < len(number); i++ {
		switch c := number[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == ' ' || c == '-':
		default:
			return "", cardErr("card_number", "must be digits, optionally grouped with spaces or dashes")
		}
	}
	digits := b.String()
	if len(digits) < MinCardDigits || len(digits) > MaxCardDigits {
		return "", cardErr("card_number", fmt.Sprintf("must have %d to %d digits", MinCardDigits, MaxCardDigits))
	}
	if !Luhn(digits) {
		return "", cardErr("card_number", "fails the Luhn check (mistyped?)")
	}
	return digits, nil
}

// Luhn reports whether digits (ASCII digits only) pass the Luhn check. An
// empty string or any non-digit fails.
func Luhn(digits string) bool {
	if digits == "" {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// DetectBrand names the network of a card number (digits only) by its
// leading digits: visa 4; mastercard 51-55 and 2221-2720; amex 34 and 37;
// discover 6011, 622126-622925, 644-649 and 65; anything else unknown.
func DetectBrand(digits string) Brand {
	prefix := func(n int) int {
		if len(digits) < n {
			return -1
		}
		v := 0
		for i := 0; i < n; i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return -1
			}
			v = v*10 + int(digits[i]-'0')
		}
		return v
	}
	p1, p2, p3, p4, p6 := prefix(1), prefix(2), prefix(3), prefix(4), prefix(6)
	switch {
	case p1 == 4:
		return BrandVisa
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return BrandMastercard
	case p2 == 34, p2 == 37:
		return BrandAmex
	case p4 == 6011, p6 >= 622126 && p6 <= 622925, p3 >= 644 && p3 <= 649, p2 == 65:
		return BrandDiscover
	}
	return BrandUnknown
}

// acceptsLength reports whether the brand issues numbers of n digits.
func (b Brand) acceptsLength(n int) bool {
	switch b {
	case BrandVisa:
		return n == 13 || n == 16 || n == 19
	case BrandMastercard:
		return n == 16
	case BrandAmex:
		return n == 15
	case BrandDiscover:
		return n >= 16 && n <= 19
	}
	return n >= MinCardDigits && n <= MaxCardDigits
}

// CVCLength is the number of CVC digits the brand prints: 4 for amex, 3
// for the others.
func (b Brand) CVCLength() int {
	if b == BrandAmex {
		return 4
	}
	return 3
}

// ParseBrand returns the brand named s, or BrandUnknown.
func ParseBrand(s string) Brand {
	switch b := Brand(s); b {
	case BrandVisa, BrandMastercard, BrandAmex, BrandDiscover:
		return b
	}
	return BrandUnknown
}

// checkCVC checks cvc has the brand's number of digits; with no brand
// (the number itself is invalid) 3 or 4 digits pass.
func checkCVC(cvc string, b Brand) error {
	want := fmt.Sprintf("must be %d digits", b.CVCLength())
	ok := len(cvc) == b.CVCLength()
	if b == "" {
		want, ok = "must be 3 or 4 digits", len(cvc) == 3 || len(cvc) == 4
	}
	if !ok {
		return cardErr("cvc", want)
	}
	for i := 0; i < len(cvc); i++ {
		if cvc[i] < '0' || cvc[i] > '9' {
			return cardErr("cvc", want)
		}
	}
	return nil
}

// CheckExpiry validates an expiry: month 1..12, four-digit year, not
// before the month of now (in UTC) and at most MaxExpiryYears ahead.
func CheckExpiry(month, year int, now time.Time) error {
	var errs []error
	if month < 1 || month > 12 {
		errs = append(errs, cardErr("exp_month", "must be 1 to 12"))
	}
	if year < 1000 || year > 9999 {
		errs = append(errs, cardErr("exp_year", "must have four digits, for example 2030"))
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	now = now.UTC()
	if Expired(month, year, now) {
		return cardErr("exp_year", "the card has expired")
	}
	if year > now.Year()+MaxExpiryYears {
		return cardErr("exp_year", fmt.Sprintf("at most %d years ahead", MaxExpiryYears))
	}
	return nil
}

// Expired reports whether a card expiring at the end of month/year has
// expired at now: it is valid through the last instant of that month, UTC.
func Expired(month, year int, now time.Time) bool {
	end := time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, time.UTC)
	return !now.UTC().Before(end)
}

// Number returns the card number, digits only. Pass it to the processor
// to tokenise the card; never store, log or return it.
func (c Card) Number() string { return c.number }

// CVC returns the card's verification code. Never store, log or return it.
func (c Card) CVC() string { return c.cvc }

// Brand returns the card's network.
func (c Card) Brand() Brand { return c.brand }

// Last4 returns the last four digits of the number.
func (c Card) Last4() string {
	if len(c.number) < 4 {
		return ""
	}
	return c.number[len(c.number)-4:]
}

// ExpMonth is the expiry month, 1..12.
func (c Card) ExpMonth() int { return c.expMonth }

// ExpYear is the four-digit expiry year.
func (c Card) ExpYear() int { return c.expYear }

// String shows the brand and last four digits, as "visa ****4242".
func (c Card) String() string {
	if c.number == "" {
		return "card(none)"
	}
	return fmt.Sprintf("%s ****%s", c.brand, c.Last4())
}

// GoString is String, so %#v does not print the number either.
func (c Card) GoString() string { return c.String() }

// Format prints String for every verb, so no formatting verb reaches the
// number or the CVC.
func (c Card) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue makes slog log the brand and last four digits only.
func (c Card) LogValue() slog.Value {
	return slog.GroupValue(slog.String("brand", string(c.brand)), slog.String("last4", c.Last4()))
}

// MarshalText is String, so encoders that honour TextMarshaler (JSON map
// keys, slog's text handler) never see the number.
func (c Card) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// MarshalJSON encodes the brand and last four digits only.
func (c Card) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"brand":%q,"last4":%q}`, c.brand, c.Last4()), nil
}
