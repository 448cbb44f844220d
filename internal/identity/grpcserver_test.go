package identity_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/identity"
	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/identity/keys"
	"github.com/marquee-tv/marquee/internal/identity/password"
	"github.com/marquee-tv/marquee/internal/identity/revocation"
	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

const pw = "correct horse battery"

// TestJourney: sign up, log in, refresh (the old token stops working; its
// reuse revokes the family, whose newest token then fails too), log out.
func TestJourney(t *testing.T) {
	storagetest.ForEach(t, "identity", identity.Migrations, func(t *testing.T, db *storage.DB) {
		h := serve(t, db, identity.Options{})
		ctx := context.Background()

		up := signUp(t, h, "  Ann@Example.com ", pw)
		if up.GetExpiresIn() != 900 || up.GetAccountId() == "" || len(up.GetRefreshToken()) != domain.RefreshTokenLength {
			t.Errorf("SignUp = %+v, want an account, a 43-character refresh token, expires_in 900", up)
		}
		claims := verify(t, h, up.GetAccessToken())
		if claims.AccountID != up.GetAccountId() || !slices.Equal(claims.Roles, []string{"viewer"}) || claims.SessionID == "" ||
			!claims.ExpiresAt.Equal(t0.Add(15*time.Minute)) || claims.ID == "" {
			t.Errorf("access token claims = %+v", claims)
		}
		me, err := h.c.GetAccount(as(caller(t, h, up.GetAccessToken())), &identityv1.GetAccountRequest{})
		if err != nil || me.GetAccount().GetEmail() != "ann@example.com" || me.GetAccount().GetName() != "Test User" || me.GetAccount().GetId() != up.GetAccountId() {
			t.Errorf("GetAccount = %v, %v; want ann@example.com", me, err)
		}
		_, err = h.c.GetAccount(ctx, &identityv1.GetAccountRequest{})
		wantErr(t, "GetAccount without a caller", err, codes.Unauthenticated, "UNAUTHENTICATED")

		_, err = h.c.Login(ctx, &identityv1.LoginRequest{Email: "ann@example.com", Password: "wrong password!"})
		wantErr(t, "Login with a wrong password", err, codes.Unauthenticated, "INVALID_CREDENTIALS")
		in, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: "ANN@example.com", Password: pw})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		session := verify(t, h, in.GetAccessToken()).SessionID
		if session == claims.SessionID {
			t.Error("a login reused the sign-up's session; want a family per login")
		}

		h.clock.add(time.Minute)
		r1, err := h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: in.GetRefreshToken()})
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if r1.GetRefreshToken() == in.GetRefreshToken() || verify(t, h, r1.GetAccessToken()).SessionID != session {
			t.Error("Refresh did not rotate within the same family")
		}
		r2, err := h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: r1.GetRefreshToken()})
		if err != nil {
			t.Fatalf("second Refresh: %v", err)
		}
		// The first refresh token again: reuse, the family is revoked...
		_, err = h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: in.GetRefreshToken()})
		wantErr(t, "Refresh with a rotated token", err, codes.Unauthenticated, "REFRESH_TOKEN_REUSED")
		// ...so the newest token of the family fails too.
		_, err = h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: r2.GetRefreshToken()})
		wantErr(t, "Refresh with the newest token of a revoked family", err, codes.Unauthenticated, "UNAUTHENTICATED")
		// The gateway learns of it: a session_revoked event for the sid.
		revoked := outbox(t, db, identity.SessionRevokedSubject)
		if len(revoked) != 1 || revoked[0]["session_id"] != session || revoked[0]["reason"] != revocation.ReasonReuse ||
			revoked[0]["account_id"] != up.GetAccountId() {
			t.Errorf("session_revoked events = %v, want one for %s (reuse)", revoked, session)
		}
		// The sign-up's family is untouched; log it out.
		r3, err := h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: up.GetRefreshToken()})
		if err != nil {
			t.Fatalf("Refresh of another family: %v", err)
		}
		if _, err := h.c.Logout(as(caller(t, h, r3.GetAccessToken())), &identityv1.LogoutRequest{}); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		_, err = h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: r3.GetRefreshToken()})
		wantErr(t, "Refresh after logout", err, codes.Unauthenticated, "UNAUTHENTICATED")
		if _, err := h.c.Logout(as(caller(t, h, r3.GetAccessToken())), &identityv1.LogoutRequest{}); err != nil {
			t.Errorf("second Logout = %v, want nil (idempotent)", err)
		}
		revoked = outbox(t, db, identity.SessionRevokedSubject)
		if len(revoked) != 2 || revoked[1]["session_id"] != claims.SessionID || revoked[1]["reason"] != revocation.ReasonLogout {
			t.Errorf("session_revoked events = %v, want a second for %s (logout)", revoked, claims.SessionID)
		}
		for _, ev := range revoked {
			if _, err := revocation.Decode(mustJSON(t, ev)); err != nil {
				t.Errorf("the event does not decode for the gateway: %v", err)
			}
		}
		created := outbox(t, db, identity.AccountCreatedSubject)
		if len(created) != 1 || created[0]["id"] != up.GetAccountId() || created[0]["email"] != "ann@example.com" {
			t.Errorf("account_created events = %v", created)
		}
		all := fmt.Sprint(outbox(t, db, identity.AccountCreatedSubject), revoked)
		for _, secret := range []string{pw, "argon2", in.GetRefreshToken(), up.GetRefreshToken()} {
			if strings.Contains(all, secret) {
				t.Errorf("an event carries a secret (%.12s...)", secret)
			}
		}
		if h.notices < 3 {
			t.Errorf("the relay was notified %d times, want after each commit with events (3)", h.notices)
		}
		for _, bad := range []string{"", "short", strings.Repeat("A", 43)} {
			_, err := h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: bad})
			if bad == "" {
				wantErr(t, "Refresh without a token", err, codes.InvalidArgument, "INVALID_ARGUMENT", "refresh_token")
			} else {
				wantErr(t, "Refresh("+bad+")", err, codes.Unauthenticated, "UNAUTHENTICATED")
			}
		}
		// Refresh tokens expire.
		h.clock.add(domain.RefreshTokenTTL)
		fresh, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: "ann@example.com", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		h.clock.add(domain.RefreshTokenTTL)
		_, err = h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: fresh.GetRefreshToken()})
		wantErr(t, "Refresh of an expired token", err, codes.Unauthenticated, "UNAUTHENTICATED")
	})
}

