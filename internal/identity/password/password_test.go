package password

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func newHasher(t *testing.T, p Params) *Hasher {
	t.Helper()
	h, err := NewHasher(p, 2)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", p, err)
	}
	return h
}

func TestHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, Cheap)
	enc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("Hash = %q, want a PHC argon2id string with the cheap parameters", enc)
	}
	if again, _ := h.Hash(ctx, "correct horse battery"); again == enc {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		pw     string
		ok     bool
		rehash bool
	}{
		{"correct horse battery", true, false},
		{"correct horse batterY", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		ok, rehash, err := h.Verify(ctx, tt.pw, enc)
		if err != nil || ok != tt.ok || rehash != tt.rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want %v, %v, nil", tt.pw, ok, rehash, err, tt.ok, tt.rehash)
		}
	}
	// A hasher with other parameters still verifies the old hash and asks
	// for a rehash.
	stronger := Cheap
	stronger.Time = 2
	h2 := newHasher(t, stronger)
	if ok, rehash, err := h2.Verify(ctx, "correct horse battery", enc); !ok || !rehash || err != nil {
		t.Errorf("Verify with new parameters = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	before := h.Computations()
	if err := h.VerifyDummy(ctx, "anything"); err != nil {
		t.Errorf("VerifyDummy = %v", err)
	}
	if h.Computations() != before+1 {
		t.Errorf("VerifyDummy ran %d argon2id computations, want 1", h.Computations()-before)
	}
}

func TestDecode(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy"
	h, err := Decode(good)
	if err != nil || h.MemoryKiB != 64 || h.Time != 1 || h.Threads != 1 || string(h.Salt) != "0123456789abcdef" || h.KeyLen != 18 {
		t.Fatalf("Decode(good) = %+v, %v", h, err)
	}
	if h.String() != good {
		t.Errorf("String() = %q, want %q", h.String(), good)
	}
	bad := []string{
		"",
		"$argon2i$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",
		"$argon2id$v=16$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",
		"$argon2id$v=19$t=1,m=64,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",
		"$argon2id$v=19$m=064,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",
		"$argon2id$v=19$m=4,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",          // too little memory
		"$argon2id$v=19$m=99999999,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",   // too much
		"$argon2id$v=19$m=64,t=0,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",         // no pass
		"$argon2id$v=19$m=64,t=1,p=300$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",       // lanes
		"$argon2id$v=19$m=64,t=1,p=1$MDEy$Zm9vYmFyZm9vYmFyZm9vYmFy",                           // short salt
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9v",                             // short key
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg==$Zm9vYmFyZm9vYmFyZm9vYmFy",       // padding
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy$",        // extra
		"$argon2id$v=19$m=64,t=1,p=1,k=2$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",     // extra param
		"$argon2id$v=19$m=-64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy",        // sign
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg!$Zm9vYmFyZm9vYmFyZm9vYmFy",        // alphabet
		"$argon2id$v=19$m=4294967296,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy", // overflow
	}
	for _, s := range bad {
		if _, err := Decode(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", s, err)
		}
	}
	h3 := newHasher(t, Cheap)
	if _, _, err := h3.Verify(context.Background(), "x", bad[1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("Verify against a malformed hash = %v, want ErrMalformed", err)
	}
}

func TestParamsValidate(t *testing.T) {
	if err := Default.Validate(); err != nil {
		t.Errorf("Default.Validate() = %v", err)
	}
	if Default.MemoryKiB < 19*1024 || Default.Time < 1 || Default.SaltLen < 16 || Default.KeyLen < 32 {
		t.Errorf("Default = %+v is below the production floor (19 MiB, 16-byte salt, 32-byte key)", Default)
	}
	for _, p := range []Params{{}, {Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 4, KeyLen: 32}, {Time: 1, MemoryKiB: 7, Threads: 1, SaltLen: 16, KeyLen: 32}} {
		if _, err := NewHasher(p, 1); err == nil {
			t.Errorf("NewHasher(%+v) = nil error, want refused", p)
		}
	}
}

func TestHasherBoundsConcurrency(t *testing.T) {
	h, err := NewHasher(Cheap, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "password123"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hash with no free slot = %v, want DeadlineExceeded", err)
	}
	<-h.slots
	if _, err := h.Hash(context.Background(), "password123"); err != nil {
		t.Errorf("Hash with a free slot = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Zm9vYmFyZm9vYmFyZm9vYmFy")
	f.Add("$argon2id$v=19$m=65536,t=2,p=2$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Decode(s)
		if err != nil {
			return
		}
		if h.Params.Validate() != nil {
			t.Fatalf("Decode(%q) accepted invalid parameters %+v", s, h.Params)
		}
		if h.String() != s {
			t.Fatalf("Decode(%q).String() = %q: not canonical", s, h.String())
		}
	})
}
