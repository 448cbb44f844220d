package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

// Run keeps the instance connected until ctx ends, then returns nil: it
// opens the Connect stream, says Hello, sends heartbeats, applies and
// acknowledges snapshots, and after any failure reconnects with a backoff
// growing from 100ms to 5s (reset once a stream delivered a snapshot).
func (a *Agent) Run(ctx context.Context) error {
	delay := minBackoff
	for {
		gotSnapshot, err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if gotSnapshot {
			delay = minBackoff
		}
		level := a.log.Warn
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.AlreadyExists:
			// Retrying will not help until someone fixes the
			// configuration; say so loudly, but keep trying so the
			// sidecar recovers by itself once they do.
			level = a.log.Error
		}
		wait := delay/2 + rand.N(delay/2+1)
		level("mesh control plane stream ended; reconnecting", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(delay*2, maxBackoff)
	}
}

// session runs one Connect stream until it fails or ctx ends. It reports
// whether a snapshot arrived on it.
func (a *Agent) session(ctx context.Context) (gotSnapshot bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.client.Connect(ctx)
	if err != nil {
		return false, err
	}
	var sendMu sync.Mutex // heartbeats and acks come from two goroutines
	send := func(m *meshv1.ConnectRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(m)
	}
	inst := a.cfg.Instance
	hello := &meshv1.Instance{Id: inst.GetId(), Service: inst.GetService(), Version: inst.GetVersion(), Address: inst.GetAddress(), MetricsAddress: inst.GetMetricsAddress(), Healthy: a.health(ctx)}
	if err := send(&meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Hello{Hello: &meshv1.Hello{Instance: hello}}}); err != nil {
		return false, recvError(stream, err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var heartbeatErr error // set before cancel
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A failed send on a broken stream reports io.EOF and Recv below
		// sees why; any other failure ends the stream from here.
		if err := a.heartbeats(ctx, hello.GetHealthy(), send); err != nil && !errors.Is(err, io.EOF) {
			heartbeatErr = err
			cancel()
		}
	}()

	for {
		resp, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.Canceled {
				cancel()
				wg.Wait()
				if heartbeatErr != nil {
					return gotSnapshot, fmt.Errorf("heartbeat: %w", heartbeatErr)
				}
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the control plane closed the stream")
			}
			return gotSnapshot, err
		}
		snap := resp.GetSnapshot()
		if snap == nil {
			continue
		}
		gotSnapshot = true
		ack := &meshv1.Ack{Version: snap.GetVersion()}
		if err := a.apply(snap); err != nil {
			ack.Error = err.Error()
			a.log.Warn("mesh snapshot refused", "snapshot_version", snap.GetVersion(), "policy_version", snap.GetPolicyVersion(), "err", err)
		} else {
			a.log.Debug("mesh snapshot applied", "snapshot_version", snap.GetVersion(), "policy_version", snap.GetPolicyVersion(),
				"destinations", len(snap.GetDestinations()))
			a.syncOnce.Do(func() { close(a.synced) })
		}
		if err := send(&meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Ack{Ack: ack}}); err != nil {
			return gotSnapshot, recvError(stream, err)
		}
	}
}

// apply hands snap to the proxy, refusing one meant for another service.
func (a *Agent) apply(snap *meshv1.Snapshot) error {
	if snap.GetService() != a.cfg.Instance.GetService() {
		return fmt.Errorf("snapshot is for service %q, this sidecar is %q", snap.GetService(), a.cfg.Instance.GetService())
	}
	return a.cfg.Apply(snap)
}

// unhealthyPoll is how often an application that is not ready is asked
// again, so that it gets traffic moments after it becomes ready.
const unhealthyPoll = 100 * time.Millisecond

// heartbeats polls the application's health and reports it every interval,
// and at once when it changes, until ctx ends or a send fails.
func (a *Agent) heartbeats(ctx context.Context, last bool, send func(*meshv1.ConnectRequest) error) error {
	sent := time.Now()
	for {
		wait := a.cfg.HeartbeatInterval
		if !last {
			wait = min(wait, unhealthyPoll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		h := a.health(ctx)
		if ctx.Err() != nil {
			return nil
		}
		changed := h != last
		if changed {
			a.log.Info("application health changed", "healthy", h)
			last = h
		}
		if !changed && time.Since(sent) < a.cfg.HeartbeatInterval {
			continue
		}
		if err := send(&meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Heartbeat{Heartbeat: &meshv1.Heartbeat{Healthy: h}}}); err != nil {
			return err
		}
		sent = time.Now()
	}
}

// health asks the application, giving it at most one heartbeat interval.
func (a *Agent) health(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.HeartbeatInterval)
	defer cancel()
	return a.cfg.Health(ctx)
}

// recvError returns the status that ended the stream when a Send failed:
// Send reports io.EOF, and the reason is only available from Recv.
func recvError(stream meshv1.MeshService_ConnectClient, sendErr error) error {
	if !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the control plane closed the stream")
			}
			return err
		}
	}
}
