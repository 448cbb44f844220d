package sidecar

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

// These tests run gRPC's interop test service (its messages; the server
// is below) through a sidecar pair: large messages beyond the HTTP/2 flow-
// control windows, every kind of streaming, cancellation, deadlines,
// statuses and metadata, modelled on gRPC's interop test cases.

// testService is the interop TestService.
type testService struct {
	testpb.UnimplementedTestServiceServer
	canceled chan struct{} // a value per call that saw its context end
}

func payload(n int32) *testpb.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return &testpb.Payload{Body: b}
}

func (s *testService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-grpc-test-echo-initial"); len(v) > 0 {
		grpc.SetHeader(ctx, metadata.Pairs("x-grpc-test-echo-initial", v[0]))
	}
	if v := md.Get("x-grpc-test-echo-trailing-bin"); len(v) > 0 {
		grpc.SetTrailer(ctx, metadata.Pairs("x-grpc-test-echo-trailing-bin", v[0]))
	}
	if st := in.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: payload(in.GetResponseSize())}, nil
}

func (s *testService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for _, p := range in.GetResponseParameters() {
		if d := p.GetIntervalUs(); d > 0 {
			time.Sleep(time.Duration(d) * time.Microsecond)
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.GetSize())}); err != nil {
			return err
		}
	}
	return nil
}

func (s *testService) StreamingInputCall(stream grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	var sum int32
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(in.GetPayload().GetBody()))
	}
}

func (s *testService) FullDuplexCall(stream grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if stream.Context().Err() != nil {
				s.canceled <- struct{}{}
			}
			return err
		}
		if st := in.GetResponseStatus(); st != nil && st.GetCode() != 0 {
			return status.Error(codes.Code(st.GetCode()), st.GetMessage())
		}
		for _, p := range in.GetResponseParameters() {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.GetSize())}); err != nil {
				return err
			}
		}
	}
}

// testServicePair starts the service behind a sidecar pair and returns a
// client of it through the client sidecar.
func testServicePair(t *testing.T, dest func(*meshv1.Destination)) (testpb.TestServiceClient, *testService) {
	t.Helper()
	svc := &testService{canceled: make(chan struct{}, 10)}
	app := startApp(t, "v1")
	gl := listen(t)
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, svc)
	go gs.Serve(gl)
	t.Cleanup(gs.Stop)
	app.grpcAddr = gl.Addr().String()

	m := newMesh(t)
	srv := m.start("echo", sidecarOpts{app: app})
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	cli := m.start("client", sidecarOpts{})
	d := &meshv1.Destination{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(srv, "v1")}}
	if dest != nil {
		dest(d)
	}
	cli.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{d}})
	return testpb.NewTestServiceClient(dialOutbound(t, cli, "echo")), svc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStreamingLargeUnary(t *testing.T) {
	tc, _ := testServicePair(t, nil)
	// Both ways beyond the stream window (256 KiB) and the connection
	// window (1 MiB).
	const reqSize, respSize = 3 << 20, 2<<20 + 7
	resp, err := tc.UnaryCall(testCtx(t), &testpb.SimpleRequest{ResponseSize: respSize, Payload: payload(reqSize)},
		grpc.MaxCallRecvMsgSize(8<<20), grpc.MaxCallSendMsgSize(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.GetPayload().GetBody(), payload(respSize).GetBody()) {
		t.Fatalf("response payload of %d bytes differs from what was sent", len(resp.GetPayload().GetBody()))
	}
}

func TestStreamingClientStreaming(t *testing.T) {
	tc, _ := testServicePair(t, nil)
	stream, err := tc.StreamingInputCall(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var sum int32
	for _, n := range []int32{27182, 8, 1828, 45904, 400000} {
		if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: payload(n)}); err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAggregatedPayloadSize() != sum {
		t.Fatalf("aggregated size = %d, want %d", resp.GetAggregatedPayloadSize(), sum)
	}
}

func TestStreamingServerStreaming(t *testing.T) {
	tc, _ := testServicePair(t, nil)
	sizes := []int32{31415, 9, 2653, 58979, 300000, 300000, 300000, 300000, 300000}
	req := &testpb.StreamingOutputCallRequest{}
	for _, n := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: n})
	}
	stream, err := tc.StreamingOutputCall(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range sizes {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(resp.GetPayload().GetBody(), payload(n).GetBody()) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(resp.GetPayload().GetBody()), n)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
}

