package billing

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
)

// Product error codes billing answers, as the Reason of the
// google.rpc.ErrorInfo detail (Domain rpcerr.Domain) of every error.
const (
	ReasonInvalidArgument      = "INVALID_ARGUMENT"
	ReasonInvalidCard          = "INVALID_CARD"
	ReasonNotFound             = "NOT_FOUND"
	ReasonIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	ReasonInProgress           = "IN_PROGRESS"
	ReasonProcessorUnavailable = "PROCESSOR_UNAVAILABLE"
	ReasonOrderAlreadyCharged  = "ORDER_ALREADY_CHARGED"
	ReasonDeadlineExceeded     = "DEADLINE_EXCEEDED"
	ReasonCanceled             = "CANCELED"
	ReasonInternal             = "INTERNAL"
)

// mapError replaces the error a handler returns with its gRPC status; the
// handlers defer it.
func (s *server) mapError(ctx context.Context, method string, errp *error) {
	if *errp != nil {
		*errp = s.svc.toStatus(ctx, method, *errp, s.cardField(method))
	}
}

// cardField is the request's name for the card in method.
func (s *server) cardField(method string) string {
	if method == "Charge" {
		return "payment"
	}
	return "card"
}

// toStatus is the one place where billing errors become gRPC statuses:
//
//	domain.ErrInvalidCard          InvalidArgument   INVALID_CARD (+ field violations)
//	domain.ErrInvalidArgument      InvalidArgument   INVALID_ARGUMENT (+ field violations)
//	domain.ErrNotFound             NotFound          NOT_FOUND
//	domain.ErrIdempotencyKeyReused FailedPrecondition IDEMPOTENCY_KEY_REUSED
//	domain.ErrOrderAlreadyCharged  FailedPrecondition ORDER_ALREADY_CHARGED
//	domain.ErrInProgress           Aborted           IN_PROGRESS (retry with the same key)
//	domain.ErrProcessorUnavailable Unavailable       PROCESSOR_UNAVAILABLE (retry with the same key)
//	context deadline / cancel      DeadlineExceeded / Canceled
//	a status already (principal)   as it is
//	anything else                  Internal, "internal error" (logged, not shown)
//
// Messages are built from domain errors, which never hold card data.
func (svc *Service) toStatus(ctx context.Context, method string, err error, cardField string) error {
	switch {
	case errors.Is(err, domain.ErrInvalidArgument):
		reason := ReasonInvalidArgument
		if errors.Is(err, domain.ErrInvalidCard) {
			reason = ReasonInvalidCard
		}
		fields := domain.FieldErrors(err, cardField)
		br := &errdetails.BadRequest{}
		msgs := make([]string, 0, len(fields))
		for _, f := range fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Reason})
			msgs = append(msgs, "invalid "+f.Field+": "+f.Reason)
		}
		if len(fields) == 0 {
			return newStatus(codes.InvalidArgument, reason, err.Error(), nil)
		}
		return newStatus(codes.InvalidArgument, reason, strings.Join(msgs, "; "), map[string]string{"field": fields[0].Field}, br)
	case errors.Is(err, domain.ErrNotFound):
		return newStatus(codes.NotFound, ReasonNotFound, err.Error(), nil)
	case errors.Is(err, domain.ErrIdempotencyKeyReused):
		return newStatus(codes.FailedPrecondition, ReasonIdempotencyKeyReused, err.Error(), nil)
	case errors.Is(err, domain.ErrOrderAlreadyCharged):
		return newStatus(codes.FailedPrecondition, ReasonOrderAlreadyCharged, err.Error(), nil)
	case errors.Is(err, domain.ErrInProgress):
		return newStatus(codes.Aborted, ReasonInProgress, err.Error()+"; retry with the same idempotency key", nil)
	case errors.Is(err, domain.ErrProcessorUnavailable):
		return newStatus(codes.Unavailable, ReasonProcessorUnavailable, "payment processor unavailable; retry with the same idempotency key", nil)
	case errors.Is(err, context.DeadlineExceeded):
		return newStatus(codes.DeadlineExceeded, ReasonDeadlineExceeded, "deadline exceeded", nil)
	case errors.Is(err, context.Canceled):
		return newStatus(codes.Canceled, ReasonCanceled, "request canceled", nil)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	svc.log.ErrorContext(ctx, "billing request failed", "method", method, "err", err)
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
