package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func TestPlans(t *testing.T) {
	for _, c := range []struct {
		id      string
		streams int
		ok      bool
	}{
		{"basic", 1, true},
		{"standard", 2, true},
		{"premium", 4, true},
		{"gold", 0, false},
		{"", 0, false},
	} {
		p, ok := PlanByID(c.id)
		if ok != c.ok || p.MaxStreams != c.streams {
			t.Errorf("PlanByID(%q) = %+v, %v, want %d streams, %v", c.id, p, ok, c.streams, c.ok)
		}
	}
}

func fields(err error) []string {
	var out []string
	for _, f := range FieldErrors(err) {
		out = append(out, f.Field)
	}
	return out
}

func TestGrantValidate(t *testing.T) {
	ok := Grant{IdempotencyKey: "k1", AccountID: "a1", OrderID: "o1", SagaID: "s1"}
	with := func(f func(*Grant)) Grant { g := ok; f(&g); return g }
	for _, c := range []struct {
		name string
		g    Grant
		want []string
	}{
		{"plan", with(func(g *Grant) { g.PlanID = "standard" }), nil},
		{"plan with its streams", with(func(g *Grant) { g.PlanID = "premium"; g.MaxStreams = 4 }), nil},
		{"rental", with(func(g *Grant) { g.TitleID = "t-0001"; g.RentalDuration = 48 * time.Hour }), nil},
		{"neither", ok, []string{"plan_id"}},
		{"both", with(func(g *Grant) { g.PlanID = "basic"; g.TitleID = "t-1" }), []string{"title_id"}},
		{"unknown plan", with(func(g *Grant) { g.PlanID = "gold" }), []string{"plan_id"}},
		{"wrong streams", with(func(g *Grant) { g.PlanID = "basic"; g.MaxStreams = 4 }), []string{"max_streams"}},
		{"plan with duration", with(func(g *Grant) { g.PlanID = "basic"; g.RentalDuration = time.Hour }), []string{"rental_duration_seconds"}},
		{"negative duration", with(func(g *Grant) { g.TitleID = "t-1"; g.RentalDuration = -time.Second }), []string{"rental_duration_seconds"}},
		{"too long", with(func(g *Grant) { g.TitleID = "t-1"; g.RentalDuration = MaxRentalDuration + time.Second }), []string{"rental_duration_seconds"}},
		{"no key, no account", with(func(g *Grant) { g.IdempotencyKey = ""; g.AccountID = ""; g.PlanID = "basic" }), []string{"idempotency_key", "account_id"}},
		{"bad key", with(func(g *Grant) { g.IdempotencyKey = "a b"; g.PlanID = "basic" }), []string{"idempotency_key"}},
		{"saga engine key", with(func(g *Grant) { g.IdempotencyKey = "0190a1b2-c3d4/grant/action"; g.PlanID = "basic" }), nil},
		{"long order id", with(func(g *Grant) { g.OrderID = strings.Repeat("o", MaxKeyLen+1); g.PlanID = "basic" }), []string{"order_id"}},
	} {
		err := c.g.Validate()
		if got := fields(err); !slices.Equal(got, c.want) {
			t.Errorf("%s: Validate() fields = %q, want %q (err %v)", c.name, got, c.want, err)
		}
		if c.want != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidArgument", c.name, err)
		}
	}
}

func TestGrantFingerprint(t *testing.T) {
	base := Grant{IdempotencyKey: "k", AccountID: "a", OrderID: "o", TitleID: "t-1"}
	same := base
	same.RentalDuration = RentalDuration // the default, spelled out
	same.SagaID = "another saga"
	if base.Fingerprint() != same.Fingerprint() {
		t.Errorf("Fingerprint differs for equivalent grants")
	}
	for _, f := range []func(*Grant){
		func(g *Grant) { g.AccountID = "b" },
		func(g *Grant) { g.OrderID = "o2" },
		func(g *Grant) { g.TitleID = "t-2" },
		func(g *Grant) { g.RentalDuration = time.Hour },
		func(g *Grant) { g.TitleID = ""; g.PlanID = "basic" },
	} {
		g := base
		f(&g)
		if g.Fingerprint() == base.Fingerprint() {
			t.Errorf("Fingerprint(%+v) = Fingerprint(%+v), want different", g, base)
		}
	}
}

