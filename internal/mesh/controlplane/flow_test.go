package controlplane_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// TestMeshFollowsRegistryAndPolicy walks two sidecars through the life of
// a mesh: join, health change, policy change, a refused snapshot, leave.
func TestMeshFollowsRegistryAndPolicy(t *testing.T) {
	storagetest.ForEach(t, "controlplane", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		reg := prometheus.NewRegistry()
		c := startCP(t, db, "127.0.0.1:0", func(cfg *controlplane.Config) { cfg.Registerer = reg })
		cat := startSidecar(t, c, "catalog", "catalog-1", "v1", "127.0.0.1:7000")
		prof := startSidecar(t, c, "profiles", "profiles-1", "v1", "127.0.0.1:7001")
		<-cat.agent.Synced()
		<-prof.agent.Synced()

		waitFor(t, "profiles to see catalog-1 healthy", func() bool {
			e := endpoint(prof.rec.last(), "catalog", "catalog-1")
			return e != nil && e.GetHealthy() && e.GetAddress() == "127.0.0.1:7000" && e.GetVersion() == "v1"
		})
		if d := destination(prof.rec.last(), "catalog"); d.GetTimeout().AsDuration().String() != "2s" {
			t.Errorf("catalog destination timeout = %v, want 2s", d.GetTimeout())
		}
		if d := destination(cat.rec.last(), "profiles"); d != nil {
			t.Errorf("catalog's snapshot has a profiles destination %v; catalog may not call profiles", d)
		}
		waitFor(t, "both instances registered and healthy", func() bool {
			ins := c.srv.Instances()
			return len(ins) == 2 && ins[0].ID == "catalog-1" && ins[1].ID == "profiles-1" && ins[0].Healthy && ins[1].Healthy
		})
		waitFor(t, "the instances gauge", func() bool {
			return metricValue(t, reg, "marquee_mesh_instances", map[string]string{"service": "catalog", "version": "v1", "healthy": "true"}) == 1
		})

		cat.setHealthy(false)
		waitFor(t, "profiles to see catalog-1 unhealthy", func() bool {
			e := endpoint(prof.rec.last(), "catalog", "catalog-1")
			return e != nil && !e.GetHealthy()
		})
		if st, _ := statusByID(c.srv, "catalog-1"); st.Healthy {
			t.Error("registry says catalog-1 is healthy after it reported otherwise")
		}
		cat.setHealthy(true)
		waitFor(t, "profiles to see catalog-1 healthy again", func() bool {
			return endpoint(prof.rec.last(), "catalog", "catalog-1").GetHealthy()
		})

		p, v := c.srv.Policy()
		if v != 1 {
			t.Fatalf("policy version = %d, want 1", v)
		}
		if err := p.SetSplit("catalog", map[string]uint32{"v1": 90, "v2": 10}); err != nil {
			t.Fatal(err)
		}
		v2, err := c.srv.ApplyPolicy(context.Background(), p, "test")
		if err != nil || v2 != 2 {
			t.Fatalf("ApplyPolicy = %d, %v; want 2", v2, err)
		}
		waitFor(t, "profiles to get the split", func() bool {
			s := prof.rec.last()
			want := []*meshv1.WeightedVersion{{Version: "v1", Weight: 90}, {Version: "v2", Weight: 10}}
			got := destination(s, "catalog").GetSplit()
			return s.GetPolicyVersion() == 2 && len(got) == 2 && proto.Equal(got[0], want[0]) && proto.Equal(got[1], want[1])
		})
		if again, err := c.srv.ApplyPolicy(context.Background(), p, "test"); err != nil || again != 2 {
			t.Errorf("ApplyPolicy of the same policy = %d, %v; want 2 and no new version", again, err)
		}
		if got := metricValue(t, reg, "marquee_mesh_policy_version", nil); got != 2 {
			t.Errorf("marquee_mesh_policy_version = %v, want 2", got)
		}

		// catalog refuses what comes next.
		cat.rec.setRefuse(func(*meshv1.Snapshot) error { return errors.New("proxy says no") })
		if err := p.SetSplit("catalog", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.srv.ApplyPolicy(context.Background(), p, "test"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the NACK to be recorded", func() bool {
			st, _ := statusByID(c.srv, "catalog-1")
			return st.AckError == "proxy says no" && st.NackedVersion == st.SnapshotVersion && st.AckedVersion < st.SnapshotVersion
		})
		if got := metricValue(t, reg, "marquee_mesh_nacks_total", nil); got < 1 {
			t.Errorf("marquee_mesh_nacks_total = %v, want at least 1", got)
		}
		cat.rec.setRefuse(nil)

		cat.stop()
		waitFor(t, "catalog-1 to leave profiles' view", func() bool {
			s := prof.rec.last()
			return destination(s, "catalog") != nil && len(destination(s, "catalog").GetEndpoints()) == 0
		})
		waitFor(t, "catalog-1 to leave the registry", func() bool {
			ins := c.srv.Instances()
			return len(ins) == 1 && ins[0].ID == "profiles-1"
		})

		for _, sc := range []*sidecar{cat, prof} {
			snaps := sc.rec.all()
			for i := 1; i < len(snaps); i++ {
				if snaps[i].GetVersion() <= snaps[i-1].GetVersion() {
					t.Errorf("snapshot versions went %d then %d", snaps[i-1].GetVersion(), snaps[i].GetVersion())
				}
			}
		}
		if got := metricValue(t, reg, "marquee_mesh_snapshots_sent_total", nil); got < float64(len(prof.rec.all())) {
			t.Errorf("marquee_mesh_snapshots_sent_total = %v, want at least %d", got, len(prof.rec.all()))
		}
	})
}

