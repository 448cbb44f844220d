package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/marquee-tv/marquee/internal/mesh/policy"
)

// Errors of ApplyPolicy and the admin API.
var (
	// ErrInvalidPolicy: the policy does not validate; the error wraps the
	// list of problems (errors.Join) and nothing was changed.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrVersionConflict: the policy changed since the version the caller
	// based its edit on.
	ErrVersionConflict = errors.New("policy version conflict")
)

// maxAuthor bounds the recorded author of a policy version.
const maxAuthor = 200

// ApplyPolicy validates p, stores it as a new policy version and pushes the
// sidecars the snapshots that change. A policy equal to the one in force
// makes no new version; its version is returned.
func (s *Server) ApplyPolicy(ctx context.Context, p *policy.Policy, author string) (uint64, error) {
	return s.apply(ctx, author, 0, func(*policy.Policy) (*policy.Policy, error) { return p, nil })
}

// apply makes edit's result of the policy in force the next version.
// ifMatch, when not zero, is the version the edit expects to be in force.
// An error edit returns is a validation error.
func (s *Server) apply(ctx context.Context, author string, ifMatch uint64, edit func(cur *policy.Policy) (*policy.Policy, error)) (uint64, error) {
	author, err := cleanAuthor(author)
	if err != nil {
		return 0, err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	cur, v := s.Policy()
	if ifMatch != 0 && ifMatch != v {
		return 0, fmt.Errorf("%w: the policy is at version %d, not %d", ErrVersionConflict, v, ifMatch)
	}
	// edit may change what it is given; cur stays to compare with.
	next, err := edit(cur.Clone())
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	doc, next, err := canonical(next)
	if err != nil {
		return 0, err
	}
	if next.Equal(cur) {
		return v, nil
	}
	err = s.store.insert(ctx, v+1, doc, author, time.Now())
	if errors.Is(err, errVersionTaken) {
		return 0, fmt.Errorf("%w: version %d was stored by another control plane on this database", ErrVersionConflict, v+1)
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.pol, s.policyVersion = next, v+1
	s.schedulePushLocked()
	s.mu.Unlock()
	s.m.policyVersion.Set(float64(v + 1))
	s.log.Info("mesh policy applied", "policy_version", v+1, "author", author)
	return v + 1, nil
}

// canonical validates p and returns its canonical document and the policy
// read back from it, which shares nothing with p.
func canonical(p *policy.Policy) ([]byte, *policy.Policy, error) {
	if p == nil {
		return nil, nil, fmt.Errorf("%w: policy is missing", ErrInvalidPolicy)
	}
	if err := p.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	doc, err := p.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	back, err := policy.Parse(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	return doc, back, nil
}

// cleanAuthor checks who is recorded as a version's author.
func cleanAuthor(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return "unknown", nil
	}
	if len(a) > maxAuthor {
		return "", fmt.Errorf("author is longer than %d bytes", maxAuthor)
	}
	for _, r := range a {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return "", errors.New("author holds unprintable characters")
		}
	}
	return a, nil
}
