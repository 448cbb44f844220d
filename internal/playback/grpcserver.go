package playback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback/domain"
	"github.com/marquee-tv/marquee/internal/playback/media"
	"github.com/marquee-tv/marquee/internal/playback/store"
)

// server implements playbackv1.PlaybackServiceServer. Every handler
// validates its whole input first, returns domain errors, and has them
// mapped to a status by toStatus (errors.go), deferred.
type server struct {
	playbackv1.UnimplementedPlaybackServiceServer
	*Service
}

var _ playbackv1.PlaybackServiceServer = (*server)(nil)

// GetEntitlement returns the caller's active plan and rentals, how many
// streams they allow and use, and whether they cover title_id.
func (s *server) GetEntitlement(ctx context.Context, req *playbackv1.GetEntitlementRequest) (_ *playbackv1.GetEntitlementResponse, err error) {
	defer s.mapError(ctx, "GetEntitlement", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckOptionalID("title_id", req.GetTitleId()); err != nil {
		return nil, err
	}
	now := s.now()
	ents, err := s.store.StoredActive(ctx, s.db, p.AccountID)
	if err != nil {
		return nil, err
	}
	active, err := s.store.ActiveSessions(ctx, s.db, p.AccountID, now)
	if err != nil {
		return nil, err
	}
	rights := domain.NewRights(ents, now)
	resp := &playbackv1.GetEntitlementResponse{
		MaxStreams:    int32(rights.MaxStreams()),
		ActiveStreams: int32(len(active)),
		Entitled:      req.GetTitleId() != "" && rights.Covers(req.GetTitleId()),
	}
	if rights.Plan != nil {
		resp.Plan = entitlementProto(*rights.Plan, now)
	}
	for _, e := range rights.Rentals {
		resp.Rentals = append(resp.Rentals, entitlementProto(e, now))
	}
	return resp, nil
}

// ListEntitlements lists entitlements by account or order, newest first.
func (s *server) ListEntitlements(ctx context.Context, req *playbackv1.ListEntitlementsRequest) (_ *playbackv1.ListEntitlementsResponse, err error) {
	defer s.mapError(ctx, "ListEntitlements", &err)
	size, err1 := domain.PageSize(req.GetPageSize())
	after, more, err2 := domain.ParsePageToken(domain.ListEntitlements, req.GetPageToken())
	if err := errors.Join(domain.CheckOptionalID("account_id", req.GetAccountId()),
		domain.CheckOptionalKey("order_id", req.GetOrderId()), err1, err2); err != nil {
		return nil, err
	}
	var cursor *domain.Cursor
	if more {
		cursor = &after
	}
	ents, err := s.store.ListEntitlements(ctx, s.db, store.EntitlementFilter{AccountID: req.GetAccountId(), OrderID: req.GetOrderId()}, size+1, cursor)
	if err != nil {
		return nil, err
	}
	now := s.now()
	resp := &playbackv1.ListEntitlementsResponse{}
	for i, e := range ents {
		if i == size {
			last := ents[size-1]
			resp.NextPageToken = domain.EncodePageToken(domain.ListEntitlements, domain.Cursor{At: last.CreatedAt, ID: last.ID})
			break
		}
		resp.Entitlements = append(resp.Entitlements, entitlementProto(e, now))
	}
	return resp, nil
}

// StartPlayback opens a session: the profile must be the caller's and
// allowed the title's rating, the title available, the account entitled,
// and a stream free. A session of the same profile and title that still
// runs is ended first (replaced), so reloading a player never locks a
// viewer out.
func (s *server) StartPlayback(ctx context.Context, req *playbackv1.StartPlaybackRequest) (_ *playbackv1.StartPlaybackResponse, err error) {
	defer s.mapError(ctx, "StartPlayback", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(domain.CheckID("profile_id", req.GetProfileId()), domain.CheckID("title_id", req.GetTitleId()),
		domain.CheckOptionalID("episode_id", req.GetEpisodeId())); err != nil {
		return nil, err
	}
	// The two lookups are independent: run them together.
	var (
		prof       profile
		title      *catalogv1.Title
		perr, terr error
		wg         sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		prof, perr = s.profile(ctx, p, req.GetProfileId())
	}()
	title, terr = s.title(ctx, req.GetTitleId())
	wg.Wait()
	if perr != nil {
		return nil, perr
	}
	if terr != nil {
		return nil, terr
	}
	if !catalogdomain.Allows(prof.Level, catalogdomain.Rating(title.GetMaturityRating())) {
		return nil, domain.ErrMaturityRestricted
	}
	if !title.GetAvailable() {
		return nil, fmt.Errorf("title %s: %w: outside its availability window", title.GetId(), domain.ErrTitleUnavailable)
	}
	last, err := s.store.Progress(ctx, s.db, p.AccountID, req.GetProfileId(), req.GetTitleId())
	if err != nil {
		return nil, err
	}
	play, err := pickPlayable(title, req.GetEpisodeId(), last)
	if err != nil {
		return nil, err
	}
	if !s.lib.Has(play.AssetID) {
		return nil, fmt.Errorf("title %s plays asset %q: %w", title.GetId(), play.AssetID, domain.ErrMediaUnavailable)
	}
	now := s.now()
	resume := last.Resume(play.EpisodeID)
	sess := domain.Session{
		ID: uuid.NewString(), AccountID: p.AccountID, ProfileID: req.GetProfileId(), TitleID: title.GetId(),
		EpisodeID: play.EpisodeID, AssetID: play.AssetID, Genres: title.GetGenres(), Duration: play.Duration,
		Position: resume, EventPosition: resume, State: domain.SessionActive, StartedAt: now, LastHeartbeatAt: now,
	}
	err = s.inTx(ctx, func(tx *storage.Tx) error {
		if err := s.store.LockAccount(ctx, tx, p.AccountID); err != nil {
			return err
		}
		ents, err := s.store.StoredActive(ctx, tx, p.AccountID)
		if err != nil {
			return err
		}
		rights := domain.NewRights(ents, now)
		if !rights.Covers(sess.TitleID) {
			return domain.ErrNotEntitled
		}
		active, err := s.store.ActiveSessions(ctx, tx, p.AccountID, now)
		if err != nil {
			return err
		}
		running := 0
		for _, a := range active {
			if a.ProfileID != sess.ProfileID || a.TitleID != sess.TitleID {
				running++
				continue
			}
			if err := s.endSession(ctx, tx, a, 0, now, domain.EndReplaced); err != nil {
				return err
			}
		}
		if err := rights.CheckStart(sess.TitleID, running); err != nil {
			return err
		}
		if err := s.store.InsertSession(ctx, tx, sess); err != nil {
			return err
		}
		return publish(ctx, tx, SubjectStarted, viewingEvent(sess, now))
	})
	if err != nil {
		return nil, err
	}
	expires := now.Add(s.urlTTL)
	return &playbackv1.StartPlaybackResponse{
		SessionId:                sess.ID,
		StreamUrl:                s.signer.URL(play.AssetID, media.MainFile, sess.ID, expires),
		ResumePositionSeconds:    int32(resume),
		StreamUrlExpiresAt:       timestamppb.New(time.Unix(expires.Unix(), 0)),
		HeartbeatIntervalSeconds: int32(domain.HeartbeatInterval / time.Second),
		EpisodeId:                play.EpisodeID,
		DurationSeconds:          int32(play.Duration),
	}, nil
}

// endSession ends x (active) at at with an optional final position, saves
// the profile's progress and publishes the final events. A session ended
// concurrently is left alone.
func (s *Service) endSession(ctx context.Context, tx *storage.Tx, x domain.Session, position int, at time.Time, reason domain.EndReason) error {
	emit := x.End(position, at)
	ok, err := s.store.UpdateSession(ctx, tx, x)
	if err != nil || !ok {
		return err
	}
	if err := s.store.SaveProgress(ctx, tx, domain.ProgressOf(x, at)); err != nil {
		return err
	}
	return publishEmit(ctx, tx, x, emit, at, reason)
}

// ownSession loads a session of the caller; another account's reads as
// missing.
func (s *Service) ownSession(ctx context.Context, q storage.Queryer, p principal.Principal, id string) (domain.Session, error) {
	x, err := s.store.Session(ctx, q, id)
	if err != nil {
		return domain.Session{}, err
	}
	if x.AccountID != p.AccountID {
		return domain.Session{}, fmt.Errorf("session %s: %w", id, domain.ErrNotFound)
	}
	return x, nil
}

// ReportProgress is a session's heartbeat: it records the position and
// keeps the stream. A session whose heartbeats stopped for
// domain.SessionTimeout is ended here if the sweeper has not yet, and
// answers SESSION_ENDED.
func (s *server) ReportProgress(ctx context.Context, req *playbackv1.ReportProgressRequest) (_ *playbackv1.ReportProgressResponse, err error) {
	defer s.mapError(ctx, "ReportProgress", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckID("session_id", req.GetSessionId()); err != nil {
		return nil, err
	}
	pos := int(req.GetPositionSeconds())
	if pos < 0 {
		return nil, domain.Invalid("position_seconds", "must not be negative")
	}
	now := s.now()
	var (
		out     domain.Session
		expired bool
	)
	err = s.inTx(ctx, func(tx *storage.Tx) error {
		x, err := s.ownSession(ctx, tx, p, req.GetSessionId())
		if err != nil {
			return err
		}
		if x.State != domain.SessionActive {
			return domain.ErrSessionEnded
		}
		if !x.ActiveAt(now) {
			expired = true
			return s.endSession(ctx, tx, x, 0, x.ExpiresAt(), domain.EndExpired)
		}
		if err := domain.CheckPosition("position_seconds", pos, x.Duration); err != nil {
			return err
		}
		emit := x.Report(pos, now)
		ok, err := s.store.UpdateSession(ctx, tx, x)
		if err != nil {
			return err
		}
		if !ok {
			return domain.ErrSessionEnded
		}
		if err := s.store.SaveProgress(ctx, tx, domain.ProgressOf(x, now)); err != nil {
			return err
		}
		out = x
		return publishEmit(ctx, tx, x, emit, now, "")
	})
	if err != nil {
		return nil, err
	}
	if expired {
		return nil, domain.ErrSessionEnded
	}
	return &playbackv1.ReportProgressResponse{Session: sessionProto(out)}, nil
}

// StopPlayback ends a session of the caller, with its final position when
// given. Stopping an ended session succeeds and changes nothing.
func (s *server) StopPlayback(ctx context.Context, req *playbackv1.StopPlaybackRequest) (_ *playbackv1.StopPlaybackResponse, err error) {
	defer s.mapError(ctx, "StopPlayback", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckID("session_id", req.GetSessionId()); err != nil {
		return nil, err
	}
	pos := int(req.GetPositionSeconds())
	if pos < 0 {
		return nil, domain.Invalid("position_seconds", "must not be negative")
	}
	now := s.now()
	err = s.inTx(ctx, func(tx *storage.Tx) error {
		x, err := s.ownSession(ctx, tx, p, req.GetSessionId())
		if err != nil || x.State != domain.SessionActive {
			return err
		}
		if pos > 0 {
			if err := domain.CheckPosition("position_seconds", pos, x.Duration); err != nil {
				return err
			}
		}
		at, reason := now, domain.EndStopped
		if !x.ActiveAt(now) {
			at, reason = x.ExpiresAt(), domain.EndExpired
		}
		return s.endSession(ctx, tx, x, pos, at, reason)
	})
	if err != nil {
		return nil, err
	}
	return &playbackv1.StopPlaybackResponse{}, nil
}

// ContinueWatching lists the titles a profile of the caller started and
// has not finished, most recently watched first. A profile of another
// account has no items.
func (s *server) ContinueWatching(ctx context.Context, req *playbackv1.ContinueWatchingRequest) (_ *playbackv1.ContinueWatchingResponse, err error) {
	defer s.mapError(ctx, "ContinueWatching", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	size, err1 := domain.PageSize(req.GetPageSize())
	after, more, err2 := domain.ParsePageToken(domain.ListContinueWatching, req.GetPageToken())
	if err := errors.Join(domain.CheckID("profile_id", req.GetProfileId()), err1, err2); err != nil {
		return nil, err
	}
	var cursor *domain.Cursor
	if more {
		cursor = &after
	}
	rows, err := s.store.ContinueWatching(ctx, s.db, p.AccountID, req.GetProfileId(), size+1, cursor)
	if err != nil {
		return nil, err
	}
	resp := &playbackv1.ContinueWatchingResponse{}
	for i, r := range rows {
		if i == size {
			last := rows[size-1]
			resp.NextPageToken = domain.EncodePageToken(domain.ListContinueWatching, domain.Cursor{At: last.UpdatedAt, ID: last.TitleID})
			break
		}
		resp.Items = append(resp.Items, &playbackv1.ContinueWatchingItem{
			TitleId:         r.TitleID,
			EpisodeId:       r.EpisodeID,
			PositionSeconds: int32(domain.ResumePosition(r.Position, r.Duration)),
			DurationSeconds: int32(r.Duration),
			UpdatedAt:       timestamppb.New(r.UpdatedAt),
		})
	}
	return resp, nil
}

func tsProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// entitlementProto is e as the API shows it at now (an active rental past
// its expiry reads "expired").
func entitlementProto(e domain.Entitlement, now time.Time) *playbackv1.Entitlement {
	return &playbackv1.Entitlement{
		Id:             e.ID,
		AccountId:      e.AccountID,
		Kind:           string(e.Kind),
		PlanId:         e.PlanID,
		TitleId:        e.TitleID,
		MaxStreams:     int32(e.MaxStreams),
		OrderId:        e.OrderID,
		SagaId:         e.SagaID,
		IdempotencyKey: e.IdempotencyKey,
		Status:         string(e.StatusAt(now)),
		StartsAt:       tsProto(e.StartsAt),
		ExpiresAt:      tsProto(e.ExpiresAt),
		RevokedAt:      tsProto(e.RevokedAt),
		CreatedAt:      tsProto(e.CreatedAt),
	}
}

func sessionProto(x domain.Session) *playbackv1.Session {
	return &playbackv1.Session{
		Id:              x.ID,
		AccountId:       x.AccountID,
		ProfileId:       x.ProfileID,
		TitleId:         x.TitleID,
		EpisodeId:       x.EpisodeID,
		PositionSeconds: int32(x.Position),
		State:           string(x.State),
		StartedAt:       tsProto(x.StartedAt),
		LastHeartbeatAt: tsProto(x.LastHeartbeatAt),
		EndedAt:         tsProto(x.EndedAt),
	}
}
