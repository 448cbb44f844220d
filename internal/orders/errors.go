package orders

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/marquee-tv/marquee/internal/orders/domain"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/saga"
)

// Product error codes orders answers, as the Reason of the
// google.rpc.ErrorInfo detail of every error.
const (
	ReasonInvalidArgument      = "INVALID_ARGUMENT"
	ReasonInvalidCard          = "INVALID_CARD"
	ReasonNotFound             = "NOT_FOUND"
	ReasonOrderInProgress      = "ORDER_IN_PROGRESS"
	ReasonIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	ReasonNotRentable          = "NOT_RENTABLE"
	ReasonSagaFinished         = "SAGA_FINISHED"
	ReasonSagaNotPaused        = "SAGA_NOT_PAUSED"
	ReasonSagaPastPivot        = "SAGA_PAST_PIVOT"
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

// toStatus is the one place where orders errors become gRPC statuses:
//
//	domain.ErrInvalidArgument      InvalidArgument    INVALID_ARGUMENT (+ field violations)
//	domain.ErrInvalidCard          InvalidArgument    INVALID_CARD
//	domain.ErrNotFound, saga.ErrNotFound NotFound     NOT_FOUND
//	domain.ErrOrderInProgress      FailedPrecondition ORDER_IN_PROGRESS (HTTP 409)
//	domain.ErrIdempotencyKeyReused FailedPrecondition IDEMPOTENCY_KEY_REUSED (HTTP 422)
//	domain.ErrNotRentable          FailedPrecondition NOT_RENTABLE
//	saga.ErrFinished               FailedPrecondition SAGA_FINISHED
//	saga.ErrNotPaused              FailedPrecondition SAGA_NOT_PAUSED
//	saga.ErrPastPivot              FailedPrecondition SAGA_PAST_PIVOT
//	saga.ErrBadPageToken           InvalidArgument    INVALID_ARGUMENT (page_token)
//	domain.ErrUnavailable          Unavailable        UNAVAILABLE (logged)
//	context deadline / cancel      DeadlineExceeded / Canceled
//	a status already (principal)   as it is
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
		meta := map[string]string{}
		if len(fields) > 0 {
			meta["field"] = fields[0].Field
		}
		return newStatus(codes.InvalidArgument, ReasonInvalidArgument, "invalid request: "+strings.Join(msgs, "; "), meta, br)
	case errors.Is(err, domain.ErrInvalidCard):
		br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "payment", Description: err.Error()}}}
		return newStatus(codes.InvalidArgument, ReasonInvalidCard, err.Error(), map[string]string{"field": "payment"}, br)
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, saga.ErrNotFound):
		return newStatus(codes.NotFound, ReasonNotFound, err.Error(), nil)
	case errors.Is(err, domain.ErrOrderInProgress):
		return newStatus(codes.FailedPrecondition, ReasonOrderInProgress, "another plan order of this account is in progress; wait for it to finish", nil)
	case errors.Is(err, domain.ErrIdempotencyKeyReused):
		return newStatus(codes.FailedPrecondition, ReasonIdempotencyKeyReused, "this Idempotency-Key was used for a different request", nil)
	case errors.Is(err, domain.ErrNotRentable):
		return newStatus(codes.FailedPrecondition, ReasonNotRentable, err.Error(), nil)
	case errors.Is(err, saga.ErrFinished):
		return newStatus(codes.FailedPrecondition, ReasonSagaFinished, err.Error(), nil)
	case errors.Is(err, saga.ErrNotPaused):
		return newStatus(codes.FailedPrecondition, ReasonSagaNotPaused, err.Error(), nil)
	case errors.Is(err, saga.ErrPastPivot):
		return newStatus(codes.FailedPrecondition, ReasonSagaPastPivot, err.Error(), nil)
	case errors.Is(err, saga.ErrBadPageToken):
		return rpcerr.Invalid("page_token", "is not a token this service issued")
	case errors.Is(err, domain.ErrUnavailable):
		s.log.WarnContext(ctx, "dependency unavailable", "method", method, "err", err)
		return newStatus(codes.Unavailable, ReasonUnavailable, "a service orders depends on is unavailable; retry with the same Idempotency-Key", nil)
	case errors.Is(err, context.DeadlineExceeded):
		return newStatus(codes.DeadlineExceeded, ReasonDeadlineExceeded, "deadline exceeded", nil)
	case errors.Is(err, context.Canceled):
		return newStatus(codes.Canceled, ReasonCanceled, "request canceled", nil)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	s.log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return newStatus(codes.Internal, ReasonInternal, "internal error", nil)
}

func newStatus(code codes.Code, reason, msg string, meta map[string]string, more ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: rpcerr.Domain, Metadata: meta}}, more...)
	if d, err := st.WithDetails(details...); err == nil {
		st = d
	}
	return st.Err()
}
