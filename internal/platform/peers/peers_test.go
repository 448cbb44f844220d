package peers

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

func TestParseTable(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "", false},
		{"catalog=127.0.0.1:1", "catalog=127.0.0.1:1", false},
		{"profiles=h:2;catalog=a:1,b:1", "catalog=a:1,b:1;profiles=h:2", false},
		{"catalog", "", true},
		{"Catalog=a:1", "", true},
		{"catalog=nohost", "", true},
	}
	for _, tt := range tests {
		got, err := ParseTable(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTable(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && got.String() != tt.want {
			t.Errorf("ParseTable(%q) = %q, want %q", tt.in, got.String(), tt.want)
		}
	}
}

func FuzzParseTable(f *testing.F) {
	f.Add("catalog=127.0.0.1:1;profiles=a:2,b:3")
	f.Fuzz(func(t *testing.T, s string) {
		tab, err := ParseTable(s)
		if err != nil {
			return
		}
		again, err := ParseTable(tab.String())
		if err != nil || again.String() != tab.String() {
			t.Fatalf("ParseTable(%q).String() = %q does not round-trip: %v", s, tab.String(), err)
		}
	})
}

func TestDialByName(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	defer s.Stop()

	d := NewDialer(Table{"catalog": {lis.Addr().String()}})
	defer d.Close()
	c, err := d.Conn("catalog")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := d.Conn("catalog")
	if again != c {
		t.Error("Conn(catalog) twice returned two connections, want one shared")
	}
	resp, err := healthpb.NewHealthClient(c).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health through Conn(catalog) = %v, %v; want SERVING", resp, err)
	}
	if _, err := d.Conn("../etc"); err == nil {
		t.Error("Conn(../etc) succeeded, want error")
	}
}

// TestSidecarDialerNamesTheService checks that every peer is reached at the
// sidecar's address, with the service's name as :authority.
func TestSidecarDialerNamesTheService(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	authorities := make(chan string, 2)
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		authorities <- strings.Join(md[":authority"], ",")
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	defer s.Stop()

	if _, err := NewSidecarDialer("nope"); err == nil {
		t.Error("NewSidecarDialer(nope) succeeded, want an address error")
	}
	d, err := NewSidecarDialer(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, svc := range []string{"catalog", "billing"} {
		c, err := d.Conn(svc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := healthpb.NewHealthClient(c).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("%s through the sidecar address: %v", svc, err)
		}
		if got := <-authorities; got != svc {
			t.Errorf(":authority = %q, want %q", got, svc)
		}
	}
}
