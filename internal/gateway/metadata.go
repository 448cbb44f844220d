package gateway

import (
	"context"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// forwardedHeaders is the allow-list of request headers passed to the
// upstreams as gRPC metadata, by canonical HTTP name. The upstreams see
// only these, and:
//   - nothing of the credentials: the gateway removes Authorization and
//     X-API-Key once it has verified them, and passes the caller as
//     x-marquee-* metadata (annotate);
//   - x-request-id, set by annotate to the checked or generated id;
//   - x-forwarded-for and x-forwarded-host, which grpc-gateway derives from
//     the connection and the Host header (client-sent X-Forwarded-* are
//     stripped first: the client address as trusted proxies report it is
//     in x-marquee-client-addr).
//
// x-marquee-* metadata is reserved for the gateway's own layers (the auth
// layer passes the caller that way): such headers are stripped on arrival.
var forwardedHeaders = map[string]string{
	"Traceparent":     "traceparent",
	"Tracestate":      "tracestate",
	"Idempotency-Key": "idempotency-key",
}

// incomingHeader is the grpc-gateway header matcher: the allow-list.
func incomingHeader(key string) (string, bool) {
	md, ok := forwardedHeaders[textproto.CanonicalMIMEHeaderKey(key)]
	return md, ok
}

// dropMetadata keeps the upstreams' response metadata and trailers out of
// HTTP responses.
func dropMetadata(string) (string, bool) { return "", false }

// annotate adds the request id and the caller (principal.MD: the
// verified account, roles, session or API key, and always the client
// address) to the metadata of every upstream call.
func annotate(ctx context.Context, _ *http.Request) metadata.MD {
	st := stateFrom(ctx)
	if st == nil {
		return nil
	}
	md := st.principal.MD()
	md.Set("x-request-id", st.id)
	return md
}

// stripUntrusted deletes the request headers a client must not set:
// x-marquee-* (gateway-owned metadata), grpc-* (grpc-gateway reads
// Grpc-Timeout as a deadline and Grpc-Metadata-* as metadata) and
// X-Forwarded-For/Host (read by clientAddr before, through trusted proxies
// only).
func stripUntrusted(h http.Header) {
	for k := range h {
		if hasPrefixFold(k, "x-marquee-") || hasPrefixFold(k, "grpc-") ||
			strings.EqualFold(k, "x-forwarded-for") || strings.EqualFold(k, "x-forwarded-host") {
			delete(h, k)
		}
	}
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case, without
// allocating.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// successStatus is the HTTP status of the RPCs whose success is not
// 200 OK (PRODUCT §3), by full gRPC method name.
var successStatus = map[string]int{
	"/marquee.identity.v1.IdentityService/SignUp":        http.StatusCreated,
	"/marquee.profiles.v1.ProfilesService/CreateProfile": http.StatusCreated,
	"/marquee.playback.v1.PlaybackService/StartPlayback": http.StatusCreated,
	"/marquee.orders.v1.OrdersService/CreateOrder":       http.StatusAccepted,
}

// setSuccessStatus, a grpc-gateway forward-response option, sets the
// status of a successful response from successStatus.
func setSuccessStatus(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	if m, ok := runtime.RPCMethod(ctx); ok {
		if code, ok := successStatus[m]; ok {
			w.WriteHeader(code)
		}
	}
	return nil
}
