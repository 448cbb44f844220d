package controlplane

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

var (
	instanceIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)
	// versionRE is the version syntax policy splits and routes name.
	versionRE = regexp.MustCompile(`^v[0-9a-z.-]{1,62}$`)
)

// Connect registers the instance a sidecar announces, pushes it snapshots
// and records its heartbeats and acks until the stream ends, when the
// instance leaves the registry.
func (s *Server) Connect(stream meshv1.MeshService_ConnectServer) error {
	ctx := stream.Context()
	service, err := s.authenticate(ctx)
	if err != nil {
		return err
	}
	inst, err := s.recvHello(stream)
	if err != nil {
		return err
	}
	if inst.GetService() != service {
		return status.Errorf(codes.PermissionDenied, "the join token is for service %q, not %q", service, inst.GetService())
	}
	if err := validInstance(inst); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	e := newEntry(inst, time.Now())
	old, err := s.register(e)
	if err != nil {
		return err
	}
	if old != nil {
		old.end(errReplaced)
		s.log.Info("mesh instance reconnected; the older stream is closed", "instance", inst.GetId(), "service", service)
	}
	log := s.log.With("instance", inst.GetId(), "service", service, "version", inst.GetVersion(), "address", inst.GetAddress(), "peer", peerAddr(ctx))
	log.Info("mesh instance joined", "healthy", inst.GetHealthy())
	defer func() {
		if s.unregister(e) {
			log.Info("mesh instance left")
		}
	}()

	recvErr := make(chan error, 1)
	go func() { recvErr <- s.receive(stream, e) }()
	for {
		select {
		case <-e.out.wake:
			snap := e.out.take()
			if snap == nil {
				continue
			}
			if err := stream.Send(&meshv1.ConnectResponse{Snapshot: snap}); err != nil {
				return err
			}
			s.m.snapshotsSent.Inc()
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-e.done:
			return e.reason
		}
	}
}

// recvHello waits for the stream's first message, which must be a Hello,
// for at most the heartbeat timeout.
func (s *Server) recvHello(stream meshv1.MeshService_ConnectServer) (*meshv1.Instance, error) {
	type result struct {
		m   *meshv1.ConnectRequest
		err error
	}
	first := make(chan result, 1)
	go func() {
		m, err := stream.Recv()
		first <- result{m, err}
	}()
	t := time.NewTimer(s.cfg.HeartbeatTimeout)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %s of connecting", s.cfg.HeartbeatTimeout)
	case r := <-first:
		if r.err != nil {
			return nil, r.err
		}
		h := r.m.GetHello()
		if h == nil {
			return nil, status.Error(codes.InvalidArgument, "the first message must be a hello")
		}
		if h.GetInstance() == nil {
			return nil, status.Error(codes.InvalidArgument, "hello.instance is required")
		}
		return proto.CloneOf(h.GetInstance()), nil
	}
}

// receive handles the messages after Hello until the stream fails.
func (s *Server) receive(stream meshv1.MeshService_ConnectServer, e *entry) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		switch msg := m.GetMessage().(type) {
		case *meshv1.ConnectRequest_Heartbeat:
			s.heartbeat(e, msg.Heartbeat.GetHealthy())
		case *meshv1.ConnectRequest_Ack:
			if err := s.ack(e, msg.Ack); err != nil {
				return err
			}
		case *meshv1.ConnectRequest_Hello:
			return status.Error(codes.InvalidArgument, "hello sent twice on one stream")
		default:
			return status.Error(codes.InvalidArgument, "empty message: want a heartbeat or an ack")
		}
	}
}

// validInstance checks what a sidecar says of itself; the service was
// checked against the join token already.
func validInstance(in *meshv1.Instance) error {
	var errs []error
	if !instanceIDRE.MatchString(in.GetId()) {
		errs = append(errs, fmt.Errorf("instance.id %q is invalid: want 1 to 63 of a-z, 0-9, '.' and '-', starting with a letter or digit", clip(in.GetId())))
	}
	if !versionRE.MatchString(in.GetVersion()) {
		errs = append(errs, fmt.Errorf("instance.version %q is invalid: want v followed by 1 to 62 of 0-9, a-z, '.' and '-' (such as v1)", clip(in.GetVersion())))
	}
	for _, a := range []string{in.GetAddress(), in.GetMetricsAddress()} {
		if a != "" {
			if err := validAddress(a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// validAddress checks an inbound address: host:port with a numeric port
// and an IP address or DNS name as host.
func validAddress(a string) error {
	bad := func(why string) error {
		return fmt.Errorf("instance.address %q is invalid: %s (want host:port, or empty for a workload nobody calls)", clip(a), why)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return bad("not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("port must be a number from 1 to 65535")
	}
	if host == "" {
		return bad("host is empty")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if len(host) > 253 {
		return bad("host name is too long")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("host is neither an IP address nor a DNS name")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad("host is neither an IP address nor a DNS name")
			}
		}
	}
	return nil
}

// clip keeps hostile input in error messages short.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
