package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
)

// maxCSR bounds a certificate request: a P-256 request is a few hundred
// bytes.
const maxCSR = 16 << 10

const wantAuthorization = `want metadata "authorization: Bearer SERVICE.TOKEN" with the sidecar's join token`

// authenticate returns the service the call's join token was made for.
// Errors never quote the token.
func (s *Server) authenticate(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch len(vals) {
	case 0:
		return "", status.Error(codes.Unauthenticated, "no join token: "+wantAuthorization)
	case 1:
	default:
		return "", status.Error(codes.Unauthenticated, "more than one authorization value: "+wantAuthorization)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", status.Error(codes.Unauthenticated, "authorization is not a bearer token: "+wantAuthorization)
	}
	service, err := ca.CheckJoinToken(s.cfg.JoinSecret, strings.TrimSpace(token))
	switch {
	case err == nil:
		return service, nil
	case errors.Is(err, ca.ErrJoinTokenMalformed):
		s.log.Warn("mesh call with a malformed join token refused", "peer", peerAddr(ctx))
		return "", status.Error(codes.Unauthenticated, "malformed join token: "+wantAuthorization)
	default:
		s.log.Warn("mesh call with an invalid join token refused", "peer", peerAddr(ctx))
		return "", status.Error(codes.Unauthenticated, "invalid join token: it was not issued by this control plane for the service it names")
	}
}

// Certify signs a workload certificate for the service of the caller's
// join token, whatever names the request asks for.
func (s *Server) Certify(ctx context.Context, req *meshv1.CertifyRequest) (*meshv1.CertifyResponse, error) {
	service, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkCSR(req.GetCsr()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	cert, err := s.cfg.Authority.Sign(req.GetCsr(), service, s.cfg.CertTTL)
	if err != nil {
		s.log.Error("mesh certificate signing failed", "service", service, "err", err)
		return nil, status.Error(codes.Internal, "signing the certificate failed")
	}
	s.m.certificates.WithLabelValues(service).Inc()
	s.log.Info("mesh certificate issued", "service", service, "serial", cert.SerialNumber.Text(16),
		"not_after", cert.NotAfter.UTC(), "peer", peerAddr(ctx))
	return &meshv1.CertifyResponse{
		Certificate: cert.Raw,
		TrustBundle: [][]byte{s.cfg.Authority.RootDER()},
		NotAfter:    timestamppb.New(cert.NotAfter),
	}, nil
}

// checkCSR refuses what the authority would refuse, so that a bad request
// is the caller's error and any other signing failure is ours.
func checkCSR(der []byte) error {
	if len(der) == 0 {
		return errors.New("csr is required: a PKCS #10 certificate request (DER) for an ECDSA P-256 key")
	}
	if len(der) > maxCSR {
		return errors.New("csr is too large")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return errors.New("csr is not a PKCS #10 certificate request (DER)")
	}
	if err := csr.CheckSignature(); err != nil {
		return errors.New("csr signature does not verify")
	}
	k, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return errors.New("csr key must be ECDSA P-256")
	}
	return nil
}

// peerAddr is the caller's network address, for logs.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
