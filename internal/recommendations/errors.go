package recommendations

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// toStatus is the one place where the service's errors become gRPC
// statuses, each with an ErrorInfo whose reason is the product code:
//
//	*domain.FieldError          InvalidArgument  INVALID_ARGUMENT (+ BadRequest)
//	domain.ErrProfileNotFound   NotFound         NOT_FOUND
//	ErrUnauthenticated          Unauthenticated  UNAUTHENTICATED
//	domain.ErrUnavailable       Unavailable      UNAVAILABLE (logged)
//	context deadline / cancel   DeadlineExceeded / Canceled
//	a status already            as it is (principal.Require's)
//	anything else               Internal, "internal error" (logged, not shown)
func (s *server) toStatus(ctx context.Context, err error) error {
	var fe *domain.FieldError
	switch {
	case errors.As(err, &fe):
		return rpcerr.Invalid(fe.Field, fe.Reason)
	case errors.Is(err, domain.ErrProfileNotFound):
		return rpcerr.New(codes.NotFound, "NOT_FOUND", "no such profile")
	case errors.Is(err, ErrUnauthenticated):
		return rpcerr.New(codes.Unauthenticated, "UNAUTHENTICATED", "sign in first")
	case errors.Is(err, domain.ErrUnavailable):
		s.svc.log.WarnContext(ctx, "recommendations: dependency unavailable", "err", err)
		return rpcerr.New(codes.Unavailable, "UNAVAILABLE", "profile lookup unavailable")
	case errors.Is(err, context.DeadlineExceeded):
		return rpcerr.New(codes.DeadlineExceeded, "DEADLINE_EXCEEDED", "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return rpcerr.New(codes.Canceled, "CANCELED", "request canceled")
	}
	if _, ok := status.FromError(err); ok && rpcerr.Reason(err) != "" {
		return err
	}
	s.svc.log.ErrorContext(ctx, "recommendations: request failed", "err", err)
	return rpcerr.New(codes.Internal, "INTERNAL", "internal error")
}
