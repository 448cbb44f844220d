package playback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback/domain"
	"github.com/marquee-tv/marquee/internal/saga/barrier"
)

// This file is playback's side of the CreateOrder saga: GrantEntitlement
// (the entitlement step) and RevokeEntitlement (its compensation), made
// idempotent and order-proof by the saga barrier (package saga/barrier).
//
// The barrier is keyed by the grant's idempotency key, which names one step
// of one saga: Grant runs barrier.Action and Revoke barrier.Compensate on
// the same key, so a Revoke finds its Grant whatever else the two carry.
// Consequences, all answered without a second effect:
//
//   - a repeated Grant answers the entitlement it first granted (status as
//     granted), or IDEMPOTENCY_KEY_REUSED when its arguments differ;
//   - a repeated Revoke answers the first Revoke's result;
//   - a Revoke before (or without) its Grant records that and answers a
//     "cancelled" entitlement, and the Grant arriving later answers
//     "cancelled" too and grants nothing;
//   - a Grant refused (TITLE_UNAVAILABLE, an unavailable catalog) records
//     nothing: a retry decides again.

// barrierStep is the barrier step of every entitlement grant.
const barrierStep = "playback.entitlement"

// barrierRecord is what the barrier keeps as the result of a grant or a
// revocation: the fingerprint of the request's arguments and the
// entitlement as it was answered.
type barrierRecord struct {
	Version     int               `json:"v"`
	Fingerprint string            `json:"fingerprint"`
	Entitlement entitlementRecord `json:"entitlement"`
}

