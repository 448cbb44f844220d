// Package keys manages the ECDSA P-256 keys that sign access tokens: it
// creates, rotates and removes them in identity's database (see
// domain.KeyState for their life), seals their private halves, and keeps
// a short-lived in-memory snapshot for signing and for the JWKS.
//
// Several identity replicas share the keys through the database. Each
// reloads its snapshot when it is older than RefreshInterval, so a replica
// may go on signing with a key another replica has just retired for at most
// that long; the overlap during which a retired key stays published covers
// it: token.TTL + token.Leeway + RefreshInterval. Every token signed by a
// key therefore verifies against every JWKS published from the moment the
// key became current (it was published as "next" before) until the token
// expires.
//
// Private keys are stored sealed with AES-256-GCM under a key-encryption
// key when one is configured ("aesgcm:" prefix, the kid as additional
// data), and otherwise only encoded ("plain:" prefix). They are never
// logged; removed keys have their private half erased.
package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/identity/token"
)

// RefreshInterval is the longest a replica uses its snapshot of the keys
// before reading them again.
const RefreshInterval = 30 * time.Second

// Overlap is how long a retired key stays published.
const Overlap = token.TTL + token.Leeway + RefreshInterval

// DefaultLifetime is how long a key signs before automatic rotation.
const DefaultLifetime = 24 * time.Hour

// Store is what the manager needs from identity's storage.
type Store interface {
	// SigningKeys returns every key not removed.
	SigningKeys(ctx context.Context) ([]domain.SigningKey, error)
	// ApplyKeyPlan carries out a plan atomically, or fails with
	// domain.ErrConflict when the keys changed meanwhile.
	ApplyKeyPlan(ctx context.Context, plan domain.KeyPlan, fresh []domain.SigningKey, now, removeAt time.Time) error
}

// Options configure a Manager.
type Options struct {
	// Lifetime is how long a key is current before it is rotated; default
	// DefaultLifetime. It must be longer than Overlap, so that at most one
	// retired key is published at a time in steady state.
	Lifetime time.Duration
	// KeyEncryptionKey, when set (32 bytes), seals private keys with
	// AES-256-GCM. Keys stored plain stay readable; keys stored sealed need
	// it.
	KeyEncryptionKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives rotations; nil discards.
	Logger *slog.Logger
}

// Manager owns the signing keys of one identity replica.
type Manager struct {
	store  Store
	policy domain.KeyPolicy
	aead   cipher.AEAD
	now    func() time.Time
	log    *slog.Logger

	mu   sync.Mutex
	snap *snapshot
}

// snapshot is the keys as read at loaded.
type snapshot struct {
	loaded     time.Time
	keys       []domain.SigningKey
	currentKID string
	current    *ecdsa.PrivateKey
}

// Status describes one published key.
type Status struct {
	KID         string
	State       domain.KeyState
	CreatedAt   time.Time
	ActivatedAt time.Time
	RemoveAt    time.Time
}

