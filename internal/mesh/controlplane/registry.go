package controlplane

import (
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

var (
	errShuttingDown = status.Error(codes.Unavailable, "control plane is shutting down; reconnect")
	errReplaced     = status.Error(codes.Aborted, "a newer connection of the same instance replaced this one")
)

// entry is one registered instance and its stream. Its fields are guarded
// by Server.mu, except out and done which are safe on their own.
type entry struct {
	inst        *meshv1.Instance // as said in Hello; Healthy as last heartbeated
	stale       bool             // not heard from within the heartbeat timeout
	connectedAt time.Time
	lastSeen    time.Time

	sent          *meshv1.Snapshot // last snapshot handed to out; never modified
	acked         uint64
	ackErr        string
	nackedVersion uint64

	out *outbox

	doneOnce sync.Once
	done     chan struct{}
	reason   error // why the server ended the stream; set before done closes
}

func newEntry(inst *meshv1.Instance, now time.Time) *entry {
	return &entry{
		inst:        inst,
		connectedAt: now,
		lastSeen:    now,
		out:         newOutbox(),
		done:        make(chan struct{}),
	}
}

// healthy is the health the instance's callers see.
func (e *entry) healthy() bool { return e.inst.GetHealthy() && !e.stale }

// end asks the stream's handler to return reason.
func (e *entry) end(reason error) {
	e.doneOnce.Do(func() {
		e.reason = reason
		close(e.done)
	})
}

func (e *entry) status() InstanceStatus {
	st := InstanceStatus{
		ID: e.inst.GetId(), Service: e.inst.GetService(), Version: e.inst.GetVersion(), Address: e.inst.GetAddress(),
		MetricsAddress: e.inst.GetMetricsAddress(), Healthy: e.healthy(), ConnectedAt: e.connectedAt.UTC(), LastHeartbeat: e.lastSeen.UTC(),
		AckedVersion: e.acked, AckError: e.ackErr, NackedVersion: e.nackedVersion,
	}
	if e.sent != nil {
		st.SnapshotVersion = e.sent.GetVersion()
	}
	return st
}

// outbox holds the latest snapshot not yet sent on a stream: a newer one
// replaces it, so a slow sidecar never holds up the registry and only ever
// receives the newest configuration.
type outbox struct {
	mu   sync.Mutex
	next *meshv1.Snapshot
	wake chan struct{}
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) put(s *meshv1.Snapshot) {
	o.mu.Lock()
	o.next = s
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) take() *meshv1.Snapshot {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.next
	o.next = nil
	return s
}

// register adds e, replacing an earlier entry of the same instance, and
// queues its first snapshot. It returns the entry replaced, if any.
func (s *Server) register(e *entry) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errShuttingDown
	}
	id := e.inst.GetId()
	old := s.entries[id]
	if old != nil && old.inst.GetService() != e.inst.GetService() {
		return nil, status.Errorf(codes.AlreadyExists, "instance id %q is already registered by service %q; choose another id", id, old.inst.GetService())
	}
	s.entries[id] = e
	s.refreshLocked(e, s.instancesLocked())
	s.schedulePushLocked()
	s.updateMetricsLocked()
	return old, nil
}

// unregister removes e unless a newer connection replaced it.
func (s *Server) unregister(e *entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := e.inst.GetId()
	if s.entries[id] != e {
		return false
	}
	delete(s.entries, id)
	s.schedulePushLocked()
	s.updateMetricsLocked()
	return true
}

// heartbeat records that e is alive and its health.
func (s *Server) heartbeat(e *entry, healthy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := e.healthy()
	e.inst.Healthy = healthy
	e.stale = false
	e.lastSeen = time.Now()
	if before != e.healthy() && s.entries[e.inst.GetId()] == e {
		s.log.Info("mesh instance health changed", "instance", e.inst.GetId(), "service", e.inst.GetService(), "healthy", e.healthy())
		s.schedulePushLocked()
		s.updateMetricsLocked()
	}
}

// maxAckError bounds the error text of a NACK kept and shown to operators.
const maxAckError = 1024

