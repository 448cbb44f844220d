package devrun

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

func TestParseReplicas(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "map[]", false},
		{"recommendations=2", "map[recommendations:2]", false},
		{"catalog=1, recommendations=3", "map[catalog:1 recommendations:3]", false},
		{"catalog", "", true},
		{"catalog=0", "", true},
		{"catalog=17", "", true},
		{"=2", "", true},
	}
	for _, tt := range tests {
		got, err := ParseReplicas(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && fmt.Sprint(got) != tt.want) {
			t.Errorf("ParseReplicas(%q) = %v, %v; want %s (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestInstanceVersion(t *testing.T) {
	tests := []struct {
		cfg  Config
		svc  string
		i    int
		want string
	}{
		{Config{}, "catalog", 1, "v1"},
		{Config{}, "recommendations", 1, "v1"},
		{Config{}, "recommendations", 2, "v2"},
		{Config{Versions: map[string]string{"recommendations": "v2"}}, "recommendations", 1, "v2"},
	}
	for _, tt := range tests {
		if got := instanceVersion(tt.cfg, tt.svc, tt.i); got != tt.want {
			t.Errorf("instanceVersion(%v, %s, %d) = %s, want %s", tt.cfg.Versions, tt.svc, tt.i, got, tt.want)
		}
	}
	if _, err := ParseVersions("recommendations=v3"); err == nil {
		t.Error("ParseVersions(recommendations=v3) succeeded, want error")
	}
}

func TestNewPortsAreDistinctAndBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 3 {
		ports, err := newPorts(100) // more than one block
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if p < portFloor || p >= ephemeralLow() {
				t.Errorf("port %d is outside [%d, %d)", p, portFloor, ephemeralLow())
			}
		}
	}
	// Another process's claim on a block is seen as a held lock.
	held := handedOut.locks[0]
	other, err := os.Open(held.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Error("a second lock on a claimed block succeeded, want it refused while this process holds it")
	}
}