// New returns a Manager over store. Call Maintain once before use, so
// that keys exist.
func New(store Store, opts Options) (*Manager, error) {
	if opts.Lifetime == 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.Lifetime <= Overlap {
		return nil, fmt.Errorf("keys: lifetime %s must exceed the overlap %s", opts.Lifetime, Overlap)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{store: store, policy: domain.KeyPolicy{Lifetime: opts.Lifetime, Overlap: Overlap}, now: opts.Now, log: opts.Logger}
	if opts.KeyEncryptionKey != nil {
		if len(opts.KeyEncryptionKey) != 32 {
			return nil, errors.New("keys: the key-encryption key must be 32 bytes")
		}
		block, err := aes.NewCipher(opts.KeyEncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if m.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
	}
	return m, nil
}

// Policy is the key policy in force.
func (m *Manager) Policy() domain.KeyPolicy { return m.policy }

// load reads the keys and opens the current one.
func (m *Manager) load(ctx context.Context) (*snapshot, error) {
	keys, err := m.store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	s := &snapshot{loaded: m.now(), keys: keys}
	for _, k := range keys {
		if k.State != domain.KeyCurrent {
			continue
		}
		priv, err := m.open(k)
		if err != nil {
			return nil, err
		}
		s.currentKID, s.current = k.ID, priv
	}
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
	return s, nil
}

// snapshot returns the cached snapshot when younger than RefreshInterval
// (and not from the future of a clock moved back), else reloads.
func (m *Manager) snapshot(ctx context.Context) (*snapshot, error) {
	m.mu.Lock()
	s := m.snap
	m.mu.Unlock()
	if s != nil {
		if age := m.now().Sub(s.loaded); age >= 0 && age < RefreshInterval {
			return s, nil
		}
	}
	return m.load(ctx)
}

// Signer returns the current key and its id.
func (m *Manager) Signer(ctx context.Context) (kid string, key *ecdsa.PrivateKey, err error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return "", nil, err
	}
	if s.current == nil {
		if s, err = m.load(ctx); err != nil {
			return "", nil, err
		}
		if s.current == nil {
			return "", nil, errors.New("keys: no current signing key (Maintain has not run)")
		}
	}
	return s.currentKID, s.current, nil
}

// JWKS returns the published public keys, newest first.
func (m *Manager) JWKS(ctx context.Context) ([]token.JWK, error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	var out []token.JWK
	for _, k := range s.keys {
		if k.Published(now) {
			out = append(out, token.JWK{Kty: "EC", Crv: "P-256", X: k.X, Y: k.Y, Kid: k.ID, Alg: token.Algorithm, Use: "sig"})
		}
	}
	return out, nil
}

// Statuses describes the published keys, newest first.
func (m *Manager) Statuses(ctx context.Context) ([]Status, error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	var out []Status
	for _, k := range s.keys {
		if k.Published(now) {
			out = append(out, Status{KID: k.ID, State: k.State, CreatedAt: k.CreatedAt, ActivatedAt: k.ActivatedAt, RemoveAt: k.RemoveAt})
		}
	}
	return out, nil
}

// Maintain brings the keys in line with the policy at now: it creates the
// first keys, rotates a key that has been current for its lifetime,
// removes retired keys past their overlap, and makes sure a next key is
// published. Replicas may run it concurrently: one wins, the others
// reload.
func (m *Manager) Maintain(ctx context.Context) error {
	_, err := m.apply(ctx, false)
	return err
}

// Rotate rotates now: next becomes current, current retires, a new next is
// created. It returns the kid that signs from now on. When another replica
// rotates at the same moment, its rotation counts.
func (m *Manager) Rotate(ctx context.Context) (string, error) {
	return m.apply(ctx, true)
}

func (m *Manager) apply(ctx context.Context, force bool) (string, error) {
	var lastErr error
	for range 3 {
		s, err := m.load(ctx)
		if err != nil {
			return "", err
		}
		now := m.now()
		plan := domain.PlanKeys(s.keys, now, m.policy, force)
		if plan.Empty() {
			return s.currentKID, nil
		}
		var fresh []domain.SigningKey
		if plan.NewCurrent {
			k, err := m.generate(domain.KeyCurrent, now)
			if err != nil {
				return "", err
			}
			fresh = append(fresh, k)
		}
		if plan.NewNext {
			k, err := m.generate(domain.KeyNext, now)
			if err != nil {
				return "", err
			}
			fresh = append(fresh, k)
		}
		err = m.store.ApplyKeyPlan(ctx, plan, fresh, now, now.Add(m.policy.Overlap))
		if errors.Is(err, domain.ErrConflict) {
			lastErr = err
			after, lerr := m.load(ctx)
			if lerr != nil {
				return "", lerr
			}
			if force && after.currentKID != s.currentKID {
				return after.currentKID, nil // another replica rotated just now
			}
			continue
		}
		if err != nil {
			return "", err
		}
		if plan.Retire != "" || plan.Promote != "" || plan.NewCurrent || len(plan.Remove) > 0 {
			m.log.InfoContext(ctx, "signing keys changed", "retired", plan.Retire, "current", plan.Promote, "removed", plan.Remove, "forced", force)
		}
		after, err := m.load(ctx)
		if err != nil {
			return "", err
		}
		return after.currentKID, nil
	}
	return "", fmt.Errorf("keys: signing keys keep changing under this replica: %w", lastErr)
}

// generate makes a fresh key in state at now, sealed.
func (m *Manager) generate(state domain.KeyState, now time.Time) (domain.SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("keys: generate: %w", err)
	}
	kid, err := token.Thumbprint(&priv.PublicKey)
	if err != nil {
		return domain.SigningKey{}, err
	}
	jwk, err := token.PublicJWK(kid, &priv.PublicKey)
	if err != nil {
		return domain.SigningKey{}, err
	}
	sealed, err := m.seal(kid, priv)
	if err != nil {
		return domain.SigningKey{}, err
	}
	k := domain.SigningKey{ID: kid, State: state, X: jwk.X, Y: jwk.Y, Private: sealed, CreatedAt: now}
	if state == domain.KeyCurrent {
		k.ActivatedAt = now
	}
	return k, nil
}

const (
	plainPrefix  = "plain:"
	sealedPrefix = "aesgcm:"
)

// seal encodes the private scalar of priv, encrypted when a
// key-encryption key is configured.
func (m *Manager) seal(kid string, priv *ecdsa.PrivateKey) (string, error) {
	raw, err := priv.Bytes()
	if err != nil {
		return "", fmt.Errorf("keys: encode private key: %w", err)
	}
	if m.aead == nil {
		return plainPrefix + base64.RawStdEncoding.EncodeToString(raw), nil
	}
	nonce := make([]byte, m.aead.NonceSize())
	rand.Read(nonce)
	out := m.aead.Seal(nonce, nonce, raw, []byte(kid))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// open decodes a stored private key and checks it matches its public half.
func (m *Manager) open(k domain.SigningKey) (*ecdsa.PrivateKey, error) {
	var raw []byte
	switch {
	case strings.HasPrefix(k.Private, plainPrefix):
		b, err := base64.RawStdEncoding.DecodeString(k.Private[len(plainPrefix):])
		if err != nil {
			return nil, fmt.Errorf("keys: signing key %s: bad encoding", k.ID)
		}
		raw = b
	case strings.HasPrefix(k.Private, sealedPrefix):
		if m.aead == nil {
			return nil, fmt.Errorf("keys: signing key %s is sealed and no key-encryption key is configured", k.ID)
		}
		b, err := base64.RawStdEncoding.DecodeString(k.Private[len(sealedPrefix):])
		ns := m.aead.NonceSize()
		if err != nil || len(b) < ns {
			return nil, fmt.Errorf("keys: signing key %s: bad encoding", k.ID)
		}
		if raw, err = m.aead.Open(nil, b[:ns], b[ns:], []byte(k.ID)); err != nil {
			return nil, fmt.Errorf("keys: signing key %s does not open with the configured key-encryption key", k.ID)
		}
	default:
		return nil, fmt.Errorf("keys: signing key %s: unknown sealing", k.ID)
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: bad private key", k.ID)
	}
	if kid, err := token.Thumbprint(&priv.PublicKey); err != nil || kid != k.ID {
		return nil, fmt.Errorf("keys: signing key %s: private half does not match its id", k.ID)
	}
	return priv, nil
}
