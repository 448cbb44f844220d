package policy

import (
	"maps"
	"reflect"
	"slices"
)

// Clone returns a deep copy of p, so one version of a policy can be edited
// into the next while the old one is still being served.
func (p *Policy) Clone() *Policy {
	if p == nil {
		return nil
	}
	c := &Policy{}
	if p.Services != nil {
		c.Services = make(map[string]*Service, len(p.Services))
		for name, s := range p.Services {
			c.Services[name] = s.clone()
		}
	}
	return c
}

// Equal reports whether p and q say the same thing. Nil and empty lists
// are alike, and so are a missing service body and an empty one.
func (p *Policy) Equal(q *Policy) bool {
	a, b := p.Clone(), q.Clone()
	if a == nil {
		a = &Policy{}
	}
	if b == nil {
		b = &Policy{}
	}
	a.normalize()
	b.normalize()
	return reflect.DeepEqual(a, b)
}

func (s *Service) clone() *Service {
	if s == nil {
		return nil
	}
	c := &Service{Timeout: s.Timeout, Split: slices.Clone(s.Split)}
	if s.Allow != nil {
		c.Allow = make([]Allow, len(s.Allow))
		for i, a := range s.Allow {
			c.Allow[i] = Allow{From: a.From, Methods: slices.Clone(a.Methods)}
		}
	}
	if s.Retries != nil {
		r := *s.Retries
		r.RetryOn = slices.Clone(r.RetryOn)
		c.Retries = &r
	}
	if s.Outlier != nil {
		o := *s.Outlier
		c.Outlier = &o
	}
	if s.Routes != nil {
		c.Routes = make([]Route, len(s.Routes))
		for i, r := range s.Routes {
			c.Routes[i] = Route{Headers: maps.Clone(r.Headers), Version: r.Version}
		}
	}
	c.Fault = s.Fault.clone()
	return c
}

func (f *Fault) clone() *Fault {
	if f == nil {
		return nil
	}
	c := &Fault{}
	if f.Abort != nil {
		a := *f.Abort
		c.Abort = &a
	}
	if f.Delay != nil {
		d := *f.Delay
		c.Delay = &d
	}
	return c
}

// normalize gives every way of writing "nothing" one form, so that a
// policy, its canonical YAML and that YAML parsed back are deeply equal:
// empty lists and maps become nil, a bare "catalog:" entry becomes an
// empty service, and the service map is never nil.
func (p *Policy) normalize() {
	if p.Services == nil {
		p.Services = map[string]*Service{}
	}
	for name, s := range p.Services {
		if s == nil {
			s = &Service{}
			p.Services[name] = s
		}
		s.normalize()
	}
}

func (s *Service) normalize() {
	if len(s.Allow) == 0 {
		s.Allow = nil
	}
	for i := range s.Allow {
		if len(s.Allow[i].Methods) == 0 {
			s.Allow[i].Methods = nil
		}
	}
	if s.Retries != nil && len(s.Retries.RetryOn) == 0 {
		s.Retries.RetryOn = nil
	}
	if len(s.Split) == 0 {
		s.Split = nil
	}
	if len(s.Routes) == 0 {
		s.Routes = nil
	}
	for i := range s.Routes {
		if len(s.Routes[i].Headers) == 0 {
			s.Routes[i].Headers = nil
		}
	}
}
