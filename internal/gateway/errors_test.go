package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestToAPIError(t *testing.T) {
	info := func(reason string) *errdetails.ErrorInfo { return &errdetails.ErrorInfo{Reason: reason} }
	retry := func(d time.Duration) *errdetails.RetryInfo {
		return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
	}
	tests := []struct {
		in   error
		want apiError
	}{
		{statusErr(codes.InvalidArgument, "bad id"), apiError{400, "INVALID_ARGUMENT", "bad id", 0, ""}},
		{statusErr(codes.OutOfRange, "past the end"), apiError{400, "OUT_OF_RANGE", "past the end", 0, ""}},
		{statusErr(codes.Unauthenticated, "who?"), apiError{401, "UNAUTHENTICATED", "who?", 0, ""}},
		{statusErr(codes.Unauthenticated, "no", info("INVALID_CREDENTIALS")), apiError{401, "INVALID_CREDENTIALS", "no", 0, ""}},
		{statusErr(codes.PermissionDenied, "no"), apiError{403, "PERMISSION_DENIED", "no", 0, ""}},
		{statusErr(codes.PermissionDenied, "no", info("NOT_ENTITLED")), apiError{403, "NOT_ENTITLED", "no", 0, ""}},
		{statusErr(codes.PermissionDenied, "no", info("MATURITY_RESTRICTED")), apiError{403, "MATURITY_RESTRICTED", "no", 0, ""}},
		{statusErr(codes.NotFound, "gone"), apiError{404, "NOT_FOUND", "gone", 0, ""}},
		{statusErr(codes.NotFound, "gone", info("SESSION_ENDED")), apiError{404, "SESSION_ENDED", "gone", 0, ""}},
		{statusErr(codes.AlreadyExists, "taken", info("EMAIL_TAKEN")), apiError{409, "EMAIL_TAKEN", "taken", 0, ""}},
		{statusErr(codes.Aborted, "busy", info("IN_PROGRESS")), apiError{409, "IN_PROGRESS", "busy", 0, ""}},
		{statusErr(codes.FailedPrecondition, "six"), apiError{422, "FAILED_PRECONDITION", "six", 0, ""}},
		{statusErr(codes.FailedPrecondition, "six", info("PROFILE_LIMIT")), apiError{422, "PROFILE_LIMIT", "six", 0, ""}},
		{statusErr(codes.FailedPrecondition, "4 streams", info("TOO_MANY_STREAMS")), apiError{409, "TOO_MANY_STREAMS", "4 streams", 0, ""}},
		{statusErr(codes.FailedPrecondition, "pending", info("ORDER_IN_PROGRESS")), apiError{409, "ORDER_IN_PROGRESS", "pending", 0, ""}},
		{statusErr(codes.ResourceExhausted, "slow"), apiError{429, "RESOURCE_EXHAUSTED", "slow", time.Second, ""}},
		{statusErr(codes.ResourceExhausted, "slow", retry(30*time.Second)), apiError{429, "RESOURCE_EXHAUSTED", "slow", 30 * time.Second, ""}},
		{statusErr(codes.Unavailable, "dial 10.0.0.1"), apiError{503, "UNAVAILABLE", msgUnavailable, 0, ""}},
		{statusErr(codes.Unavailable, "x", info("PROCESSOR_UNAVAILABLE"), retry(2*time.Second)), apiError{503, "PROCESSOR_UNAVAILABLE", msgUnavailable, 2 * time.Second, ""}},
		// a reason does not turn a server failure into a client error
		{statusErr(codes.Unavailable, "x", info("TOO_MANY_STREAMS")), apiError{503, "TOO_MANY_STREAMS", msgUnavailable, 0, ""}},
		{statusErr(codes.DeadlineExceeded, "slow db"), apiError{504, "DEADLINE_EXCEEDED", msgTimeout, 0, ""}},
		{context.DeadlineExceeded, apiError{504, "DEADLINE_EXCEEDED", msgTimeout, 0, ""}},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), apiError{504, "DEADLINE_EXCEEDED", msgTimeout, 0, ""}},
		{context.Canceled, apiError{499, "CANCELLED", msgCanceled, 0, ""}},
		{statusErr(codes.Internal, "pq: password=x"), apiError{500, "INTERNAL", msgInternal, 0, ""}},
		{statusErr(codes.Internal, "x", info("DB_DOWN")), apiError{500, "INTERNAL", msgInternal, 0, ""}},
		{statusErr(codes.Unknown, "x"), apiError{500, "INTERNAL", msgInternal, 0, ""}},
		{statusErr(codes.Unimplemented, "x"), apiError{500, "INTERNAL", msgInternal, 0, ""}},
		{statusErr(codes.DataLoss, "x"), apiError{500, "INTERNAL", msgInternal, 0, ""}},
		{statusErr(codes.Code(99), "x"), apiError{500, "INTERNAL", msgInternal, 0, ""}},
		{fmt.Errorf("plain"), apiError{500, "INTERNAL", msgInternal, 0, ""}},
		// a reason that is not UPPER_SNAKE is not shown
		{statusErr(codes.NotFound, "gone", info("lower_case")), apiError{404, "NOT_FOUND", "gone", 0, ""}},
		{statusErr(codes.NotFound, "gone", info("TRAILING_")), apiError{404, "NOT_FOUND", "gone", 0, ""}},
		{statusErr(codes.NotFound, "gone", info(strings.Repeat("A", 64))), apiError{404, "NOT_FOUND", "gone", 0, ""}},
		{statusErr(codes.NotFound, ""), apiError{404, "NOT_FOUND", "Not Found", 0, ""}},
		// grpc-gateway's own errors
		{&runtime.HTTPStatusError{HTTPStatus: 400, Err: fmt.Errorf("malformed path")}, apiError{400, "INVALID_ARGUMENT", "malformed path", 0, ""}},
		{&runtime.HTTPStatusError{HTTPStatus: 502, Err: fmt.Errorf("secret")}, apiError{500, "INTERNAL", msgInternal, 0, ""}},
	}
	for _, tt := range tests {
		if got := toAPIError(tt.in); got != tt.want {
			t.Errorf("toAPIError(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		in       string
		wantEcho bool
	}{
		{"", false},
		{"a", true},
		{"Req-1.2_3", true},
		{strings.Repeat("z", 64), true},
		{strings.Repeat("z", 65), false},
		{"a b", false},
		{"a/b", false},
		{"a\nb", false},
		{"\u00e9", false},
	}
	for _, tt := range tests {
		got := requestID(tt.in)
		if (got == tt.in) != tt.wantEcho || !saneID(got) {
			t.Errorf("requestID(%q) = %q, want echoed %v and sane", tt.in, got, tt.wantEcho)
		}
	}
	if a, b := requestID(""), requestID(""); a == b {
		t.Errorf("requestID(\"\") twice = %q, %q, want different ids", a, b)
	}
}

// saneID is the PRODUCT rule for request ids, written independently of the
// code under test.
func saneID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"", "abc", "a b", strings.Repeat("x", 64), strings.Repeat("x", 65), "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sent string) {
		got := requestID(sent)
		if !saneID(got) {
			t.Fatalf("requestID(%q) = %q, not sane", sent, got)
		}
		if saneID(sent) != (got == sent) {
			t.Fatalf("requestID(%q) = %q, want the sent id kept exactly when it is sane", sent, got)
		}
	})
}

