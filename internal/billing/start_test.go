package billing_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	"github.com/marquee-tv/marquee/internal/billing"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// TestStart runs billing as a program does, over an embedded NATS: it
// seeds the demo account, serves gRPC, and relays its events to the bus.
func TestStart(t *testing.T) {
	ns, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	msgs := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("marquee.billing.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"demo":{"email":"demo@marquee.local","password":"demo-password-1"},"admin":{"email":"admin@marquee.local","password":"admin-password-1"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Config{Program: "billing", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	env := &service.Env{Name: "billing", Version: "v1", App: a, Storage: storage.Config{Service: "billing", DataDir: dir},
		NATSURL: ns.ClientURL(), Credentials: creds}
	if err := billing.Start(ctx, env); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-a.Started():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	}
	addr, _, _ := a.Addrs()
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := billingv1.NewBillingServiceClient(conn)

	inv, err := client.ListInvoices(as(seed.DemoAccountID), &billingv1.ListInvoicesRequest{})
	if err != nil || len(inv.GetInvoices()) != 1 || inv.GetInvoices()[0].GetAmount().GetAmountMinor() != 2299 {
		t.Fatalf("demo invoices = %v, %v, want the seeded premium invoice", inv, err)
	}
	o := newOrder()
	resp, err := client.Charge(context.Background(), o.charge(1549, card("4242424242424242")))
	if err != nil || resp.GetCharge().GetStatus() != "succeeded" {
		t.Fatalf("Charge = %v, %v", resp, err)
	}
	if _, err := client.Refund(context.Background(), o.refund()); err != nil {
		t.Fatalf("Refund: %v", err)
	}

	want := []string{billing.ChargeSucceededSubject, billing.RefundedSubject}
	timeout := time.After(10 * time.Second)
	for _, subject := range want {
		select {
		case m := <-msgs:
			if m.Subject != subject {
				t.Fatalf("event on %s, want %s (the seed publishes none)", m.Subject, subject)
			}
			if m.Header.Get(events.HeaderSubject) != o.orderID || m.Header.Get(events.HeaderSpecVersion) != "1.0" {
				t.Errorf("%s headers = %v, want CloudEvents about order %s", subject, m.Header, o.orderID)
			}
			if strings.Contains(string(m.Data), "4242424242424242") {
				t.Errorf("%s data holds the card number: %s", subject, m.Data)
			}
			var data struct {
				AccountID string            `json:"account_id"`
				OrderID   string            `json:"order_id"`
				Amount    billing.MoneyJSON `json:"amount"`
				Card      billing.CardJSON  `json:"card"`
			}
			if err := json.Unmarshal(m.Data, &data); err != nil || data.AccountID != o.account || data.OrderID != o.orderID ||
				data.Amount != (billing.MoneyJSON{AmountMinor: 1549, Currency: "USD"}) || data.Card != (billing.CardJSON{Brand: "visa", Last4: "4242"}) {
				t.Errorf("%s data = %s, %v", subject, m.Data, err)
			}
		case <-timeout:
			t.Fatalf("no %s event on the bus", subject)
		}
	}
}
