// Package identity is the identity service: accounts with argon2id password
// hashes, sign-up and login (throttled per account and per client address),
// ES256 access tokens and rotating refresh tokens grouped in families
// (sessions), the signing keys and their JWKS, and API keys for machine
// clients, served over gRPC as marquee.identity.v1.IdentityService.
//
// The program wires it with Start (start.go); tests and tools wire it by
// hand:
//
//	db, err := storage.Open(ctx, storage.Config{Service: "identity", ...}, identity.Migrations)
//	svc, err := identity.NewService(ctx, db, identity.Options{Logger: log})
//	err = svc.Seed(ctx, creds) // demo and admin accounts, when wanted
//	svc.Register(grpcServer)
//	go svc.RunMaintenance(ctx)  // key rotation and pruning
//
// Layout: domain holds the model and its rules; password the argon2id
// hashing; token the JWT format, signing and verification (what the gateway
// imports); revocation how verifiers learn about revoked sessions (also for
// the gateway); keys the signing-key life cycle; store the SQL repository
// and its migrations. This package holds the wiring and the gRPC edge,
// where domain errors become status codes (errors.go).
//
// Events (through the transactional outbox):
//
//	marquee.identity.account_created  data: marquee.identity.v1.Account JSON (no password or hash)
//	marquee.identity.session_revoked  data: revocation.Event JSON
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/identity/keys"
	"github.com/marquee-tv/marquee/internal/identity/password"
	"github.com/marquee-tv/marquee/internal/identity/revocation"
	"github.com/marquee-tv/marquee/internal/identity/store"
	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Migrations is the identity schema; open the service database with it.
var Migrations = store.Migrations

// Token constants, re-exported for callers that import only this package.
const (
	// Issuer is the "iss" claim of access tokens.
	Issuer = token.Issuer
	// Audience is the "aud" claim of access tokens.
	Audience = token.Audience
	// AccessTokenTTL is the lifetime of an access token.
	AccessTokenTTL = token.TTL
	// RefreshTokenTTL is the lifetime of a refresh token.
	RefreshTokenTTL = domain.RefreshTokenTTL
)

// Event subjects the service publishes.
const (
	// AccountCreatedSubject is published when an account is created (sign-up
	// or seeding); data: identityv1.Account as JSON.
	AccountCreatedSubject = "marquee.identity.account_created"
	// SessionRevokedSubject is published when a refresh-token family is
	// revoked (logout, refresh-token reuse); data: revocation.Event as JSON.
	// See package revocation for how the gateway follows it.
	SessionRevokedSubject = revocation.Subject
)

// Options configure a Service. The zero value is production-ready.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives internal errors and notable events (never a
	// password, token or key); nil discards.
	Logger *slog.Logger
	// Password are the argon2id parameters for new hashes; zero means
	// password.Default. Tests use password.Cheap.
	Password password.Params
	// HashConcurrency bounds concurrent password hashes (and their memory);
	// 0 means GOMAXPROCS.
	HashConcurrency int
	// Throttle limits failed logins; zero means domain.DefaultThrottle.
	Throttle domain.ThrottlePolicy
	// KeyLifetime is how long a signing key signs before automatic
	// rotation; 0 means keys.DefaultLifetime (24 h).
	KeyLifetime time.Duration
	// KeyEncryptionKey, when set (32 bytes), seals signing keys at rest.
	KeyEncryptionKey []byte
	// MaintenanceInterval is how often RunMaintenance rotates and prunes;
	// 0 means a minute.
	MaintenanceInterval time.Duration
	// Notify, when set, is called after every commit that wrote events to
	// the outbox (the relay's Notify).
	Notify func()
	// Metrics, when set, receives the service's metrics (see metrics.go).
	Metrics prometheus.Registerer
}

// Service is the identity service.
type Service struct {
	store  *store.Store
	keys   *keys.Manager
	hasher *password.Hasher
	server *server
	opts   Options
	log    *slog.Logger
}

