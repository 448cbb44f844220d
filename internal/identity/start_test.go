package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/identity"
	"github.com/marquee-tv/marquee/internal/identity/revocation"
	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// syncBuffer is a log sink safe for the program's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestStart runs the service as a program does (production password
// parameters, embedded NATS, seeding), and follows its revocations the way
// the gateway does: a logout reaches a revocation.List through the outbox
// and the stream.
func TestStart(t *testing.T) {
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(app.Config{Program: "identity", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}, logger)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	creds := seed.Credentials{
		Demo:  seed.Account{Email: "demo@marquee.local", Password: "demo-secret-password"},
		Admin: seed.Account{Email: "admin@marquee.local", Password: "admin-secret-password"},
	}
	credsPath := filepath.Join(dir, "credentials.json")
	b, _ := json.Marshal(creds)
	if err := os.WriteFile(credsPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := &service.Env{
		Name: "identity", Version: "v1", App: a,
		Storage:     storage.Config{Service: "identity", DataDir: dir},
		NATSURL:     srv.ClientURL(),
		Peers:       peers.NewDialer(nil),
		Credentials: credsPath,
	}
	if err := identity.Start(ctx, env); err != nil {
		t.Fatalf("Start: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(runCtx) }()
	select {
	case <-a.Started():
	case <-ctx.Done():
		t.Fatal("the program never started")
	}
	grpcAddr, _, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := identityv1.NewIdentityServiceClient(conn)

	// The gateway's side: a JWKS cache and a revocation list fed from NATS.
	keys := token.NewCache(func(ctx context.Context) (*token.Keyset, error) {
		resp, err := client.ListSigningKeys(ctx, &identityv1.ListSigningKeysRequest{})
		if err != nil {
			return nil, err
		}
		return token.KeysetFromProto(resp)
	}, token.CacheOptions{})
	nc, js, err := events.Connect(ctx, srv.ClientURL(), "gateway-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	revoked := revocation.NewList()
	follower := revocation.NewFollower(js, revoked, nil)
	go follower.Run(runCtx)

	in, err := client.Login(from("203.0.113.5"), &identityv1.LoginRequest{Email: creds.Admin.Email, Password: creds.Admin.Password})
	if err != nil {
		t.Fatalf("Login as the seeded admin: %v", err)
	}
	claims, err := keys.Verify(ctx, in.GetAccessToken(), time.Now())
	if err != nil || claims.AccountID != seed.AdminAccountID {
		t.Fatalf("Verify(admin token) = %+v, %v", claims, err)
	}
	select {
	case <-follower.Synced():
	case <-ctx.Done():
		t.Fatal("the revocation follower never caught up")
	}
	if revoked.Revoked(claims.SessionID) {
		t.Fatal("the session is revoked before logout")
	}
	p := principal.Principal{AccountID: claims.AccountID, Roles: claims.Roles, SessionID: claims.SessionID}
	if _, err := client.Logout(as(p), &identityv1.LogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !revoked.Revoked(claims.SessionID) {
		if time.Now().After(deadline) {
			t.Fatal("the logout never reached the gateway's revocation list")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The seeded accounts were announced on the stream.
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, identity.AccountCreatedSubject)
	if err != nil || !strings.Contains(string(msg.Data), "@marquee.local") {
		t.Errorf("last account_created on the stream = %v, %v", msg, err)
	}

	conn.Close()
	stopAt := time.Now()
	stop()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v, want a clean stop", err)
	}
	t.Logf("stopped in %v", time.Since(stopAt))
	out := logs.String()
	for _, secret := range []string{creds.Demo.Password, creds.Admin.Password, in.GetRefreshToken(), in.GetAccessToken(), "$argon2id$", "plain:"} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs contain a secret (%.12s...)", secret)
		}
	}
	if !strings.Contains(out, "seeded account") {
		t.Errorf("the logs do not mention seeding; got:\n%s", out)
	}
}