func TestSignUpValidation(t *testing.T) {
	h := serve(t, storagetest.OpenSQLite(t, "identity", identity.Migrations), identity.Options{})
	ctx := context.Background()
	tests := []struct {
		name            string
		email, pw, user string
		fields          []string
	}{
		{"everything missing", "", "", "", []string{"email", "password", "name"}},
		{"bad email", "not-an-email", pw, "Ann", []string{"email"}},
		{"short password", "a@example.com", "123456789", "Ann", []string{"password"}},
		{"one repeated character", "a@example.com", "zzzzzzzzzzzz", "Ann", []string{"password"}},
		{"password is the email", "longname@example.com", "LongName@Example.com", "Ann", []string{"password"}},
		{"name too long", "a@example.com", pw, strings.Repeat("n", 101), []string{"name"}},
	}
	for _, tt := range tests {
		_, err := h.c.SignUp(ctx, &identityv1.SignUpRequest{Email: tt.email, Password: tt.pw, Name: tt.user})
		wantErr(t, "SignUp("+tt.name+")", err, codes.InvalidArgument, "INVALID_ARGUMENT", tt.fields...)
	}
	signUp(t, h, "taken@example.com", pw)
	_, err := h.c.SignUp(ctx, &identityv1.SignUpRequest{Email: "TAKEN@example.com", Password: pw + "!", Name: "B"})
	wantErr(t, "SignUp with a taken email", err, codes.AlreadyExists, "EMAIL_TAKEN")
	if n := len(outbox(t, h.db, identity.AccountCreatedSubject)); n != 1 {
		t.Errorf("account_created events = %d, want 1 (refused sign-ups change nothing)", n)
	}
	_, err = h.c.Login(ctx, &identityv1.LoginRequest{Email: "", Password: ""})
	wantErr(t, "Login with nothing", err, codes.InvalidArgument, "INVALID_ARGUMENT", "email", "password")
}