func TestGrantEntitlement(t *testing.T) {
	rental := Grant{IdempotencyKey: "k", AccountID: "a", TitleID: "t-1"}.Entitlement("e1", t0)
	if rental.Kind != KindRental || rental.MaxStreams != RentalStreams || !rental.ExpiresAt.Equal(t0.Add(48*time.Hour)) || rental.Status != StatusActive {
		t.Errorf("rental entitlement = %+v, want an active rental of 1 stream until +48h", rental)
	}
	plan := Grant{IdempotencyKey: "k", AccountID: "a", PlanID: "standard"}.Entitlement("e2", t0)
	if plan.Kind != KindPlan || plan.MaxStreams != 2 || !plan.ExpiresAt.IsZero() {
		t.Errorf("plan entitlement = %+v, want a plan of 2 streams without expiry", plan)
	}
}

func TestEntitlementStatusAt(t *testing.T) {
	rental := Entitlement{Kind: KindRental, Status: StatusActive, StartsAt: t0, ExpiresAt: t0.Add(48 * time.Hour)}
	for _, c := range []struct {
		e    Entitlement
		at   time.Time
		want Status
	}{
		{rental, t0, StatusActive},
		{rental, t0.Add(48*time.Hour - time.Nanosecond), StatusActive},
		{rental, t0.Add(48 * time.Hour), StatusExpired},
		{Entitlement{Status: StatusActive, StartsAt: t0}, t0.AddDate(10, 0, 0), StatusActive},
		{Entitlement{Status: StatusRevoked, StartsAt: t0}, t0, StatusRevoked},
		{Entitlement{Status: StatusSuperseded, StartsAt: t0, ExpiresAt: t0.Add(time.Hour)}, t0.Add(2 * time.Hour), StatusSuperseded},
	} {
		if got := c.e.StatusAt(c.at); got != c.want {
			t.Errorf("StatusAt(%+v, %v) = %s, want %s", c.e, c.at, got, c.want)
		}
	}
}

