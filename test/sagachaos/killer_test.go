package sagachaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// victims are the processes the killer picks from, with their weights: the
// orchestrator most, since its death leaves sagas mid-step.
var victims = []struct {
	service string
	weight  int
}{{"orders", 4}, {"billing", 3}, {"playback", 3}}

// stableLife is how long a life must last for `marquee dev` to restart the
// process after its next death with its shortest backoff (internal/devrun
// restarts a process that keeps dying within 10 s of its start after a
// backoff doubling up to 5 s). The killer alternates short lives with
// lives longer than this, so a killed process is back within a fraction
// of a second and the system keeps doing work between the faults.
const stableLife = 10*time.Second + 500*time.Millisecond

type kill struct {
	at      time.Time
	service string
	pid     int
	// life is how long the process had been ready.
	life time.Duration
}

type kills struct {
	mu   sync.Mutex
	list []kill
}

func (k *kills) add(x kill) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.list = append(k.list, x)
}

func (k *kills) total() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.list)
}

func (k *kills) summary() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	by := map[string]int{}
	short := 0
	for _, x := range k.list {
		by[x.service]++
		if x.life < stableLife {
			short++
		}
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, by[n])
	}
	span := ""
	if len(k.list) > 1 {
		span = fmt.Sprintf(", one every %.1fs", k.list[len(k.list)-1].at.Sub(k.list[0].at).Seconds()/float64(len(k.list)-1))
	}
	return fmt.Sprintf("%d SIGKILLs (%s; %d within seconds of a restart%s)", len(k.list), strings.Join(parts, ", "), short, span)
}

// life is what the killer knows of one service's current process.
type life struct {
	pid     int
	readyAt time.Time     // zero until seen ready
	dies    time.Duration // after readyAt
	// shorts counts the short lives in a row before this one.
	shorts int
}

// maxShorts is how many short lives in a row a service may have: the
// supervisor's restart backoff then grows to 400 ms at most.
const maxShorts = 2

// killLoop wakes every killMin-killMax and sends SIGKILL to one of orders,
// billing and playback (drawn by weight among those due) until ctx ends;
// the supervisor restarts it. A process is due once it has been ready for
// the life drawn for it: half the time a few hundred milliseconds to three
// seconds (a crash while it recovers, resuming sagas), otherwise longer
// than stableLife, and never more than maxShorts short lives in a row.
func (r *run) killLoop(ctx context.Context, rng *rand.Rand) {
	lives := map[string]*life{}
	for {
		d := r.cfg.killMin + time.Duration(rng.Int64N(int64(r.cfg.killMax-r.cfg.killMin)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		now := time.Now()
		total := 0
		var due []int
		for i, v := range victims {
			pids := r.sys.PIDs(v.service)
			l := lives[v.service]
			if l == nil {
				l = &life{}
				lives[v.service] = l
			}
			if len(pids) == 0 {
				continue
			}
			if pids[0] != l.pid {
				shorts := 0
				if l.pid != 0 && l.dies < stableLife {
					shorts = l.shorts + 1
				}
				*l = life{pid: pids[0], shorts: shorts}
				l.dies = stableLife + time.Duration(rng.Int64N(int64(4*time.Second)))
				if shorts < maxShorts && rng.IntN(2) == 0 {
					l.dies = 300*time.Millisecond + time.Duration(rng.Int64N(int64(2700*time.Millisecond)))
				}
			}
			if l.readyAt.IsZero() {
				if r.sys.Ready(ctx, v.service) {
					l.readyAt = now
				}
				continue
			}
			if now.Sub(l.readyAt) >= l.dies {
				due = append(due, i)
				total += v.weight
			}
		}
		if len(due) == 0 {
			continue
		}
		x := rng.IntN(total)
		pick := due[0]
		for _, i := range due {
			if x < victims[i].weight {
				pick = i
				break
			}
			x -= victims[i].weight
		}
		svc := victims[pick].service
		l := lives[svc]
		pid, err := r.sys.Kill(svc)
		if err != nil {
			r.t.Errorf("kill %s: %v", svc, err)
			return
		}
		if pid != 0 {
			r.kills.add(kill{at: now, service: svc, pid: pid, life: now.Sub(l.readyAt)})
		}
	}
}
