package rpcerr

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestReasonRoundTrip(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
		want string
	}{
		{New(codes.PermissionDenied, "NOT_ENTITLED", "no plan"), codes.PermissionDenied, "NOT_ENTITLED"},
		{Invalid("page_size", "must not be negative"), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{fmt.Errorf("wrapped: %w", New(codes.Aborted, "IN_PROGRESS", "x")), codes.Aborted, "IN_PROGRESS"},
		{status.Error(codes.Internal, "plain"), codes.Internal, ""},
		{fmt.Errorf("not a status"), codes.Unknown, ""},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if tt.want != "" && status.Code(tt.err) != tt.code {
			t.Errorf("status.Code(%v) = %v, want %v", tt.err, status.Code(tt.err), tt.code)
		}
	}
	if !Is(New(codes.FailedPrecondition, "TOO_MANY_STREAMS", "x"), "TOO_MANY_STREAMS") || Is(nil, "X") {
		t.Error("Is does not match its reason")
	}
}

func TestCodeNames(t *testing.T) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		name := CodeName(c)
		if got, ok := ParseCode(name); !ok || got != c {
			t.Errorf("ParseCode(CodeName(%v) = %q) = %v, %v", c, name, got, ok)
		}
	}
	if CodeName(codes.Canceled) != "CANCELLED" || CodeName(codes.DeadlineExceeded) != "DEADLINE_EXCEEDED" || CodeName(99) != "UNKNOWN" {
		t.Error("CodeName does not give the canonical names")
	}
	for _, bad := range []string{"", "Unavailable", "14", "NOPE"} {
		if _, ok := ParseCode(bad); ok {
			t.Errorf("ParseCode(%q) succeeded", bad)
		}
	}
}