func TestRightsStreamLimits(t *testing.T) {
	plan := func(id string, streams int, created time.Time) Entitlement {
		return Entitlement{ID: id, Kind: KindPlan, PlanID: id, MaxStreams: streams, Status: StatusActive, StartsAt: created, CreatedAt: created}
	}
	rental := func(title string, expires time.Time) Entitlement {
		return Entitlement{ID: "r-" + title, Kind: KindRental, TitleID: title, MaxStreams: 1, Status: StatusActive, StartsAt: t0, CreatedAt: t0, ExpiresAt: expires}
	}
	later := t0.Add(time.Hour)
	expiredRental := rental("t-9", t0.Add(-time.Minute))
	revokedPlan := plan("premium", 4, t0)
	revokedPlan.Status = StatusRevoked
	for _, c := range []struct {
		name   string
		ents   []Entitlement
		title  string
		active int
		want   error
		max    int
	}{
		{"nothing", nil, "t-1", 0, ErrNotEntitled, 0},
		{"basic, free", []Entitlement{plan("basic", 1, t0)}, "t-1", 0, nil, 1},
		{"basic, in use", []Entitlement{plan("basic", 1, t0)}, "t-1", 1, ErrTooManyStreams, 1},
		{"standard, one in use", []Entitlement{plan("standard", 2, t0)}, "t-1", 1, nil, 2},
		{"standard, full", []Entitlement{plan("standard", 2, t0)}, "t-1", 2, ErrTooManyStreams, 2},
		{"premium, three in use", []Entitlement{plan("premium", 4, t0)}, "t-1", 3, nil, 4},
		{"premium, full", []Entitlement{plan("premium", 4, t0)}, "t-1", 4, ErrTooManyStreams, 4},
		{"rental of the title", []Entitlement{rental("t-1", later)}, "t-1", 0, nil, 1},
		{"rental, stream in use", []Entitlement{rental("t-1", later)}, "t-1", 1, ErrTooManyStreams, 1},
		{"rental of another title", []Entitlement{rental("t-2", later)}, "t-1", 0, ErrNotEntitled, 1},
		{"expired rental", []Entitlement{expiredRental}, "t-9", 0, ErrNotEntitled, 0},
		{"revoked plan", []Entitlement{revokedPlan}, "t-1", 0, ErrNotEntitled, 0},
		{"plan and rental: the plan's streams", []Entitlement{rental("t-1", later), plan("standard", 2, t0)}, "t-3", 1, nil, 2},
		{"two plans: the newest counts", []Entitlement{plan("premium", 4, t0.Add(-2*time.Hour)), plan("basic", 1, t0.Add(-time.Hour))}, "t-1", 1, ErrTooManyStreams, 1},
		{"plan not started yet", []Entitlement{plan("basic", 1, t0.Add(time.Minute))}, "t-1", 0, ErrNotEntitled, 0},
	} {
		r := NewRights(c.ents, t0)
		if got := r.CheckStart(c.title, c.active); !errors.Is(got, c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("%s: CheckStart(%s, %d) = %v, want %v", c.name, c.title, c.active, got, c.want)
		}
		if got := r.MaxStreams(); got != c.max {
			t.Errorf("%s: MaxStreams() = %d, want %d", c.name, got, c.max)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	s := Session{State: SessionActive, LastHeartbeatAt: t0}
	for _, c := range []struct {
		s    Session
		at   time.Time
		want bool
	}{
		{s, t0, true},
		{s, t0.Add(60 * time.Second), true},
		{s, t0.Add(SessionTimeout), true},
		{s, t0.Add(SessionTimeout + time.Millisecond), false},
		{s, t0.Add(time.Hour), false},
		{Session{State: SessionEnded, LastHeartbeatAt: t0}, t0, false},
	} {
		if got := c.s.ActiveAt(c.at); got != c.want {
			t.Errorf("ActiveAt(%s, +%v) = %v, want %v", c.s.State, c.at.Sub(t0), got, c.want)
		}
	}
	// Clients are asked for heartbeats well inside what the product
	// promises them, and a session outlives the longest allowed gap.
	if !(HeartbeatInterval <= MaxHeartbeatInterval && MaxHeartbeatInterval < SessionTimeout) {
		t.Errorf("heartbeat %v, max gap %v, timeout %v: want heartbeat <= max gap < timeout", HeartbeatInterval, MaxHeartbeatInterval, SessionTimeout)
	}
	if got, want := s.ExpiresAt(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("ExpiresAt() = %v, want %v", got, want)
	}
}

func TestResumePosition(t *testing.T) {
	for _, c := range []struct{ pos, dur, want int }{
		{0, 5400, 0},
		{1, 5400, 1},
		{2700, 5400, 2700},
		{4859, 5400, 4859}, // just under 90%
		{4860, 5400, 0},    // 90%: finished
		{5400, 5400, 0},
		{5450, 5400, 0}, // past the end (slack)
		{300, 0, 300},   // unknown duration
		{-5, 5400, 0},
	} {
		if got := ResumePosition(c.pos, c.dur); got != c.want {
			t.Errorf("ResumePosition(%d, %d) = %d, want %d", c.pos, c.dur, got, c.want)
		}
	}
}

func TestProgressResume(t *testing.T) {
	p := Progress{TitleID: "t-3", EpisodeID: "t-3-s01e02", Position: 600, Duration: 1800}
	for _, c := range []struct {
		p       Progress
		episode string
		want    int
	}{
		{p, "t-3-s01e02", 600},
		{p, "t-3-s01e03", 0},
		{Progress{}, "", 0},
		{Progress{TitleID: "t-1", Position: 100, Duration: 5000}, "", 100},
	} {
		if got := c.p.Resume(c.episode); got != c.want {
			t.Errorf("%+v.Resume(%q) = %d, want %d", c.p, c.episode, got, c.want)
		}
	}
}

func TestCheckPosition(t *testing.T) {
	for _, c := range []struct {
		pos, dur int
		ok       bool
	}{
		{0, 100, true},
		{100, 100, true},
		{160, 100, true},
		{161, 100, false},
		{-1, 100, false},
		{86400, 0, true},
		{86401, 0, false},
	} {
		if err := CheckPosition("position_seconds", c.pos, c.dur); (err == nil) != c.ok {
			t.Errorf("CheckPosition(%d, %d) = %v, want ok %v", c.pos, c.dur, err, c.ok)
		}
	}
}

func TestSessionEvents(t *testing.T) {
	s := Session{State: SessionActive, Duration: 100, Position: 0, EventPosition: 0, LastHeartbeatAt: t0}
	steps := []struct {
		pos  int
		want Emit
	}{
		{5, Emit{}},
		{9, Emit{}},
		{10, Emit{Progress: true}},
		{15, Emit{}},
		{19, Emit{}},
		{21, Emit{Progress: true}},
		{12, Emit{}},                // seek back less than the step
		{5, Emit{Progress: true}},   // seek back past it
		{90, Emit{true, true}},      // 90%: completed, once
		{95, Emit{}},                // completed already
		{100, Emit{Progress: true}}, // a step from 90
		{30, Emit{Progress: true}},  // rewind
		{99, Emit{Progress: true}},  // past 90% again: no second completed
		{99, Emit{}},
		{100, Emit{}},
	}
	for i, st := range steps {
		at := t0.Add(time.Duration(i+1) * 10 * time.Second)
		if got := s.Report(st.pos, at); got != st.want {
			t.Errorf("step %d: Report(%d) = %+v, want %+v", i, st.pos, got, st.want)
		}
		if s.Position != st.pos || !s.LastHeartbeatAt.Equal(at) {
			t.Errorf("step %d: after Report(%d) position %d, heartbeat %v", i, st.pos, s.Position, s.LastHeartbeatAt)
		}
	}
	end := s.End(0, t0.Add(time.Hour))
	if end != (Emit{Progress: true}) || s.State != SessionEnded || s.Position != 100 {
		t.Errorf("End(0) = %+v, session %s at %d; want a final progress event, ended at 100", end, s.State, s.Position)
	}

	short := Session{State: SessionActive, Duration: 100, LastHeartbeatAt: t0}
	if got := short.End(95, t0); got != (Emit{true, true}) || short.Position != 95 {
		t.Errorf("End(95) of a fresh session = %+v at %d, want progress and completed at 95", got, short.Position)
	}
	stale := Session{State: SessionActive, Duration: 100, Position: 40, LastHeartbeatAt: t0}
	stale.Expire()
	if stale.State != SessionEnded || !stale.EndedAt.Equal(t0.Add(SessionTimeout)) || stale.Position != 40 {
		t.Errorf("Expire() = %+v, want ended at the timeout, position kept", stale)
	}
}

func TestPageToken(t *testing.T) {
	c := Cursor{At: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), ID: "t-0042"}
	tok := EncodePageToken(ListContinueWatching, c)
	got, ok, err := ParsePageToken(ListContinueWatching, tok)
	if err != nil || !ok || !got.At.Equal(c.At) || got.ID != c.ID {
		t.Errorf("ParsePageToken(EncodePageToken(%+v)) = %+v, %v, %v", c, got, ok, err)
	}
	if _, ok, err := ParsePageToken(ListContinueWatching, ""); ok || err != nil {
		t.Errorf("ParsePageToken(\"\") = %v, %v, want start of list", ok, err)
	}
	bad := []string{
		EncodePageToken(ListEntitlements, c), // another list
		tok[:len(tok)-1],
		tok + "A",
		"not-a-token",
		string(make([]byte, MaxPageTokenLen+1)),
	}
	flipped := []byte(tok)
	flipped[5] ^= 1
	bad = append(bad, string(flipped))
	for _, b := range bad {
		if _, _, err := ParsePageToken(ListContinueWatching, b); FieldErrors(err) == nil || FieldErrors(err)[0].Field != "page_token" {
			t.Errorf("ParsePageToken(%q) = %v, want invalid page_token", b, err)
		}
	}
}

func TestPageSize(t *testing.T) {
	for _, c := range []struct {
		in   int32
		want int
		ok   bool
	}{{0, 20, true}, {1, 1, true}, {100, 100, true}, {101, 0, false}, {-1, 0, false}} {
		got, err := PageSize(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("PageSize(%d) = %d, %v, want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"t-0001", true},
		{"00000000-0000-4000-8000-00000000de70", true},
		{"seed:demo-plan", true},
		{"", false},
		{"-x", false},
		{"a b", false},
		{"a/b", false},
		{string(make([]byte, MaxIDLen+1)), false},
	} {
		if err := CheckID("id", c.id); (err == nil) != c.ok {
			t.Errorf("CheckID(%q) = %v, want ok %v", c.id, err, c.ok)
		}
	}
}

// FuzzPageToken feeds arbitrary strings to the page-token parser: it must
// never panic, must refuse with an invalid page_token, and must accept only
// the canonical encoding of what it decodes.
func FuzzPageToken(f *testing.F) {
	f.Add(EncodePageToken(ListContinueWatching, Cursor{At: t0, ID: "t-0001"}))
	f.Add(EncodePageToken(ListEntitlements, Cursor{At: t0, ID: "e"}))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		c, ok, err := ParsePageToken(ListContinueWatching, token)
		if err != nil {
			if fe := FieldErrors(err); len(fe) != 1 || fe[0].Field != "page_token" {
				t.Fatalf("ParsePageToken(%q) error = %v, want invalid page_token", token, err)
			}
			return
		}
		if !ok {
			if token != "" {
				t.Fatalf("ParsePageToken(%q) = start of list", token)
			}
			return
		}
		if !ValidID(c.ID) {
			t.Fatalf("ParsePageToken(%q) accepted id %q", token, c.ID)
		}
		if again := EncodePageToken(ListContinueWatching, c); again != token {
			t.Fatalf("EncodePageToken(ParsePageToken(%q)) = %q", token, again)
		}
	})
}