// TestRestartKeepsPolicyAndSidecarsReconnect replaces the control plane
// with a new one on the same database and port.
func TestRestartKeepsPolicyAndSidecarsReconnect(t *testing.T) {
	storagetest.ForEach(t, "controlplane", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		c := startCP(t, db, "127.0.0.1:0")
		cat := startSidecar(t, c, "catalog", "catalog-1", "v1", "127.0.0.1:7000")
		prof := startSidecar(t, c, "profiles", "profiles-1", "v1", "127.0.0.1:7001")
		<-cat.agent.Synced()
		<-prof.agent.Synced()
		p, _ := c.srv.Policy()
		if err := p.SetSplit("catalog", map[string]uint32{"v1": 50, "v2": 50}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.srv.ApplyPolicy(context.Background(), p, "test"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "profiles to get policy 2 with catalog-1", func() bool {
			s := prof.rec.last()
			return s.GetPolicyVersion() == 2 && endpoint(s, "catalog", "catalog-1") != nil
		})
		before := prof.rec.last().GetVersion()
		seen := len(prof.rec.all())

		c.stop()
		c2 := startCP(t, db, c.addr)
		if _, v := c2.srv.Policy(); v != 2 {
			t.Fatalf("restarted policy version = %d, want 2", v)
		}
		waitFor(t, "both sidecars to reconnect", func() bool { return len(c2.srv.Instances()) == 2 })
		waitFor(t, "profiles to get a snapshot from the new control plane with catalog-1", func() bool {
			snaps := prof.rec.all()
			if len(snaps) <= seen {
				return false
			}
			s := snaps[len(snaps)-1]
			return endpoint(s, "catalog", "catalog-1") != nil && s.GetPolicyVersion() == 2
		})
		for _, s := range prof.rec.all()[seen:] {
			if s.GetVersion() <= before {
				t.Errorf("snapshot version %d from the restarted control plane is not above %d", s.GetVersion(), before)
			}
		}
		if got := destination(prof.rec.last(), "catalog").GetSplit(); len(got) != 2 {
			t.Errorf("split after restart = %v, want the stored 50/50", got)
		}
	})
}

// metricValue returns the value of the series name with labels in reg,
// and -1 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}
