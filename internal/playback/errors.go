package playback

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/playback/domain"
)

// Product error codes playback answers, as the Reason of the
// google.rpc.ErrorInfo detail of every error status (domain
// rpcerr.Domain); the gateway answers them as the JSON error code.
const (
	ReasonInvalidArgument      = "INVALID_ARGUMENT"
	ReasonNotFound             = "NOT_FOUND"
	ReasonNotEntitled          = "NOT_ENTITLED"
	ReasonMaturityRestricted   = "MATURITY_RESTRICTED"
	ReasonTooManyStreams       = "TOO_MANY_STREAMS"
	ReasonTitleUnavailable     = "TITLE_UNAVAILABLE"
	ReasonSessionEnded         = "SESSION_ENDED"
	ReasonIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	ReasonMediaUnavailable     = "MEDIA_UNAVAILABLE"
	ReasonUnavailable          = "UNAVAILABLE"
	ReasonDeadlineExceeded     = "DEADLINE_EXCEEDED"
	ReasonCanceled             = "CANCELED"
	ReasonInternal             = "INTERNAL"
)

// mapError replaces the error a handler returns with its gRPC status; the
// handlers defer it.
func (s *server) mapError(ctx context.Context, method string, errp *error) {
	if *errp != nil {
		*errp = s.toStatus(ctx, method, *errp)
	}
}

// toStatus is the one place where playback errors become gRPC statuses:
//
//	domain.ErrInvalidArgument      InvalidArgument    + BadRequest field violations
//	domain.ErrNotFound             NotFound           NOT_FOUND
//	domain.ErrSessionEnded         NotFound           SESSION_ENDED
//	domain.ErrNotEntitled          PermissionDenied   NOT_ENTITLED
//	domain.ErrMaturityRestricted   PermissionDenied   MATURITY_RESTRICTED
//	domain.ErrTooManyStreams       FailedPrecondition TOO_MANY_STREAMS
//	domain.ErrTitleUnavailable     FailedPrecondition TITLE_UNAVAILABLE
//	domain.ErrIdempotencyKeyReused FailedPrecondition IDEMPOTENCY_KEY_REUSED
//	domain.ErrMediaUnavailable     FailedPrecondition MEDIA_UNAVAILABLE (logged)
//	domain.ErrUnavailable          Unavailable        (logged)
//	context deadline / cancel      DeadlineExceeded / Canceled
//	a status already (principal)   unchanged
//	anything else                  Internal, "internal error" (logged, not shown)
func (s *server) toStatus(ctx context.Context, method string, err error) error {
	switch {
	case errors.Is(err, domain.ErrInvalidArgument):
		fields := domain.FieldErrors(err)
		br := &errdetails.BadRequest{}
		msgs := make([]string, 0, len(fields))
		for _, f := range fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Reason})
			msgs = append(msgs, f.Error())
		}
		msg, meta := strings.Join(msgs, "; "), map[string]string{}
		if len(fields) > 0 {
			meta["field"] = fields[0].Field
		} else {
			msg = err.Error()
		}
		return newStatus(codes.InvalidArgument, ReasonInvalidArgument, msg, meta, br)
	case errors.Is(err, domain.ErrSessionEnded):
		return newStatus(codes.NotFound, ReasonSessionEnded, "this playback session has ended; start playback again", nil)
	case errors.Is(err, domain.ErrNotFound):
		return newStatus(codes.NotFound, ReasonNotFound, err.Error(), nil)
	case errors.Is(err, domain.ErrNotEntitled):
		return newStatus(codes.PermissionDenied, ReasonNotEntitled, "no plan or rental covers this title", nil)
	case errors.Is(err, domain.ErrMaturityRestricted):
		return newStatus(codes.PermissionDenied, ReasonMaturityRestricted, "this title is above the profile's maturity level", nil)
	case errors.Is(err, domain.ErrTooManyStreams):
		return newStatus(codes.FailedPrecondition, ReasonTooManyStreams, "every stream your plan allows is in use; stop one first", nil)
	case errors.Is(err, domain.ErrTitleUnavailable):
		return newStatus(codes.FailedPrecondition, ReasonTitleUnavailable, err.Error(), nil)
	case errors.Is(err, domain.ErrIdempotencyKeyReused):
		return newStatus(codes.FailedPrecondition, ReasonIdempotencyKeyReused, "this idempotency key was used for another request", nil)
	case errors.Is(err, domain.ErrMediaUnavailable):
		s.log.WarnContext(ctx, "media not available", "method", method, "err", err)
		return newStatus(codes.FailedPrecondition, ReasonMediaUnavailable, "this title cannot be played right now", nil)
	case errors.Is(err, context.DeadlineExceeded):
		return newStatus(codes.DeadlineExceeded, ReasonDeadlineExceeded, "deadline exceeded", nil)
	case errors.Is(err, context.Canceled):
		return newStatus(codes.Canceled, ReasonCanceled, "request canceled", nil)
	case errors.Is(err, domain.ErrUnavailable):
		s.log.WarnContext(ctx, "playback dependency unavailable", "method", method, "err", err)
		return newStatus(codes.Unavailable, ReasonUnavailable, "a service playback needs is unavailable; try again", nil)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	s.log.ErrorContext(ctx, "playback request failed", "method", method, "err", err)
	return newStatus(codes.Internal, ReasonInternal, "internal error", nil)
}

// newStatus builds a status error with an ErrorInfo detail and any more
// details given.
func newStatus(code codes.Code, reason, msg string, meta map[string]string, more ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: rpcerr.Domain, Metadata: meta}}, more...)
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}
