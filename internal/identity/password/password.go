// Package password hashes and verifies passwords with argon2id (RFC 9106),
// encoded as PHC strings:
//
//	$argon2id$v=19$m=65536,t=2,p=2$<salt>$<hash>
//
// (salt and hash in unpadded standard base64). The parameters travel with
// each hash, so they can be raised later: Verify reports when a hash was
// made with other parameters than the hasher's, and the caller rehashes the
// password it has just verified.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters and output sizes.
type Params struct {
	// Time is the number of passes over memory.
	Time uint32
	// MemoryKiB is the memory used per hash, in KiB.
	MemoryKiB uint32
	// Threads is the degree of parallelism (lanes).
	Threads uint8
	// SaltLen is the random salt size in bytes.
	SaltLen uint32
	// KeyLen is the derived hash size in bytes.
	KeyLen uint32
}

// Default are the production parameters: 64 MiB of memory, 2 passes, 2
// lanes, a 16-byte salt and a 32-byte hash. That is above OWASP's minimum
// for argon2id (19 MiB, 2 passes, 1 lane) and RFC 9106's second
// recommended setting in memory (64 MiB), with fewer passes and lanes to
// suit small servers: a hash costs about 100 ms on one core of a 2-core
// 2020s machine. The Hasher bounds how many run at once, which bounds the
// memory they take (64 MiB each).
var Default = Params{Time: 2, MemoryKiB: 64 * 1024, Threads: 2, SaltLen: 16, KeyLen: 32}

// Cheap are parameters for tests only: far too weak for real passwords.
var Cheap = Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read from a stored hash, so a corrupt or hostile
// value cannot make Verify allocate or loop without end.
const (
	maxMemoryKiB = 4 * 1024 * 1024 // 4 GiB
	maxTime      = 64
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// ErrMalformed means a stored hash is not a PHC argon2id string this
// package can verify.
var ErrMalformed = errors.New("password: malformed argon2id hash")

// Validate checks that p can hash.
func (p Params) Validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("password: time %d out of 1..%d", p.Time, maxTime)
	case p.Threads < 1:
		return errors.New("password: threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("password: memory %d KiB out of %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("password: salt length %d out of %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("password: key length %d out of %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// Hash is a decoded PHC argon2id string.
type Hash struct {
	Params
	Salt []byte
	Key  []byte
}

var b64 = base64.RawStdEncoding.Strict()

// String encodes h in PHC format.
func (h Hash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.MemoryKiB, h.Time, h.Threads, b64.EncodeToString(h.Salt), b64.EncodeToString(h.Key))
}

// Decode parses a PHC argon2id string, checking every field and its bounds.
func Decode(s string) (Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Hash{}, ErrMalformed
	}
	var h Hash
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return Hash{}, ErrMalformed
	}
	for i, want := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], want)
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return Hash{}, ErrMalformed
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return Hash{}, ErrMalformed
		}
		switch i {
		case 0:
			h.MemoryKiB = uint32(n)
		case 1:
			h.Time = uint32(n)
		case 2:
			if n > 255 {
				return Hash{}, ErrMalformed
			}
			h.Threads = uint8(n)
		}
	}
	var ok bool
	if h.Salt, ok = decodeCanonical(parts[4]); !ok {
		return Hash{}, ErrMalformed
	}
	if h.Key, ok = decodeCanonical(parts[5]); !ok {
		return Hash{}, ErrMalformed
	}
	h.SaltLen, h.KeyLen = uint32(len(h.Salt)), uint32(len(h.Key))
	if h.Params.Validate() != nil {
		return Hash{}, ErrMalformed
	}
	return h, nil
}

// decodeCanonical decodes unpadded standard base64, refusing any other
// spelling of the same bytes (the decoder skips line breaks).
func decodeCanonical(s string) ([]byte, bool) {
	b, err := b64.DecodeString(s)
	if err != nil || b64.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// Hasher hashes and verifies passwords with its parameters, running at
// most a fixed number of hashes at once.
type Hasher struct {
	params   Params
	slots    chan struct{}
	dummy    string
	computed atomic.Uint64
}

// NewHasher returns a Hasher with params running at most concurrency
// hashes at once (0 means GOMAXPROCS): each takes params.MemoryKiB, so this
// bounds the memory logins can take.
func NewHasher(params Params, concurrency int) (*Hasher, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	dummy := Hash{Params: params, Salt: make([]byte, params.SaltLen), Key: make([]byte, params.KeyLen)}
	return &Hasher{params: params, slots: make(chan struct{}, concurrency), dummy: dummy.String()}, nil
}

// Params are the hasher's parameters.
func (h *Hasher) Params() Params { return h.params }

// Computations counts the argon2id computations the hasher has run
// (hashes, verifications and dummy verifications).
func (h *Hasher) Computations() uint64 { return h.computed.Load() }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC string of password with a fresh random salt. It
// waits for a free slot until ctx ends.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, h.params.KeyLen)
	h.computed.Add(1)
	return Hash{Params: h.params, Salt: salt, Key: key}.String(), nil
}

// Verify reports whether password matches the PHC string encoded,
// comparing in constant time, and whether encoded was made with other
// parameters than the hasher's (the caller should store a new Hash of the
// password once it has matched). A malformed encoded fails with an error
// wrapping ErrMalformed.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	stored, err := Decode(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), stored.Salt, stored.Time, stored.MemoryKiB, stored.Threads, stored.KeyLen)
	h.computed.Add(1)
	ok = subtle.ConstantTimeCompare(key, stored.Key) == 1
	return ok, stored.Params != h.params, nil
}

// VerifyDummy does the work of a Verify against a hash that matches no
// password: what a login for an unknown email runs, so that it takes as
// long as one for a known email with a wrong password.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}
