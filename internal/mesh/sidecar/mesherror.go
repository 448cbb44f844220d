package sidecar

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Reasons of mesh-made errors, sent in x-marquee-mesh-error.
const (
	reasonNoUpstream  = "no_healthy_upstream"
	reasonTimeout     = "timeout"
	reasonDenied      = "denied"
	reasonFault       = "fault_injected"
	reasonUnknownDest = "unknown_destination"
	reasonReset       = "upstream_reset"
	reasonNotReady    = "not_ready"
	reasonUnsupported = "unsupported"
)

// meshErrorHeader marks a response made by a sidecar rather than by an
// application. Canonical form: the header map is written directly.
const meshErrorHeader = "X-Marquee-Mesh-Error"

// meshError is an error the proxy answers itself. msg starts with "mesh: ".
type meshError struct {
	reason string
	code   codes.Code // for gRPC requests
	status int        // for other requests
	msg    string
}

func errNotReady() meshError {
	return meshError{reasonNotReady, codes.Unavailable, http.StatusServiceUnavailable, "mesh: sidecar not ready"}
}

// write answers w with e: a trailers-only gRPC response (HTTP 200 with
// grpc-status and grpc-message in the headers) for gRPC requests, a JSON
// body {"error":{"code","message"}} otherwise.
func (e meshError) write(w http.ResponseWriter, grpc bool) {
	h := w.Header()
	h[meshErrorHeader] = []string{e.reason}
	if grpc {
		h["Content-Type"] = grpcContentType
		h["Grpc-Status"] = []string{strconv.Itoa(int(e.code))}
		h["Grpc-Message"] = []string{encodeGRPCMessage(e.msg)}
		h["Grpc-Status-Details-Bin"] = []string{e.details()}
		w.WriteHeader(http.StatusOK)
		return
	}
	body, _ := json.Marshal(errorBody{Error: errorDetail{Code: rpcerr.CodeName(e.code), Message: e.msg}})
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = nosniff
	h["Content-Length"] = []string{strconv.Itoa(len(body) + 1)}
	w.WriteHeader(e.status)
	w.Write(append(body, '\n'))
}

var (
	grpcContentType = []string{"application/grpc"}
	jsonContentType = []string{"application/json"}
	nosniff         = []string{"nosniff"}
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// grpcStatus parses a grpc-status value; ok is false when it is missing or
// malformed.
func grpcStatus(v string) (codes.Code, bool) {
	switch len(v) {
	case 1:
		if v[0] >= '0' && v[0] <= '9' {
			return codes.Code(v[0] - '0'), true
		}
	case 2:
		if v[0] >= '1' && v[0] <= '9' && v[1] >= '0' && v[1] <= '9' {
			return codes.Code((v[0]-'0')*10 + v[1] - '0'), true
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	return codes.Code(n), err == nil
}

// grpcCodeLabel is the code label of a gRPC response whose grpc-status is v.
func grpcCodeLabel(v string) string {
	if v == "" {
		// A response that ended without a status is an error to the
		// client, as gRPC reads it.
		return "UNKNOWN"
	}
	c, ok := grpcStatus(v)
	if !ok {
		return "UNKNOWN"
	}
	return rpcerr.CodeName(c)
}

// encodeGRPCMessage percent-encodes a grpc-message value as the gRPC
// HTTP/2 protocol asks: everything outside printable ASCII, and '%'.
func encodeGRPCMessage(msg string) string {
	clean := true
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < ' ' || c > '~' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return msg
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(msg)+16)
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < ' ' || c > '~' || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// grpcCodeOfHTTP is the gRPC status a client infers from an HTTP status
// when a response carries none (the gRPC HTTP/2 protocol's table).
func grpcCodeOfHTTP(status int) codes.Code {
	switch status {
	case http.StatusBadRequest:
		return codes.Internal
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	}
	return codes.Unknown
}

// errorDomain is the ErrorInfo domain of mesh-made gRPC errors.
const errorDomain = "mesh.marquee.local"

// details is the grpc-status-details-bin value of e: its status with an
// ErrorInfo whose reason (MESH_FAULT_INJECTED, MESH_DENIED, ...) lets a
// caller, and the gateway's error code, tell a mesh error from the
// application's.
func (e meshError) details() string {
	st, err := status.New(e.code, e.msg).WithDetails(&errdetails.ErrorInfo{
		Reason: "MESH_" + strings.ToUpper(e.reason),
		Domain: errorDomain,
	})
	if err != nil {
		return ""
	}
	b, err := proto.Marshal(st.Proto())
	if err != nil {
		return ""
	}
	return base64.RawStdEncoding.EncodeToString(b)
}