var upperSnake = func(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// FuzzToAPIError checks, for any status an upstream could send, that the
// answer has the PRODUCT shape, a status from the allowed set, and never the
// upstream's message on a server failure.
func FuzzToAPIError(f *testing.F) {
	f.Add(uint32(5), "", "title x not found", int64(0))
	f.Add(uint32(9), "TOO_MANY_STREAMS", "in use", int64(0))
	f.Add(uint32(8), "", "slow down", int64(1500))
	f.Add(uint32(13), "SECRET", "password=x", int64(0))
	f.Add(uint32(14), "NO_HEALTHY_UPSTREAM", "10.0.0.1", int64(-5))
	f.Add(uint32(3), "bad reason", "\xff\xfe", int64(1))
	allowed := map[int]bool{400: true, 401: true, 403: true, 404: true, 409: true, 422: true, 429: true,
		499: true, 500: true, 503: true, 504: true}
	generic := map[string]bool{msgInternal: true, msgUnavailable: true, msgTimeout: true, msgCanceled: true}

	f.Fuzz(func(t *testing.T, code uint32, reason, msg string, retryMillis int64) {
		c := codes.Code(code % 20) // 17..19 are not codes
		if c == codes.OK {
			c = codes.Unknown
		}
		var details []protoadapt.MessageV1
		if reason != "" {
			details = append(details, &errdetails.ErrorInfo{Reason: reason})
		}
		delay := time.Duration(retryMillis) * time.Millisecond
		if retryMillis != 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
		}
		s, err := status.New(c, msg).WithDetails(details...)
		if err != nil {
			t.Skip(err) // not every string is a valid proto string
		}
		in := fmt.Sprintf("status(%v, %q, reason %q, retry %dms)", c, msg, reason, retryMillis)
		e := toAPIError(s.Err())

		if !allowed[e.Status] {
			t.Fatalf("toAPIError(%s).Status = %d, not an allowed status", in, e.Status)
		}
		if !upperSnake(e.Code) {
			t.Fatalf("toAPIError(%s).Code = %q, want UPPER_SNAKE", in, e.Code)
		}
		if e.Status >= 499 && !generic[e.Message] {
			t.Fatalf("toAPIError(%s).Message = %q, want a generic message", in, e.Message)
		}
		if e.Status == 500 && e.Code != "INTERNAL" {
			t.Fatalf("toAPIError(%s).Code = %q, want INTERNAL", in, e.Code)
		}
		if e.Status < 499 && validReason.MatchString(reason) && e.Code != reason {
			t.Fatalf("toAPIError(%s).Code = %q, want the reason", in, e.Code)
		}
		if (e.RetryAfter > 0) != (e.Status == 429 || e.Status == 503 && delay > 0) || e.RetryAfter > maxRetryAfter {
			t.Fatalf("toAPIError(%s).RetryAfter = %v for status %d", in, e.RetryAfter, e.Status)
		}

		// What the client gets.
		g := &Gateway{}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r = r.WithContext(withState(r.Context(), &requestState{id: "fuzz"}))
		g.writeError(w, r, e)
		dec := json.NewDecoder(w.Body)
		dec.DisallowUnknownFields()
		var body errorBody
		if err := dec.Decode(&body); err != nil {
			t.Fatalf("writeError(toAPIError(%s)) body is not the error shape: %v", in, err)
		}
		if body.Error.Code != e.Code || body.Error.RequestID != "fuzz" || w.Code != e.Status {
			t.Fatalf("writeError(toAPIError(%s)) = %d %+v, want %d %+v", in, w.Code, body, e.Status, e)
		}
		if ra := w.Header().Get("Retry-After"); e.RetryAfter > 0 {
			if n, err := strconv.Atoi(ra); err != nil || n < 1 {
				t.Fatalf("writeError(toAPIError(%s)) Retry-After = %q, want whole seconds", in, ra)
			}
		}
	})
}