// ack records a sidecar's answer to a snapshot.
func (s *Server) ack(e *entry, a *meshv1.Ack) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := a.GetVersion()
	if e.sent == nil || v == 0 || v > e.sent.GetVersion() {
		return status.Errorf(codes.InvalidArgument, "ack of snapshot version %d, which was not sent on this stream", v)
	}
	if a.GetError() == "" {
		if v > e.acked {
			e.acked = v
		}
		if v >= e.nackedVersion {
			e.ackErr, e.nackedVersion = "", 0
		}
		return nil
	}
	msg := a.GetError()
	if len(msg) > maxAckError {
		msg = msg[:maxAckError] + "..."
	}
	e.ackErr, e.nackedVersion = msg, v
	s.m.nacks.Inc()
	s.log.Warn("mesh sidecar refused a snapshot", "instance", e.inst.GetId(), "service", e.inst.GetService(),
		"snapshot_version", v, "policy_version", e.sent.GetPolicyVersion(), "err", msg)
	return nil
}

// sweep marks instances not heard from within the heartbeat timeout.
func (s *Server) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, e := range s.entries {
		if e.stale || now.Sub(e.lastSeen) <= s.cfg.HeartbeatTimeout {
			continue
		}
		e.stale = true
		s.log.Warn("mesh instance missed its heartbeats; marked unhealthy", "instance", e.inst.GetId(), "service", e.inst.GetService(),
			"last_heartbeat", e.lastSeen.UTC())
		if e.inst.GetHealthy() {
			changed = true
		}
	}
	if changed {
		s.schedulePushLocked()
		s.updateMetricsLocked()
	}
}

// schedulePushLocked arranges for every sidecar's snapshot to be
// recomputed, at most once per pushInterval.
func (s *Server) schedulePushLocked() {
	if s.pushPending || s.closed {
		return
	}
	s.pushPending = true
	delay := max(time.Until(s.lastPush.Add(pushInterval)), 0)
	time.AfterFunc(delay, s.push)
}

// push recomputes every sidecar's snapshot and queues those that changed.
func (s *Server) push() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushPending = false
	s.lastPush = time.Now()
	if s.closed {
		return
	}
	instances := s.instancesLocked()
	for _, e := range s.entries {
		s.refreshLocked(e, instances)
	}
}

// instancesLocked is the registry as policy.Snapshot reads it, with the
// health callers should see.
func (s *Server) instancesLocked() []*meshv1.Instance {
	out := make([]*meshv1.Instance, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, &meshv1.Instance{
			Id: e.inst.GetId(), Service: e.inst.GetService(), Version: e.inst.GetVersion(),
			Address: e.inst.GetAddress(), Healthy: e.healthy(),
		})
	}
	return out
}

// refreshLocked computes e's snapshot and queues it when it differs from
// the last one sent, with a new version.
func (s *Server) refreshLocked(e *entry, instances []*meshv1.Instance) {
	snap := s.pol.Snapshot(e.inst.GetService(), instances)
	snap.PolicyVersion = s.policyVersion
	if e.sent != nil {
		// Compare all but the version; snap is not shared yet, e.sent may
		// be being marshalled by the sender.
		snap.Version = e.sent.GetVersion()
		if proto.Equal(snap, e.sent) {
			return
		}
	}
	snap.Version = s.nextVersionLocked()
	e.sent = snap
	e.out.put(snap)
}

// nextVersionLocked returns a snapshot version above every one handed out
// before, by this process or (clocks permitting) by an earlier one: it is
// at least the current time in microseconds.
func (s *Server) nextVersionLocked() uint64 {
	v := max(s.lastVersion+1, uint64(time.Now().UnixMicro()))
	s.lastVersion = v
	return v
}

// updateMetricsLocked sets the instances gauge from the registry.
func (s *Server) updateMetricsLocked() {
	counts := map[instanceKey]int{}
	for _, e := range s.entries {
		counts[instanceKey{e.inst.GetService(), e.inst.GetVersion(), e.healthy()}]++
	}
	s.m.setInstances(counts)
}