// TestStreamingPingPong sends each message only after the answer to the
// last: a proxy that held messages back would hang it.
func TestStreamingPingPong(t *testing.T) {
	tc, _ := testServicePair(t, nil)
	stream, err := tc.FullDuplexCall(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int32{31415, 9, 2653, 58979} {
		if err := stream.Send(&testpb.StreamingOutputCallRequest{
			ResponseParameters: []*testpb.ResponseParameters{{Size: n}},
			Payload:            payload(n * 3),
		}); err != nil {
			t.Fatalf("round %d: send: %v", i, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if len(resp.GetPayload().GetBody()) != int(n) {
			t.Fatalf("round %d: %d bytes, want %d", i, len(resp.GetPayload().GetBody()), n)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want EOF", err)
	}
}

// TestStreamingCancel cancels a call after its first answer: the
// application sees its context end.
func TestStreamingCancel(t *testing.T) {
	tc, svc := testServicePair(t, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	stream, err := tc.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 10}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v, want CANCELLED", err)
	}
	select {
	case <-svc.canceled:
	case <-time.After(30 * time.Second):
		t.Fatal("the application's call was not canceled")
	}
}

func TestStreamingStatusAndMetadata(t *testing.T) {
	tc, _ := testServicePair(t, nil)
	ctx := metadata.AppendToOutgoingContext(testCtx(t),
		"x-grpc-test-echo-initial", "test_initial_metadata_value",
		"x-grpc-test-echo-trailing-bin", string([]byte{0xab, 0xab, 0xab}))
	var hdr, trl metadata.MD
	_, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: 2, Message: "test status message \t\n😀"}},
		grpc.Header(&hdr), grpc.Trailer(&trl))
	st, _ := status.FromError(err)
	if st.Code() != codes.Unknown || st.Message() != "test status message \t\n😀" {
		t.Errorf("status = %v, want UNKNOWN with the message as sent", err)
	}
	// A status without a message is answered trailers-only: the initial
	// metadata then arrives with the trailers.
	md := metadata.Join(hdr, trl)
	if v := md.Get("x-grpc-test-echo-initial"); len(v) != 1 || v[0] != "test_initial_metadata_value" {
		t.Errorf("initial metadata = %q", v)
	}
	if v := md.Get("x-grpc-test-echo-trailing-bin"); len(v) != 1 || v[0] != string([]byte{0xab, 0xab, 0xab}) {
		t.Errorf("trailing metadata = %q", v)
	}
	if meshErrorOf(hdr, trl) != "" {
		t.Errorf("an application's status is marked as the mesh's")
	}
}

// TestStreamingDeadlinePropagates: the caller's deadline reaches the
// application (grpc-timeout passes through) and ends its call.
func TestStreamingDeadlinePropagates(t *testing.T) {
	tc, svc := testServicePair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	stream, err := tc.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call past its deadline: %v, want DEADLINE_EXCEEDED", err)
	}
	select {
	case <-svc.canceled:
	case <-time.After(30 * time.Second):
		t.Fatal("the application's call did not end at the deadline")
	}
}

// TestStreamingConcurrent runs many duplex streams at once on the shared
// connections, each moving more than its window.
func TestStreamingConcurrent(t *testing.T) {
	tc, _ := testServicePair(t, nil)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			stream, err := tc.FullDuplexCall(ctx)
			if err != nil {
				errs <- err
				return
			}
			for range 6 {
				if err := stream.Send(&testpb.StreamingOutputCallRequest{
					ResponseParameters: []*testpb.ResponseParameters{{Size: 100000}},
					Payload:            payload(100000),
				}); err != nil {
					errs <- err
					return
				}
				resp, err := stream.Recv()
				if err != nil {
					errs <- err
					return
				}
				if len(resp.GetPayload().GetBody()) != 100000 {
					errs <- errors.New("short message")
					return
				}
			}
			stream.CloseSend()
			if _, err := stream.Recv(); err != io.EOF {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStreamingSlowReader: a stream whose caller does not read holds only
// its own window; other calls on the same connections go on.
func TestStreamingSlowReader(t *testing.T) {
	tc, _ := testServicePair(t, nil)
	ctx := testCtx(t)
	req := &testpb.StreamingOutputCallRequest{}
	for range 40 {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: 250000})
	}
	stream, err := tc.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// 10 MB wait to be read; meanwhile:
	for i := range 20 {
		if _, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 100000, Payload: payload(100000)}); err != nil {
			t.Fatalf("call %d beside a stream nobody reads: %v", i, err)
		}
	}
	for i := range 40 {
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}
