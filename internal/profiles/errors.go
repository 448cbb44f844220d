package profiles

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

// Product error codes, sent as the Reason of the google.rpc.ErrorInfo
// detail (domain rpcerr.Domain) of every error status; the gateway answers
// them as the JSON error code.
const (
	ReasonInvalidArgument    = "INVALID_ARGUMENT"
	ReasonNotFound           = "NOT_FOUND"
	ReasonProfileLimit       = "PROFILE_LIMIT"
	ReasonProfileNameTaken   = "PROFILE_NAME_TAKEN"
	ReasonLastProfile        = "LAST_PROFILE"
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

// toStatus is the one place where profiles errors become gRPC statuses
// (the HTTP status is the gateway's mapping of the code):
//
//	status error (principal.Require)  as is (UNAUTHENTICATED)
//	domain.ErrInvalidArgument    InvalidArgument    INVALID_ARGUMENT + BadRequest field violations  (400)
//	domain.ErrNotFound           NotFound           NOT_FOUND, also for another account's profile   (404)
//	domain.ErrTitleNotFound      NotFound           NOT_FOUND                                        (404)
//	domain.ErrProfileLimit       FailedPrecondition PROFILE_LIMIT                                    (422)
//	domain.ErrLastProfile        FailedPrecondition LAST_PROFILE                                     (422)
//	domain.ErrNameTaken          AlreadyExists      PROFILE_NAME_TAKEN                               (409)
//	domain.ErrMaturityRestricted PermissionDenied   MATURITY_RESTRICTED                              (403)
//	domain.ErrUnavailable        Unavailable        UNAVAILABLE (logged)                             (503)
//	context deadline / cancel    DeadlineExceeded / Canceled
//	anything else                Internal, "internal error" (logged, not shown)
//
// A sixth profile is FailedPrecondition rather than ResourceExhausted,
// which the gateway answers 429 as a rate limit: the limit is a state of
// the account that deleting a profile changes.
func (s *server) toStatus(ctx context.Context, method string, err error) error {
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	switch {
	case errors.Is(err, domain.ErrInvalidArgument):
		return invalidStatus(err)
	case errors.Is(err, domain.ErrNotFound):
		return rpcerr.New(codes.NotFound, ReasonNotFound, "profile not found")
	case errors.Is(err, domain.ErrTitleNotFound):
		return rpcerr.New(codes.NotFound, ReasonNotFound, "title not found")
	case errors.Is(err, domain.ErrProfileLimit):
		return rpcerr.New(codes.FailedPrecondition, ReasonProfileLimit, "an account has at most 5 profiles")
	case errors.Is(err, domain.ErrLastProfile):
		return rpcerr.New(codes.FailedPrecondition, ReasonLastProfile, "an account keeps at least one profile")
	case errors.Is(err, domain.ErrNameTaken):
		return rpcerr.New(codes.AlreadyExists, ReasonProfileNameTaken, "another profile of the account has this name")
	case errors.Is(err, domain.ErrMaturityRestricted):
		return rpcerr.New(codes.PermissionDenied, ReasonMaturityRestricted, "the title is above the profile's maturity level")
	case errors.Is(err, context.DeadlineExceeded):
		return rpcerr.New(codes.DeadlineExceeded, ReasonDeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return rpcerr.New(codes.Canceled, ReasonCanceled, "request canceled")
	case errors.Is(err, domain.ErrUnavailable):
		s.log.WarnContext(ctx, "profiles dependency unavailable", "method", method, "err", err)
		return rpcerr.New(codes.Unavailable, ReasonUnavailable, "the catalog is unavailable; try again later")
	default:
		s.log.ErrorContext(ctx, "profiles request failed", "method", method, "err", err)
		return rpcerr.New(codes.Internal, ReasonInternal, "internal error")
	}
}

// invalidStatus is InvalidArgument with one field violation per bad field
// and the first field in the ErrorInfo metadata, as rpcerr.Invalid builds
// it for one field.
func invalidStatus(err error) error {
	fields := domain.FieldErrors(err)
	if len(fields) == 0 {
		return rpcerr.New(codes.InvalidArgument, ReasonInvalidArgument, err.Error())
	}
	if len(fields) == 1 {
		return rpcerr.Invalid(fields[0].Field, fields[0].Reason)
	}
	br := &errdetails.BadRequest{}
	msgs := make([]string, len(fields))
	for i, f := range fields {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Reason})
		msgs[i] = f.Error()
	}
	st := status.New(codes.InvalidArgument, strings.Join(msgs, "; "))
	info := &errdetails.ErrorInfo{Reason: ReasonInvalidArgument, Domain: rpcerr.Domain, Metadata: map[string]string{"field": fields[0].Field}}
	if d, derr := st.WithDetails(info, br); derr == nil {
		st = d
	}
	return st.Err()
}
