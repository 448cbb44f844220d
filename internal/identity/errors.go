package identity

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
)

// Product error codes, sent as the Reason of the google.rpc.ErrorInfo
// detail (domain rpcerr.Domain) of every error status; the gateway answers
// them as the JSON error code.
const (
	ReasonInvalidArgument    = "INVALID_ARGUMENT"
	ReasonEmailTaken         = "EMAIL_TAKEN"
	ReasonInvalidCredentials = "INVALID_CREDENTIALS"
	ReasonTooManyAttempts    = "TOO_MANY_ATTEMPTS"
	ReasonRefreshTokenReused = "REFRESH_TOKEN_REUSED"
	ReasonUnauthenticated    = "UNAUTHENTICATED"
	ReasonForbidden          = "FORBIDDEN"
	ReasonNotFound           = "NOT_FOUND"
	ReasonTooManyAPIKeys     = "TOO_MANY_API_KEYS"
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

// toStatus is the one place where identity errors become gRPC statuses:
//
//	domain.ErrInvalidArgument     InvalidArgument    INVALID_ARGUMENT (+ BadRequest)
//	domain.ErrEmailTaken          AlreadyExists      EMAIL_TAKEN
//	domain.ErrInvalidCredentials  Unauthenticated    INVALID_CREDENTIALS
//	*domain.ThrottledError        ResourceExhausted  TOO_MANY_ATTEMPTS (+ RetryInfo)
//	domain.ErrRefreshTokenReused  Unauthenticated    REFRESH_TOKEN_REUSED
//	domain.ErrInvalidRefreshToken Unauthenticated    UNAUTHENTICATED
//	domain.ErrInvalidAPIKey       Unauthenticated    UNAUTHENTICATED
//	domain.ErrForbidden           PermissionDenied   FORBIDDEN
//	domain.ErrNotFound            NotFound           NOT_FOUND
//	domain.ErrTooManyAPIKeys      FailedPrecondition TOO_MANY_API_KEYS
//	a status with a reason        itself (principal.Require and friends)
//	context deadline / cancel     DeadlineExceeded / Canceled
//	anything else                 Internal, "internal error" (logged, not shown)
//
// Messages never carry a secret, and never say whether an email exists.
func (s *server) toStatus(ctx context.Context, method string, err error) error {
	var throttled *domain.ThrottledError
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
		msg := strings.Join(msgs, "; ")
		if len(fields) > 0 {
			meta["field"] = fields[0].Field
		} else {
			msg = err.Error()
		}
		return newStatus(codes.InvalidArgument, ReasonInvalidArgument, msg, meta, br)
	case errors.Is(err, domain.ErrEmailTaken):
		return newStatus(codes.AlreadyExists, ReasonEmailTaken, "an account with this email already exists", nil)
	case errors.Is(err, domain.ErrInvalidCredentials):
		return newStatus(codes.Unauthenticated, ReasonInvalidCredentials, "wrong email or password", nil)
	case errors.As(err, &throttled):
		wait := max(throttled.RetryAfter, time.Second)
		return newStatus(codes.ResourceExhausted, ReasonTooManyAttempts, "too many failed login attempts; try again later",
			map[string]string{"retry_after_seconds": itoa(int64(wait / time.Second))},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)})
	case errors.Is(err, domain.ErrRefreshTokenReused):
		return newStatus(codes.Unauthenticated, ReasonRefreshTokenReused, "refresh token was already used; the session has been revoked, sign in again", nil)
	case errors.Is(err, domain.ErrInvalidRefreshToken):
		return newStatus(codes.Unauthenticated, ReasonUnauthenticated, "invalid or expired refresh token; sign in again", nil)
	case errors.Is(err, domain.ErrInvalidAPIKey):
		return newStatus(codes.Unauthenticated, ReasonUnauthenticated, "invalid API key", nil)
	case errors.Is(err, domain.ErrForbidden):
		return newStatus(codes.PermissionDenied, ReasonForbidden, err.Error(), nil)
	case errors.Is(err, domain.ErrNotFound):
		return newStatus(codes.NotFound, ReasonNotFound, err.Error(), nil)
	case errors.Is(err, domain.ErrTooManyAPIKeys):
		return newStatus(codes.FailedPrecondition, ReasonTooManyAPIKeys, "too many active API keys; revoke one first", nil)
	case rpcerr.Reason(err) != "":
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return newStatus(codes.DeadlineExceeded, ReasonDeadlineExceeded, "deadline exceeded", nil)
	case errors.Is(err, context.Canceled):
		return newStatus(codes.Canceled, ReasonCanceled, "request canceled", nil)
	default:
		s.log.ErrorContext(ctx, "identity request failed", "method", method, "err", err)
		return newStatus(codes.Internal, ReasonInternal, "internal error", nil)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

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
