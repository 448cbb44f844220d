package domain

import (
	"fmt"
	"math"
	"strconv"
)

// Currency is an ISO 4217 code: three upper-case letters.
type Currency string

// USD is the currency of every plan and rental.
const USD Currency = "USD"

// ParseCurrency checks s is three upper-case ASCII letters.
func ParseCurrency(s string) (Currency, error) {
	if len(s) != 3 {
		return "", fmt.Errorf("currency %q: want an ISO 4217 code such as USD", s)
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return "", fmt.Errorf("currency %q: want an ISO 4217 code such as USD", s)
		}
	}
	return Currency(s), nil
}

// exponent is the number of minor-unit digits of c (2 unless listed).
func (c Currency) exponent() int {
	switch c {
	case "JPY", "KRW", "VND", "CLP", "ISK", "XAF", "XOF":
		return 0
	case "BHD", "KWD", "OMR", "JOD", "TND":
		return 3
	}
	return 2
}

// Money is an amount in integer minor units (cents for USD) of a currency.
// It never goes through a float. The zero Money has no currency; Add and
// Sub accept it as zero of the other operand's currency.
type Money struct {
	// Minor is the amount in minor units, for example 1549 for $15.49.
	Minor    int64
	Currency Currency
}

// NewMoney returns minor units of currency c.
func NewMoney(minor int64, c Currency) Money { return Money{Minor: minor, Currency: c} }

// IsZero reports whether the amount is zero.
func (m Money) IsZero() bool { return m.Minor == 0 }

// IsPositive reports whether the amount is above zero.
func (m Money) IsPositive() bool { return m.Minor > 0 }

// sameCurrency returns the currency of a sum of a and b.
func sameCurrency(a, b Money) (Currency, error) {
	switch {
	case a.Currency == b.Currency:
		return a.Currency, nil
	case a.Currency == "" && a.Minor == 0:
		return b.Currency, nil
	case b.Currency == "" && b.Minor == 0:
		return a.Currency, nil
	}
	return "", fmt.Errorf("%w: %s and %s", ErrCurrencyMismatch, a.Currency, b.Currency)
}

// Add returns m + o. Currencies must match; the int64 range must hold.
func (m Money) Add(o Money) (Money, error) {
	c, err := sameCurrency(m, o)
	if err != nil {
		return Money{}, err
	}
	if (o.Minor > 0 && m.Minor > math.MaxInt64-o.Minor) || (o.Minor < 0 && m.Minor < math.MinInt64-o.Minor) {
		return Money{}, fmt.Errorf("%w: %d + %d", ErrOverflow, m.Minor, o.Minor)
	}
	return Money{Minor: m.Minor + o.Minor, Currency: c}, nil
}

// Sub returns m - o. Currencies must match; the int64 range must hold.
func (m Money) Sub(o Money) (Money, error) {
	c, err := sameCurrency(m, o)
	if err != nil {
		return Money{}, err
	}
	if (o.Minor < 0 && m.Minor > math.MaxInt64+o.Minor) || (o.Minor > 0 && m.Minor < math.MinInt64+o.Minor) {
		return Money{}, fmt.Errorf("%w: %d - %d", ErrOverflow, m.Minor, o.Minor)
	}
	return Money{Minor: m.Minor - o.Minor, Currency: c}, nil
}

// Cmp compares m and o: -1, 0 or +1. Currencies must match.
func (m Money) Cmp(o Money) (int, error) {
	if _, err := sameCurrency(m, o); err != nil {
		return 0, err
	}
	switch {
	case m.Minor < o.Minor:
		return -1, nil
	case m.Minor > o.Minor:
		return 1, nil
	}
	return 0, nil
}

// String formats m in major units with its currency's minor digits, for
// example "15.49 USD" or "-0.05 USD".
func (m Money) String() string {
	exp := m.Currency.exponent()
	neg := m.Minor < 0
	// Work on the magnitude as uint64 so MinInt64 formats too.
	mag := uint64(m.Minor)
	if neg {
		mag = -mag
	}
	digits := strconv.FormatUint(mag, 10)
	if exp > 0 {
		for len(digits) <= exp {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	if neg {
		digits = "-" + digits
	}
	if m.Currency == "" {
		return digits
	}
	return digits + " " + string(m.Currency)
}

// MaxChargeMinor bounds one charge: a hundred million minor units less one
// (999,999.99 USD). Larger amounts are refused as invalid.
const MaxChargeMinor = 99_999_999

// CheckAmount validates an amount to charge: a positive number of minor
// units no larger than MaxChargeMinor, in a well-formed currency. field is
// the request's name for it.
func CheckAmount(field string, minor int64, currency string) (Money, error) {
	c, err := ParseCurrency(currency)
	if err != nil {
		return Money{}, Invalid(field+".currency", "%v", err)
	}
	if minor <= 0 {
		return Money{}, Invalid(field+".amount_minor", "must be positive")
	}
	if minor > MaxChargeMinor {
		return Money{}, Invalid(field+".amount_minor", "at most %d", MaxChargeMinor)
	}
	return NewMoney(minor, c), nil
}
