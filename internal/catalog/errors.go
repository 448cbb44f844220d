package catalog

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/marquee-tv/marquee/internal/catalog/domain"
)

// Product error codes, sent as the Reason of the google.rpc.ErrorInfo
// detail of every error status (Domain ErrorDomain); the gateway answers
// them as the JSON error code.
const (
	ReasonInvalidArgument    = "INVALID_ARGUMENT"
	ReasonNotFound           = "NOT_FOUND"
	ReasonMaturityRestricted = "MATURITY_RESTRICTED"
	ReasonUnavailable        = "UNAVAILABLE"
	ReasonDeadlineExceeded   = "DEADLINE_EXCEEDED"
	ReasonCanceled           = "CANCELED"
	ReasonInternal           = "INTERNAL"
)

// mapError replaces the error a handler returns with its gRPC status; the
// handlers defer it.
func (s *server) mapError(ctx context.Context, method string, errp *error) {
	if *errp != nil {
		*errp = s.toStatus(ctx, method, *errp)
	}
}

// toStatus is the one place where catalog errors become gRPC statuses:
//
//	domain.ErrInvalidArgument    InvalidArgument   + BadRequest field violations
//	domain.ErrNotFound           NotFound
//	domain.ErrMaturityRestricted PermissionDenied
//	domain.ErrUnavailable        Unavailable (logged)
//	context deadline / cancel    DeadlineExceeded / Canceled
//	anything else                Internal, "internal error" (logged, not shown)
//
// Each status carries an ErrorInfo detail whose Reason is the product code.
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
		msg := strings.Join(msgs, "; ")
		meta := map[string]string{}
		if len(fields) > 0 {
			meta["field"] = fields[0].Field
		} else {
			msg = err.Error()
		}
		return newStatus(codes.InvalidArgument, ReasonInvalidArgument, msg, meta, br)
	case errors.Is(err, domain.ErrNotFound):
		return newStatus(codes.NotFound, ReasonNotFound, err.Error(), nil)
	case errors.Is(err, domain.ErrMaturityRestricted):
		return newStatus(codes.PermissionDenied, ReasonMaturityRestricted, err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded):
		return newStatus(codes.DeadlineExceeded, ReasonDeadlineExceeded, "deadline exceeded", nil)
	case errors.Is(err, context.Canceled):
		return newStatus(codes.Canceled, ReasonCanceled, "request canceled", nil)
	case errors.Is(err, domain.ErrUnavailable):
		s.log.WarnContext(ctx, "catalog dependency unavailable", "method", method, "err", err)
		return newStatus(codes.Unavailable, ReasonUnavailable, "profile lookup unavailable", nil)
	default:
		s.log.ErrorContext(ctx, "catalog request failed", "method", method, "err", err)
		return newStatus(codes.Internal, ReasonInternal, "internal error", nil)
	}
}

// newStatus builds a status error with an ErrorInfo detail and any more
// details given.
func newStatus(code codes.Code, reason, msg string, meta map[string]string, more ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: meta}}, more...)
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st.Err() // the details failed to marshal; the code and message still stand
	}
	return withDetails.Err()
}