// retryAfter returns the RetryInfo delay of a throttled status.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	st := wantErr(t, "throttled login", err, codes.ResourceExhausted, "TOO_MANY_ATTEMPTS")
	if st == nil {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Errorf("throttled status %v has no RetryInfo", err)
	return 0
}

func TestLoginThrottling(t *testing.T) {
	storagetest.ForEach(t, "identity", identity.Migrations, func(t *testing.T, db *storage.DB) {
		h := serve(t, db, identity.Options{})
		signUp(t, h, "ann@example.com", pw)
		login := func(ctx context.Context, email, p string) error {
			_, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: email, Password: p})
			return err
		}
		ctx := from("203.0.113.1")

		// Per account: 5 failures, then even the right password waits.
		for i := range 5 {
			wantErr(t, fmt.Sprintf("failure %d", i), login(ctx, "ann@example.com", "wrong password"), codes.Unauthenticated, "INVALID_CREDENTIALS")
		}
		if d := retryAfter(t, login(ctx, "ann@example.com", pw)); d <= 0 || d > 15*time.Minute {
			t.Errorf("RetryInfo = %v, want within the 15-minute window", d)
		}
		// From another address the account is still locked: the limit is
		// per account.
		retryAfter(t, login(from("198.51.100.9"), "Ann@Example.com", pw))
		// Unknown emails are throttled the same way: the answer does not
		// tell whether an account exists.
		for range 5 {
			wantErr(t, "unknown email", login(ctx, "nobody@example.com", "whatever12"), codes.Unauthenticated, "INVALID_CREDENTIALS")
		}
		retryAfter(t, login(ctx, "nobody@example.com", "whatever12"))

		h.clock.add(15 * time.Minute)
		if err := login(ctx, "ann@example.com", pw); err != nil {
			t.Fatalf("login after the window = %v", err)
		}
		// A success resets the account's counter.
		for range 4 {
			login(ctx, "ann@example.com", "wrong password")
		}
		if err := login(ctx, "ann@example.com", pw); err != nil {
			t.Fatalf("login after 4 failures = %v", err)
		}
		for range 4 {
			login(ctx, "ann@example.com", "wrong password")
		}
		if err := login(ctx, "ann@example.com", pw); err != nil {
			t.Errorf("login after a success and 4 more failures = %v, want the counter reset by the success", err)
		}

		// Per address: 20 failures over many accounts lock the address,
		// not the accounts from elsewhere.
		sweep := from("192.0.2.50")
		for i := range 20 {
			wantErr(t, "sweep", login(sweep, fmt.Sprintf("user%d@example.com", i), "wrong password"), codes.Unauthenticated, "INVALID_CREDENTIALS")
		}
		retryAfter(t, login(sweep, "ann@example.com", pw))
		if err := login(from("192.0.2.51"), "ann@example.com", pw); err != nil {
			t.Errorf("login from another address during the sweep = %v", err)
		}
	})
}

