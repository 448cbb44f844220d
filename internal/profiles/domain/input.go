package domain

import (
	"errors"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
)

// Fields are the user-set fields of a profile, validated.
type Fields struct {
	Name     string
	Maturity catalog.Level
	Language string
	Avatar   string
}

// NewFields validates the fields of a profile to create. An empty maturity
// means DefaultMaturity and an empty language DefaultLanguage. Every bad
// field is reported (joined *FieldErrors).
func NewFields(name, maturity, language, avatar string) (Fields, error) {
	var f Fields
	var errs [4]error
	f.Name, errs[0] = ParseName(name)
	f.Maturity = DefaultMaturity
	if maturity != "" {
		f.Maturity, errs[1] = ParseMaturity(maturity)
	}
	f.Language = DefaultLanguage
	if language != "" {
		f.Language, errs[2] = ParseLanguage(language)
	}
	f.Avatar, errs[3] = ParseAvatar(avatar)
	if err := errors.Join(errs[:]...); err != nil {
		return Fields{}, err
	}
	return f, nil
}

// Changes are the fields an update sets; nil leaves a field as it is.
type Changes struct {
	Name     *string
	Maturity *catalog.Level
	Language *string
	Avatar   *string
}

// NewChanges validates a partial update: each non-nil field must be valid
// (an empty avatar resets it to the default; the others cannot be empty).
// Every bad field is reported.
func NewChanges(name, maturity, language, avatar *string) (Changes, error) {
	var c Changes
	var errs []error
	if name != nil {
		v, err := ParseName(*name)
		c.Name, errs = &v, append(errs, err)
	}
	if maturity != nil {
		v, err := ParseMaturity(*maturity)
		c.Maturity, errs = &v, append(errs, err)
	}
	if language != nil {
		v, err := ParseLanguage(*language)
		c.Language, errs = &v, append(errs, err)
	}
	if avatar != nil {
		v, err := ParseAvatar(*avatar)
		c.Avatar, errs = &v, append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Changes{}, err
	}
	return c, nil
}

// Apply sets the changed fields on p and reports whether any differs from
// what p had. A name that differs only in case is a change.
func (c Changes) Apply(p *Profile) (changed bool) {
	set := func(dst *string, v *string) {
		if v != nil && *dst != *v {
			*dst, changed = *v, true
		}
	}
	set(&p.Name, c.Name)
	set(&p.Language, c.Language)
	set(&p.Avatar, c.Avatar)
	if c.Maturity != nil && p.Maturity != *c.Maturity {
		p.Maturity, changed = *c.Maturity, true
	}
	return changed
}

// CheckTitleAllowed returns ErrMaturityRestricted unless a profile at level
// may see a title rated r (the catalog's rule).
func CheckTitleAllowed(level catalog.Level, r catalog.Rating) error {
	if !catalog.Allows(level, r) {
		return ErrMaturityRestricted
	}
	return nil
}