// entitlementRecord is domain.Entitlement as stored in barrier results;
// its JSON names are a stored format and do not change.
type entitlementRecord struct {
	ID             string    `json:"id"`
	AccountID      string    `json:"account_id"`
	Kind           string    `json:"kind"`
	PlanID         string    `json:"plan_id,omitempty"`
	TitleID        string    `json:"title_id,omitempty"`
	MaxStreams     int       `json:"max_streams"`
	OrderID        string    `json:"order_id,omitempty"`
	SagaID         string    `json:"saga_id,omitempty"`
	IdempotencyKey string    `json:"idempotency_key"`
	Status         string    `json:"status"`
	SupersedesID   string    `json:"supersedes_id,omitempty"`
	StartsAt       time.Time `json:"starts_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	RevokedAt      time.Time `json:"revoked_at"`
	CreatedAt      time.Time `json:"created_at"`
}

func encodeRecord(fingerprint string, e domain.Entitlement) ([]byte, error) {
	return json.Marshal(barrierRecord{Version: 1, Fingerprint: fingerprint, Entitlement: entitlementRecord{
		ID: e.ID, AccountID: e.AccountID, Kind: string(e.Kind), PlanID: e.PlanID, TitleID: e.TitleID,
		MaxStreams: e.MaxStreams, OrderID: e.OrderID, SagaID: e.SagaID, IdempotencyKey: e.IdempotencyKey,
		Status: string(e.Status), SupersedesID: e.SupersedesID, StartsAt: e.StartsAt, ExpiresAt: e.ExpiresAt,
		RevokedAt: e.RevokedAt, CreatedAt: e.CreatedAt,
	}})
}

func decodeRecord(b []byte) (string, domain.Entitlement, error) {
	var r barrierRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Version != 1 {
		return "", domain.Entitlement{}, fmt.Errorf("playback: unreadable barrier result %q: %v", b, err)
	}
	x := r.Entitlement
	return r.Fingerprint, domain.Entitlement{
		ID: x.ID, AccountID: x.AccountID, Kind: domain.Kind(x.Kind), PlanID: x.PlanID, TitleID: x.TitleID,
		MaxStreams: x.MaxStreams, OrderID: x.OrderID, SagaID: x.SagaID, IdempotencyKey: x.IdempotencyKey,
		Status: domain.Status(x.Status), SupersedesID: x.SupersedesID, StartsAt: x.StartsAt, ExpiresAt: x.ExpiresAt,
		RevokedAt: x.RevokedAt, CreatedAt: x.CreatedAt,
	}, nil
}

// cancelled is the answer about a grant whose revocation came first:
// nothing was granted. It is the same for every repetition.
func cancelled(grantKey, accountID, orderID, sagaID string, g *domain.Grant) *playbackv1.Entitlement {
	e := &playbackv1.Entitlement{
		AccountId: accountID, OrderId: orderID, SagaId: sagaID, IdempotencyKey: grantKey,
		Status: string(domain.StatusCancelled),
	}
	if g != nil {
		if g.PlanID != "" {
			e.Kind, e.PlanId = string(domain.KindPlan), g.PlanID
		} else {
			e.Kind, e.TitleId = string(domain.KindRental), g.TitleID
		}
	}
	return e
}

// GrantEntitlement gives an account a plan or a rental for an order, once
// per idempotency key (see the top of this file).
func (s *server) GrantEntitlement(ctx context.Context, req *playbackv1.GrantEntitlementRequest) (_ *playbackv1.GrantEntitlementResponse, err error) {
	defer s.mapError(ctx, "GrantEntitlement", &err)
	g := domain.Grant{
		IdempotencyKey: req.GetIdempotencyKey(),
		OrderID:        req.GetOrderId(),
		SagaID:         req.GetSagaId(),
		AccountID:      req.GetAccountId(),
		PlanID:         req.GetPlanId(),
		MaxStreams:     int(req.GetMaxStreams()),
		TitleID:        req.GetTitleId(),
		RentalDuration: time.Duration(req.GetRentalDurationSeconds()) * time.Second,
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	// A rental needs the title available now. The catalog is asked before
	// the transaction (no network call inside it); its verdict is applied
	// inside, so that a repeated or compensated grant still answers what
	// the barrier recorded even when the verdict changed since.
	var refuse error
	if g.TitleID != "" {
		t, err := s.title(ctx, g.TitleID)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			refuse = fmt.Errorf("title %s: %w: no such title", g.TitleID, domain.ErrTitleUnavailable)
		case err != nil:
			refuse = err
		default:
			if err := domain.CheckRentable(t.GetRentable(), t.GetAvailable()); err != nil {
				refuse = fmt.Errorf("title %s: %w", g.TitleID, err)
			}
		}
	}
	now := s.now()
	fingerprint := g.Fingerprint()
	res, err := barrier.Action(ctx, s.db, g.IdempotencyKey, barrierStep, func(tx *storage.Tx) ([]byte, error) {
		if refuse != nil {
			return nil, refuse
		}
		e, err := s.store.Grant(ctx, tx, g.Entitlement(uuid.NewString(), now.UTC().Truncate(time.Microsecond)))
		if err != nil {
			return nil, err
		}
		return encodeRecord(fingerprint, e)
	})
	if errors.Is(err, barrier.ErrCompensated) {
		return &playbackv1.GrantEntitlementResponse{Entitlement: cancelled(g.IdempotencyKey, g.AccountID, g.OrderID, g.SagaID, &g)}, nil
	}
	if err != nil {
		return nil, err
	}
	fp, e, err := decodeRecord(res)
	if err != nil {
		return nil, err
	}
	if fp != fingerprint {
		return nil, domain.ErrIdempotencyKeyReused
	}
	return &playbackv1.GrantEntitlementResponse{Entitlement: entitlementProto(e, now)}, nil
}

// revokeFingerprint identifies a revocation's arguments.
func revokeFingerprint(accountID string) string {
	sum := sha256.Sum256([]byte("revoke\x00" + accountID))
	return hex.EncodeToString(sum[:16])
}

// RevokeEntitlement takes back the entitlement granted with
// grant_idempotency_key, once (see the top of this file).
func (s *server) RevokeEntitlement(ctx context.Context, req *playbackv1.RevokeEntitlementRequest) (_ *playbackv1.RevokeEntitlementResponse, err error) {
	defer s.mapError(ctx, "RevokeEntitlement", &err)
	if err := errors.Join(domain.CheckKey("idempotency_key", req.GetIdempotencyKey()),
		domain.CheckKey("grant_idempotency_key", req.GetGrantIdempotencyKey()),
		domain.CheckID("account_id", req.GetAccountId()),
		domain.CheckOptionalKey("order_id", req.GetOrderId()),
		domain.CheckOptionalKey("saga_id", req.GetSagaId())); err != nil {
		return nil, err
	}
	key := req.GetGrantIdempotencyKey()
	now := s.now()
	fingerprint := revokeFingerprint(req.GetAccountId())
	res, err := barrier.Compensate(ctx, s.db, key, barrierStep, func(tx *storage.Tx) ([]byte, error) {
		e, err := s.store.EntitlementByKey(ctx, tx, key)
		if err != nil {
			// The barrier says the grant ran, and a grant always stores
			// its entitlement in the same transaction.
			return nil, fmt.Errorf("playback: grant %s ran but its entitlement is missing: %v", key, err)
		}
		if e.AccountID != req.GetAccountId() {
			return nil, domain.Invalid("account_id", "is not the account of grant %s", key)
		}
		e, err = s.store.Revoke(ctx, tx, key, now)
		if err != nil {
			return nil, err
		}
		return encodeRecord(fingerprint, e)
	})
	if err != nil {
		return nil, err
	}
	if res == nil {
		return &playbackv1.RevokeEntitlementResponse{Entitlement: cancelled(key, req.GetAccountId(), req.GetOrderId(), req.GetSagaId(), nil)}, nil
	}
	fp, e, err := decodeRecord(res)
	if err != nil {
		return nil, err
	}
	if fp != fingerprint {
		return nil, domain.ErrIdempotencyKeyReused
	}
	if req.GetReason() != "" {
		s.log.InfoContext(ctx, "entitlement revoked", "entitlement", e.ID, "order", req.GetOrderId(), "reason", req.GetReason())
	}
	return &playbackv1.RevokeEntitlementResponse{Entitlement: entitlementProto(e, now)}, nil
}