// TestUnknownEmailCostsAHash checks a login for an unknown email runs an
// argon2id computation like one for a known email with a wrong password,
// so its timing does not tell the email is unknown; and that the metrics
// count logins by result.
func TestUnknownEmailCostsAHash(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := serve(t, storagetest.OpenSQLite(t, "identity", identity.Migrations), identity.Options{Metrics: reg})
	signUp(t, h, "ann@example.com", pw)
	hashes := func() float64 { return metricValue(t, reg, "marquee_identity_password_hashes_total", "") }
	for _, email := range []string{"ann@example.com", "nobody@example.com"} {
		before := hashes()
		_, err := h.c.Login(context.Background(), &identityv1.LoginRequest{Email: email, Password: "wrong password"})
		wantErr(t, "Login("+email+")", err, codes.Unauthenticated, "INVALID_CREDENTIALS")
		if got := hashes() - before; got != 1 {
			t.Errorf("Login(%s, wrong password) ran %v argon2id computations, want 1", email, got)
		}
	}
	if _, err := h.c.Login(context.Background(), &identityv1.LoginRequest{Email: "ann@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	for res, want := range map[string]float64{"ok": 1, "invalid_credentials": 2} {
		if got := metricValue(t, reg, "marquee_identity_logins_total", res); got != want {
			t.Errorf("logins_total{result=%q} = %v, want %v", res, got, want)
		}
	}
}

// metricValue reads a counter from reg; result selects the label value of
// a counter vector ("" for a plain counter).
func metricValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if result == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestRehashOnLogin(t *testing.T) {
	db := storagetest.OpenSQLite(t, "identity", identity.Migrations)
	old := serve(t, db, identity.Options{})
	up := signUp(t, old, "ann@example.com", pw)
	stronger := password.Cheap
	stronger.Time = 2
	h := serve(t, db, identity.Options{Password: stronger})
	if _, err := h.c.Login(context.Background(), &identityv1.LoginRequest{Email: "ann@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	a, err := h.svc.Store().Account(context.Background(), up.GetAccountId())
	if err != nil || !strings.Contains(a.PasswordHash, ",t=2,") {
		t.Errorf("hash after login with new parameters = %q, %v; want rehashed with t=2", a.PasswordHash, err)
	}
	if _, err := h.c.Login(context.Background(), &identityv1.LoginRequest{Email: "ann@example.com", Password: pw}); err != nil {
		t.Errorf("login with the rehashed password = %v", err)
	}
}

func TestSigningKeyRotation(t *testing.T) {
	storagetest.ForEach(t, "identity", identity.Migrations, func(t *testing.T, db *storage.DB) {
		h := serve(t, db, identity.Options{})
		ctx := context.Background()
		viewer := signUp(t, h, "ann@example.com", pw)
		before := verify(t, h, viewer.GetAccessToken())
		admin := principal.Principal{AccountID: "admin-1", Roles: []string{"viewer", "admin"}}

		_, err := h.c.RotateSigningKeys(ctx, &identityv1.RotateSigningKeysRequest{})
		wantErr(t, "RotateSigningKeys without a caller", err, codes.Unauthenticated, "UNAUTHENTICATED")
		_, err = h.c.RotateSigningKeys(as(caller(t, h, viewer.GetAccessToken())), &identityv1.RotateSigningKeysRequest{})
		wantErr(t, "RotateSigningKeys as a viewer", err, codes.PermissionDenied, "FORBIDDEN")

		jwksBefore := jwks(t, h)
		h.clock.add(time.Minute)
		rot, err := h.c.RotateSigningKeys(as(admin), &identityv1.RotateSigningKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if rot.GetActiveKid() == before.KeyID {
			t.Fatal("RotateSigningKeys kept the same active key")
		}
		if _, ok := jwksBefore.Lookup(rot.GetActiveKid()); !ok {
			t.Error("the new active key was not published before it became active")
		}
		got := map[string]string{}
		for _, k := range rot.GetKeys() {
			got[k.GetKid()] = k.GetState()
			if k.GetState() == "retiring" && !k.GetRetiresAt().AsTime().Equal(t0.Add(time.Minute).Add(keys.Overlap)) {
				t.Errorf("retiring key retires at %v, want %v", k.GetRetiresAt().AsTime(), t0.Add(time.Minute).Add(keys.Overlap))
			}
		}
		if len(got) != 3 || got[before.KeyID] != "retiring" || got[rot.GetActiveKid()] != "active" {
			t.Errorf("keys after rotation = %v, want the old one retiring, the new one active, and a next", got)
		}
		// A token issued before the rotation verifies against the new JWKS.
		if _, err := token.Verify(viewer.GetAccessToken(), jwks(t, h), h.clock.now()); err != nil {
			t.Errorf("token from before the rotation against the new JWKS: %v", err)
		}
		in, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: "ann@example.com", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		if c := verify(t, h, in.GetAccessToken()); c.KeyID != rot.GetActiveKid() {
			t.Errorf("new token signed by %s, want %s", c.KeyID, rot.GetActiveKid())
		}
		// Once the overlap has passed (and every token of the old key has
		// expired), the old key leaves the JWKS.
		h.clock.add(keys.Overlap)
		if err := h.svc.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := jwks(t, h).Lookup(before.KeyID); ok {
			t.Error("the retired key is still published after its overlap")
		}
		if _, err := token.Verify(viewer.GetAccessToken(), jwks(t, h), h.clock.now()); err == nil {
			t.Error("a token of a removed key still verifies")
		}
	})
}

func TestAPIKeys(t *testing.T) {
	storagetest.ForEach(t, "identity", identity.Migrations, func(t *testing.T, db *storage.DB) {
		h := serve(t, db, identity.Options{})
		ctx := context.Background()
		ann := caller(t, h, signUp(t, h, "ann@example.com", pw).GetAccessToken())
		bob := caller(t, h, signUp(t, h, "bob@example.com", pw).GetAccessToken())

		_, err := h.c.CreateAPIKey(ctx, &identityv1.CreateAPIKeyRequest{Name: "ci"})
		wantErr(t, "CreateAPIKey without a caller", err, codes.Unauthenticated, "UNAUTHENTICATED")
		_, err = h.c.CreateAPIKey(as(ann), &identityv1.CreateAPIKeyRequest{Name: "ops", Roles: []string{"admin"}})
		wantErr(t, "CreateAPIKey with a role the account lacks", err, codes.PermissionDenied, "FORBIDDEN")
		_, err = h.c.CreateAPIKey(as(ann), &identityv1.CreateAPIKeyRequest{Name: "", Roles: []string{"root"}, ExpiresAt: timestamppb.New(t0.Add(-time.Hour))})
		wantErr(t, "CreateAPIKey with bad input", err, codes.InvalidArgument, "INVALID_ARGUMENT", "name", "roles", "expires_at")

		made, err := h.c.CreateAPIKey(as(ann), &identityv1.CreateAPIKeyRequest{Name: "ci", ExpiresAt: timestamppb.New(t0.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		secret := made.GetApiKey()
		if !strings.HasPrefix(secret, "mq_"+made.GetKey().GetId()+"_") || made.GetKey().GetPrefix() != "mq_"+made.GetKey().GetId() ||
			!slices.Equal(made.GetKey().GetRoles(), []string{"viewer"}) {
			t.Errorf("CreateAPIKey = %v", made)
		}
		v, err := h.c.VerifyAPIKey(ctx, &identityv1.VerifyAPIKeyRequest{ApiKey: secret})
		if err != nil || v.GetAccountId() != ann.AccountID || v.GetKeyId() != made.GetKey().GetId() || !slices.Equal(v.GetRoles(), []string{"viewer"}) {
			t.Errorf("VerifyAPIKey = %v, %v; want ann's key with viewer", v, err)
		}
		// The secret is stored hashed: it appears nowhere in the database.
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM api_keys WHERE hash = $1 OR name = $1", secret).Scan(&n); err != nil || n != 0 {
			t.Errorf("the API key secret is stored in the clear (%d, %v)", n, err)
		}
		tampered := secret[:len(secret)-2] + "AA"
		if tampered == secret {
			tampered = secret[:len(secret)-2] + "BA"
		}
		for name, key := range map[string]string{"tampered": tampered, "garbage": "mq_nope", "unknown": mustNewKey()} {
			_, err := h.c.VerifyAPIKey(ctx, &identityv1.VerifyAPIKeyRequest{ApiKey: key})
			wantErr(t, "VerifyAPIKey("+name+")", err, codes.Unauthenticated, "UNAUTHENTICATED")
		}
		_, err = h.c.VerifyAPIKey(ctx, &identityv1.VerifyAPIKeyRequest{})
		wantErr(t, "VerifyAPIKey()", err, codes.InvalidArgument, "INVALID_ARGUMENT", "api_key")

		// An API key cannot mint API keys.
		machine := principal.Principal{AccountID: ann.AccountID, Roles: v.GetRoles(), APIKeyID: v.GetKeyId()}
		_, err = h.c.CreateAPIKey(as(machine), &identityv1.CreateAPIKeyRequest{Name: "child"})
		wantErr(t, "CreateAPIKey with an API key", err, codes.PermissionDenied, "FORBIDDEN")

		// Listing: own keys only, newest first, no secrets, paged.
		h.clock.add(time.Second)
		second, err := h.c.CreateAPIKey(as(ann), &identityv1.CreateAPIKeyRequest{Name: "laptop"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.c.CreateAPIKey(as(bob), &identityv1.CreateAPIKeyRequest{Name: "bob's"}); err != nil {
			t.Fatal(err)
		}
		page1, err := h.c.ListAPIKeys(as(ann), &identityv1.ListAPIKeysRequest{PageSize: 1})
		if err != nil || len(page1.GetApiKeys()) != 1 || page1.GetApiKeys()[0].GetId() != second.GetKey().GetId() || page1.GetNextPageToken() == "" {
			t.Fatalf("ListAPIKeys page 1 = %v, %v", page1, err)
		}
		page2, err := h.c.ListAPIKeys(as(ann), &identityv1.ListAPIKeysRequest{PageSize: 1, PageToken: page1.GetNextPageToken()})
		if err != nil || len(page2.GetApiKeys()) != 1 || page2.GetApiKeys()[0].GetId() != made.GetKey().GetId() || page2.GetNextPageToken() != "" {
			t.Fatalf("ListAPIKeys page 2 = %v, %v", page2, err)
		}
		if page2.GetApiKeys()[0].GetLastUsedAt() == nil {
			t.Error("the verified key shows no last use")
		}
		if strings.Contains(fmt.Sprint(page1, page2), secret) {
			t.Error("ListAPIKeys shows a secret")
		}
		_, err = h.c.ListAPIKeys(as(ann), &identityv1.ListAPIKeysRequest{PageToken: "garbage"})
		wantErr(t, "ListAPIKeys with a bad token", err, codes.InvalidArgument, "INVALID_ARGUMENT", "page_token")
		_, err = h.c.ListAPIKeys(as(ann), &identityv1.ListAPIKeysRequest{PageSize: 101})
		wantErr(t, "ListAPIKeys with a huge page", err, codes.InvalidArgument, "INVALID_ARGUMENT", "page_size")

		// Revoking: not someone else's; then the key stops working.
		_, err = h.c.RevokeAPIKey(as(bob), &identityv1.RevokeAPIKeyRequest{Id: made.GetKey().GetId()})
		wantErr(t, "RevokeAPIKey of another account's key", err, codes.NotFound, "NOT_FOUND")
		_, err = h.c.RevokeAPIKey(as(ann), &identityv1.RevokeAPIKeyRequest{Id: "nope"})
		wantErr(t, "RevokeAPIKey(nope)", err, codes.NotFound, "NOT_FOUND")
		if _, err := h.c.RevokeAPIKey(as(ann), &identityv1.RevokeAPIKeyRequest{Id: second.GetKey().GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = h.c.VerifyAPIKey(ctx, &identityv1.VerifyAPIKeyRequest{ApiKey: second.GetApiKey()})
		wantErr(t, "VerifyAPIKey of a revoked key", err, codes.Unauthenticated, "UNAUTHENTICATED")
		// Expiry.
		if _, err := h.c.VerifyAPIKey(ctx, &identityv1.VerifyAPIKeyRequest{ApiKey: secret}); err != nil {
			t.Fatalf("VerifyAPIKey before expiry = %v", err)
		}
		h.clock.add(time.Hour)
		_, err = h.c.VerifyAPIKey(ctx, &identityv1.VerifyAPIKeyRequest{ApiKey: secret})
		wantErr(t, "VerifyAPIKey of an expired key", err, codes.Unauthenticated, "UNAUTHENTICATED")
	})
}

func mustNewKey() string {
	_, key, _ := domain.NewAPIKeySecret()
	return key
}

func TestLogoutVariants(t *testing.T) {
	h := serve(t, storagetest.OpenSQLite(t, "identity", identity.Migrations), identity.Options{})
	ctx := context.Background()
	up := signUp(t, h, "ann@example.com", pw)
	ann := caller(t, h, up.GetAccessToken())
	bob := signUp(t, h, "bob@example.com", pw)

	_, err := h.c.Logout(ctx, &identityv1.LogoutRequest{})
	wantErr(t, "Logout without a caller", err, codes.Unauthenticated, "UNAUTHENTICATED")
	_, err = h.c.Logout(as(ann), &identityv1.LogoutRequest{RefreshToken: bob.GetRefreshToken()})
	wantErr(t, "Logout with another account's refresh token", err, codes.NotFound, "NOT_FOUND")
	_, err = h.c.Logout(as(ann), &identityv1.LogoutRequest{RefreshToken: "x"})
	wantErr(t, "Logout with a malformed refresh token", err, codes.InvalidArgument, "INVALID_ARGUMENT", "refresh_token")
	machine := principal.Principal{AccountID: ann.AccountID, Roles: ann.Roles, APIKeyID: "k"}
	_, err = h.c.Logout(as(machine), &identityv1.LogoutRequest{})
	wantErr(t, "Logout by an API key without a token", err, codes.InvalidArgument, "INVALID_ARGUMENT", "refresh_token")
	// Bob's family is intact after the refused attempts.
	if _, err := h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: bob.GetRefreshToken()}); err != nil {
		t.Errorf("bob's refresh after ann's refused logout = %v", err)
	}

	// all_sessions revokes every family of the caller.
	var tokens []string
	for range 3 {
		in, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: "ann@example.com", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, in.GetRefreshToken())
	}
	if _, err := h.c.Logout(as(ann), &identityv1.LogoutRequest{AllSessions: true}); err != nil {
		t.Fatal(err)
	}
	for _, rt := range append(tokens, up.GetRefreshToken()) {
		_, err := h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: rt})
		wantErr(t, "Refresh after logout of all sessions", err, codes.Unauthenticated, "UNAUTHENTICATED")
	}
	if n := len(outbox(t, h.db, identity.SessionRevokedSubject)); n != 4 {
		t.Errorf("session_revoked events = %d, want 4 (one per family)", n)
	}
	// Logout by refresh token (e.g. from a machine client).
	in, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: "ann@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Logout(as(machine), &identityv1.LogoutRequest{RefreshToken: in.GetRefreshToken()}); err != nil {
		t.Fatal(err)
	}
	_, err = h.c.Refresh(ctx, &identityv1.RefreshRequest{RefreshToken: in.GetRefreshToken()})
	wantErr(t, "Refresh after logout by token", err, codes.Unauthenticated, "UNAUTHENTICATED")
}

func TestSeed(t *testing.T) {
	storagetest.ForEach(t, "identity", identity.Migrations, func(t *testing.T, db *storage.DB) {
		h := serve(t, db, identity.Options{})
		ctx := context.Background()
		creds := seed.Credentials{
			Demo:  seed.Account{Email: "demo@marquee.local", Password: "demo-password-1"},
			Admin: seed.Account{Email: "admin@marquee.local", Password: "admin-password-1"},
		}
		for range 2 {
			if err := h.svc.Seed(ctx, creds); err != nil {
				t.Fatalf("Seed: %v", err)
			}
		}
		for _, tt := range []struct {
			cred  seed.Account
			id    string
			roles []string
		}{
			{creds.Demo, seed.DemoAccountID, []string{"viewer"}},
			{creds.Admin, seed.AdminAccountID, []string{"admin", "viewer"}},
		} {
			in, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: tt.cred.Email, Password: tt.cred.Password})
			if err != nil {
				t.Fatalf("Login(%s): %v", tt.cred.Email, err)
			}
			c := verify(t, h, in.GetAccessToken())
			if c.AccountID != tt.id || !slices.Equal(c.Roles, tt.roles) {
				t.Errorf("seeded %s = %s %v, want %s %v", tt.cred.Email, c.AccountID, c.Roles, tt.id, tt.roles)
			}
		}
		if n := len(outbox(t, db, identity.AccountCreatedSubject)); n != 2 {
			t.Errorf("account_created events after seeding twice = %d, want 2", n)
		}
		// Seeding leaves existing accounts alone, even with new passwords.
		creds.Demo.Password = "another-password"
		if err := h.svc.Seed(ctx, creds); err != nil {
			t.Fatal(err)
		}
		if _, err := h.c.Login(ctx, &identityv1.LoginRequest{Email: "demo@marquee.local", Password: "demo-password-1"}); err != nil {
			t.Errorf("the demo password changed on a second seeding: %v", err)
		}
	})
}
