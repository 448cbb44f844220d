package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/gateway/auth"
	"github.com/marquee-tv/marquee/internal/gateway/routes"
	"github.com/marquee-tv/marquee/internal/identity/token"
)

// newMux returns a grpc-gateway transcoder with the gateway's options. The
// gateway routes before it: the mux's own routing errors only happen when
// it disagrees with the routing table (checkRoute).
func (g *Gateway) newMux() *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
			},
		}),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(dropMetadata),
		runtime.WithOutgoingTrailerMatcher(dropMetadata),
		runtime.WithMetadata(annotate),
		runtime.WithErrorHandler(g.handleError),
		runtime.WithRoutingErrorHandler(g.handleRoutingError),
		runtime.WithForwardResponseOption(setSuccessStatus),
		runtime.WithMiddlewares(g.checkRoute),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
	)
}

// httpBindings lists the HTTP bindings the proto of a gRPC service
// annotates (google.api.http, with additional bindings).
func httpBindings(service string) ([]routes.Binding, error) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, fmt.Errorf("gateway: descriptor of %s: %w", service, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("gateway: %s is not a service", service)
	}
	var out []routes.Binding
	methods := sd.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		rule, ok := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if !ok || rule == nil {
			continue
		}
		rpc := "/" + service + "/" + string(m.Name())
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			method, path := ruleBinding(r)
			if path != "" {
				out = append(out, routes.Binding{Method: method, Path: path, RPC: rpc})
			}
		}
	}
	return out, nil
}

func ruleBinding(r *annotations.HttpRule) (method, path string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// SigningKeys fetches the JWKS from identity.
func (c identityClient) SigningKeys(ctx context.Context) (*token.Keyset, error) {
	resp, err := c.c.ListSigningKeys(ctx, &identityv1.ListSigningKeysRequest{})
	if err != nil {
		return nil, err
	}
	return token.KeysetFromProto(resp)
}

// VerifyAPIKey asks identity whom an API key belongs to.
func (c identityClient) VerifyAPIKey(ctx context.Context, key string) (auth.APIKeyOwner, error) {
	resp, err := c.c.VerifyAPIKey(ctx, &identityv1.VerifyAPIKeyRequest{ApiKey: key})
	switch status.Code(err) {
	case codes.OK:
		return auth.APIKeyOwner{AccountID: resp.GetAccountId(), KeyID: resp.GetKeyId(), Roles: resp.GetRoles()}, nil
	case codes.Unauthenticated, codes.NotFound, codes.PermissionDenied, codes.InvalidArgument:
		return auth.APIKeyOwner{}, auth.ErrInvalidAPIKey
	}
	return auth.APIKeyOwner{}, err
}
