package policy

import (
	"fmt"
	"strings"
)

// SetSplit replaces the version split of service with weights (nil or
// empty clears it: every endpoint alike) and validates the result. On error
// the policy is left unchanged.
func (p *Policy) SetSplit(service string, weights map[string]uint32) error {
	s, err := p.entry(service)
	if err != nil {
		return err
	}
	var split []Weight
	for _, v := range sortedKeys(weights) {
		w := weights[v]
		if w > MaxWeight {
			return fmt.Errorf("services.%s.split: weight of %s must be at most %d", service, v, MaxWeight)
		}
		split = append(split, Weight{Version: v, Weight: int(w)})
	}
	old := s.Split
	s.Split = split
	if err := p.Validate(); err != nil {
		s.Split = old
		return err
	}
	return nil
}

// SetFault replaces the injected fault of service; nil clears it. The
// policy is validated and left unchanged on error.
func (p *Policy) SetFault(service string, f *Fault) error {
	s, err := p.entry(service)
	if err != nil {
		return err
	}
	old := s.Fault
	s.Fault = f.clone()
	if err := p.Validate(); err != nil {
		s.Fault = old
		return err
	}
	return nil
}

// entry returns the policy entry of service, which must exist: traffic
// settings for a service nobody may call would have no effect.
func (p *Policy) entry(service string) (*Service, error) {
	if p == nil {
		return nil, fmt.Errorf("services.%s: no policy", service)
	}
	s, ok := p.Services[service]
	if !ok {
		names := p.ServiceNames()
		return nil, fmt.Errorf("services.%s: no such service in the policy (have %s)", service, strings.Join(names, ", "))
	}
	if s == nil {
		s = &Service{}
		p.Services[service] = s
	}
	return s, nil
}
