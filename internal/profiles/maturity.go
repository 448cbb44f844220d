package profiles

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

// DefaultMaturityCacheTTL is how long a MaturityLookup remembers an
// answer: a lowered maturity level reaches the other services within it.
const DefaultMaturityCacheTTL = 3 * time.Second

// maxCacheEntries bounds the cache of a MaturityLookup.
const maxCacheEntries = 10_000

// MaturityLookup resolves a profile to its maturity level by calling
// GetProfile as the caller of ctx, so that a profile is resolved only for
// the account that owns it (or an admin). It satisfies the catalog's
// catalog.Profiles, and serves the gateway and the other services alike.
// It is safe for concurrent use.
type MaturityLookup struct {
	client profilesv1.ProfilesServiceClient
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[lookupKey]cachedLevel
}

// lookupKey is who asked about which profile: answers are cached per
// caller, never shared between accounts.
type lookupKey struct {
	account, roles, profileID string
}

type cachedLevel struct {
	level   string
	expires time.Time
}

// LookupOption configures a MaturityLookup.
type LookupOption func(*MaturityLookup)

// WithCacheTTL sets how long answers are remembered; zero or less turns
// the cache off.
func WithCacheTTL(d time.Duration) LookupOption {
	return func(m *MaturityLookup) { m.ttl = d }
}

// withClock sets the cache's clock (tests).
func withClock(now func() time.Time) LookupOption {
	return func(m *MaturityLookup) { m.now = now }
}

// NewMaturityLookup returns a lookup calling the profiles service over
// conn (for example env.Peers.Conn("profiles")), caching answers for
// DefaultMaturityCacheTTL.
func NewMaturityLookup(conn grpc.ClientConnInterface, opts ...LookupOption) *MaturityLookup {
	m := &MaturityLookup{
		client: profilesv1.NewProfilesServiceClient(conn),
		ttl:    DefaultMaturityCacheTTL,
		now:    time.Now,
		cache:  map[lookupKey]cachedLevel{},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// ProfileMaturity returns the level ("kids", "teen" or "adult") of the
// profile, as seen by the caller in ctx: the principal of the outgoing
// metadata (the gateway sets it with principal.NewOutgoingContext) or else
// that of the call being served (forwarded). A profile that does not
// exist, belongs to another account or is malformed is an error matching
// both errors.Is(err, catalog/domain.ErrNotFound) and a gRPC NotFound
// status; any other error means the lookup failed.
func (m *MaturityLookup) ProfileMaturity(ctx context.Context, profileID string) (string, error) {
	ctx = principal.Forward(ctx)
	key, cacheable := m.keyOf(ctx, profileID)
	if cacheable {
		if level, ok := m.cached(key); ok {
			return level, nil
		}
	}
	resp, err := m.client.GetProfile(ctx, &profilesv1.GetProfileRequest{Id: profileID})
	if err != nil {
		switch status.Code(err) {
		case codes.NotFound, codes.InvalidArgument:
			return "", &UnknownProfileError{ProfileID: profileID}
		}
		return "", fmt.Errorf("profiles: GetProfile %q: %w", profileID, err)
	}
	level := resp.GetProfile().GetMaturityLevel()
	if _, err := catalog.ParseLevel(level); err != nil {
		return "", fmt.Errorf("profiles: profile %q has maturity level %q", profileID, level)
	}
	if cacheable {
		m.remember(key, level)
	}
	return level, nil
}

func (m *MaturityLookup) keyOf(ctx context.Context, profileID string) (lookupKey, bool) {
	if m.ttl <= 0 {
		return lookupKey{}, false
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	account := md.Get(principal.KeyAccount)
	if len(account) == 0 || account[0] == "" {
		return lookupKey{}, false // answered Unauthenticated; nothing to keep
	}
	return lookupKey{account: account[0], roles: strings.Join(md.Get(principal.KeyRoles), ","), profileID: profileID}, true
}

func (m *MaturityLookup) cached(key lookupKey) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cache[key]
	if !ok || !m.now().Before(c.expires) {
		return "", false
	}
	return c.level, true
}

func (m *MaturityLookup) remember(key lookupKey, level string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(m.cache) >= maxCacheEntries {
		for k, c := range m.cache {
			if !now.Before(c.expires) {
				delete(m.cache, k)
			}
		}
		if len(m.cache) >= maxCacheEntries {
			clear(m.cache)
		}
	}
	m.cache[key] = cachedLevel{level: level, expires: now.Add(m.ttl)}
}

// UnknownProfileError is what MaturityLookup returns for a profile that
// does not exist or that the caller may not see. It matches
// catalog/domain.ErrNotFound and profiles/domain.ErrNotFound with
// errors.Is, and is a gRPC NotFound status (reason NOT_FOUND).
type UnknownProfileError struct {
	ProfileID string
}

func (e *UnknownProfileError) Error() string {
	return fmt.Sprintf("profile %q not found", e.ProfileID)
}

// Is matches the not-found sentinels of the catalog and of profiles.
func (e *UnknownProfileError) Is(target error) bool {
	return target == catalog.ErrNotFound || target == domain.ErrNotFound
}

// GRPCStatus is the NotFound status of the error, so that status.Code and
// a gRPC handler returning it answer NOT_FOUND.
func (e *UnknownProfileError) GRPCStatus() *status.Status {
	return status.Convert(rpcerr.New(codes.NotFound, ReasonNotFound, "profile not found"))
}