// NewService returns the service over db, which must have been opened with
// Migrations (checked here), and makes sure signing keys exist.
func NewService(ctx context.Context, db *storage.DB, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("identity: database is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Password == (password.Params{}) {
		opts.Password = password.Default
	}
	if opts.Throttle == (domain.ThrottlePolicy{}) {
		opts.Throttle = domain.DefaultThrottle
	}
	if opts.MaintenanceInterval <= 0 {
		opts.MaintenanceInterval = time.Minute
	}
	if opts.Notify == nil {
		opts.Notify = func() {}
	}
	hasher, err := password.NewHasher(opts.Password, opts.HashConcurrency)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	st := store.New(db, store.Options{OnAccountCreated: publishAccountCreated, OnSessionRevoked: publishSessionRevoked})
	if err := st.CheckSchema(ctx); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	km, err := keys.New(st, keys.Options{Lifetime: opts.KeyLifetime, KeyEncryptionKey: opts.KeyEncryptionKey, Now: opts.Now, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := km.Maintain(ctx); err != nil {
		return nil, fmt.Errorf("identity: signing keys: %w", err)
	}
	met, err := newMetrics(opts.Metrics, hasher)
	if err != nil {
		return nil, fmt.Errorf("identity: metrics: %w", err)
	}
	s := &Service{store: st, keys: km, hasher: hasher, opts: opts, log: opts.Logger}
	s.server = &server{
		metrics:  met,
		store:    st,
		keys:     km,
		hasher:   hasher,
		throttle: opts.Throttle,
		now:      opts.Now,
		notify:   opts.Notify,
		log:      opts.Logger,
	}
	return s, nil
}

// Register registers the IdentityService on a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	identityv1.RegisterIdentityServiceServer(r, s.server)
}

// Server returns the IdentityService implementation, for calling it in
// process.
func (s *Service) Server() identityv1.IdentityServiceServer { return s.server }

// Keys returns the signing-key manager.
func (s *Service) Keys() *keys.Manager { return s.keys }

// Store returns the repository (for tools and tests).
func (s *Service) Store() *store.Store { return s.store }

// Maintain runs one maintenance pass: signing-key rotation and removal,
// and pruning of old login failures, refresh tokens and sessions.
func (s *Service) Maintain(ctx context.Context) error {
	errKeys := s.keys.Maintain(ctx)
	_, errPrune := s.store.Prune(ctx, s.opts.Now(), s.opts.Throttle.MaxWindow())
	return errors.Join(errKeys, errPrune)
}

// RunMaintenance runs Maintain every MaintenanceInterval until ctx ends,
// logging failures and going on. It returns nil when ctx ends.
func (s *Service) RunMaintenance(ctx context.Context) error {
	t := time.NewTicker(s.opts.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Maintain(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "identity maintenance failed", "err", err)
			}
		}
	}
}

// Seed creates the demo viewer (seed.DemoAccountID, role viewer) and the
// admin (seed.AdminAccountID, roles viewer and admin) with the emails and
// passwords of creds, leaving an account that already exists alone. Safe
// on every start and from several replicas at once.
func (s *Service) Seed(ctx context.Context, creds seed.Credentials) error {
	accounts := []struct {
		id, name string
		cred     seed.Account
		roles    []string
	}{
		{seed.DemoAccountID, "Demo Viewer", creds.Demo, []string{domain.RoleViewer}},
		{seed.AdminAccountID, "Admin", creds.Admin, []string{domain.RoleAdmin, domain.RoleViewer}},
	}
	hashed := false
	defer func() {
		if hashed {
			debug.FreeOSMemory() // give back the hashes' memory at once: an idle service stays small
		}
	}()
	for _, a := range accounts {
		if _, err := s.store.Account(ctx, a.id); err == nil {
			continue
		} else if !errors.Is(err, domain.ErrNotFound) {
			return fmt.Errorf("identity: seed: %w", err)
		}
		email, err := domain.NormalizeEmail("email", a.cred.Email)
		if err != nil {
			return fmt.Errorf("identity: seed %s: %w", a.name, err)
		}
		if err := domain.CheckPasswordInput("password", a.cred.Password); err != nil {
			return fmt.Errorf("identity: seed %s: %w", a.name, err)
		}
		hash, err := s.hasher.Hash(ctx, a.cred.Password)
		if err != nil {
			return fmt.Errorf("identity: seed: %w", err)
		}
		hashed = true
		acct := domain.Account{ID: a.id, Email: email, Name: a.name, Roles: a.roles, PasswordHash: hash, CreatedAt: s.opts.Now()}
		switch err := s.store.CreateAccount(ctx, acct, nil, nil); {
		case err == nil:
			s.opts.Notify()
			s.log.InfoContext(ctx, "seeded account", "account_id", a.id, "roles", a.roles)
		case errors.Is(err, domain.ErrAccountExists):
			// another replica seeded it first
		case errors.Is(err, domain.ErrEmailTaken):
			s.log.WarnContext(ctx, "not seeding an account: its email belongs to another account", "account_id", a.id)
		default:
			return fmt.Errorf("identity: seed: %w", err)
		}
	}
	return nil
}

// accountProto is the API form of an account (never its hash).
func accountProto(a domain.Account) *identityv1.Account {
	return &identityv1.Account{Id: a.ID, Email: a.Email, Name: a.Name, Roles: a.Roles, CreatedAt: timestamppb.New(a.CreatedAt)}
}

func publishAccountCreated(ctx context.Context, tx *storage.Tx, a domain.Account) error {
	ev, err := events.NewEvent(AccountCreatedSubject, a.ID, accountProto(a))
	if err != nil {
		return err
	}
	return events.Publish(ctx, tx, ev)
}

func publishSessionRevoked(ctx context.Context, tx *storage.Tx, r domain.Revocation) error {
	ev, err := events.NewEvent(SessionRevokedSubject, r.SessionID, revocation.Event{
		SessionID: r.SessionID, AccountID: r.AccountID, Reason: r.Reason, RevokedAt: r.RevokedAt,
	})
	if err != nil {
		return err
	}
	return events.Publish(ctx, tx, ev)
}
