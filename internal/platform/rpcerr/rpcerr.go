// Package rpcerr builds and reads the gRPC errors every Marquee service
// returns: a status whose google.rpc.ErrorInfo detail carries the product
// error code as its Reason (NOT_ENTITLED, TOO_MANY_STREAMS, ...). The
// gateway answers that Reason as the JSON error code, and peers branch on
// it with Reason or Is, never on message text.
package rpcerr

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Domain is the ErrorInfo domain of every Marquee error.
const Domain = "marquee"

// New returns a status error with code, the product reason and msg.
func New(code codes.Code, reason, msg string) error {
	return with(code, reason, msg, nil)
}

// Invalid returns InvalidArgument (reason INVALID_ARGUMENT) naming the bad
// field, with a google.rpc.BadRequest field violation.
func Invalid(field, msg string) error {
	br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}}
	return with(codes.InvalidArgument, "INVALID_ARGUMENT", "invalid "+field+": "+msg, map[string]string{"field": field}, br)
}

func with(code codes.Code, reason, msg string, meta map[string]string, more ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: meta}}, more...)
	if d, err := st.WithDetails(details...); err == nil {
		st = d
	}
	return st.Err()
}

// Reason returns the product reason carried by err, or "" when err is not
// a status with an ErrorInfo detail.
func Reason(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return ""
	}
	for _, d := range se.GRPCStatus().Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

// Is reports whether err carries the product reason.
func Is(err error, reason string) bool { return err != nil && Reason(err) == reason }
