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
//   - authorization, which grpc-gateway always forwards itself (listing it
//     here would send it twice);
//   - x-request-id, set by annotate to the checked or generated id;
//   - x-forwarded-for and x-forwarded-host, which grpc-gateway derives from
//     the connection and the Host header (client-sent X-Forwarded-* are
//     stripped first, since no trusted proxy is configured).
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

// annotate adds the request id to the metadata of every upstream call.
func annotate(ctx context.Context, _ *http.Request) metadata.MD {
	if st := stateFrom(ctx); st != nil {
		return metadata.Pairs("x-request-id", st.id)
	}
	return nil
}

// stripUntrusted deletes the request headers a client must not set:
// x-marquee-* (gateway-owned metadata), grpc-* (grpc-gateway reads
// Grpc-Timeout as a deadline and Grpc-Metadata-* as metadata) and
// X-Forwarded-For/Host (no trusted proxy is configured).
func stripUntrusted(h http.Header) {
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-marquee-") || strings.HasPrefix(lk, "grpc-") ||
			lk == "x-forwarded-for" || lk == "x-forwarded-host" {
			delete(h, k)
		}
	}
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
