//go:build linux

package main

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// requestTimeout bounds each request; a request that takes longer counts
// as an error.
const requestTimeout = 10 * time.Second

// result is what one open-loop run measured over its window.
type result struct {
	lat      []time.Duration // from each request's due time to its answer, OK answers, sorted
	lag      []time.Duration // from each request's due time to its sending, sorted
	errors   int             // failed requests due in the window
	warmErrs int             // failed requests due in the warm-up
	firstErr string
	requests int // requests due in the window
	unsent   int // requests not sent because the run was stopped
}

// openLoop calls call at rate per second for warmup+dur, whatever the
// answers' latency: request i is due at start + i/rate and is sent then
// on a goroutine of its own, so a slow answer never delays the next
// request (no coordinated omission), and its latency counts from its due
// time. Only requests due after the warm-up are measured. atStart and
// atEnd run at the window's edges (for CPU readings).
func openLoop(ctx context.Context, call func(context.Context) error, rate int, warmup, dur time.Duration, atStart, atEnd func()) (*result, error) {
	nWarm := int(warmup.Seconds() * float64(rate))
	n := nWarm + int(dur.Seconds()*float64(rate))
	lat := make([]time.Duration, n-nWarm)
	lag := make([]time.Duration, n-nWarm)
	failed := make([]bool, n-nWarm)
	var warmErrs atomic.Int64
	var firstErr atomic.Value
	clk := newClock()
	start := clk.now() + int64(20*time.Millisecond)
	due := func(i int) int64 { return start + int64(i)*int64(time.Second)/int64(rate) }

	var wg sync.WaitGroup
	dispatched := make(chan int, 1)
	go func() {
		sent := 0
		defer func() { dispatched <- sent }()
		// Go's timers wake up to a millisecond late, which would be most of
		// the latency measured here: the schedule is kept by a thread of its
		// own sleeping in clock_nanosleep with the finest timer slack.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		restore := setTimerSlack(1)
		defer setTimerSlack(restore)
		for i := range n {
			d := due(i)
			sleepUntil(d)
			if ctx.Err() != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sentAt := clk.now()
				cctx, cancel := context.WithTimeout(ctx, requestTimeout)
				err := call(cctx)
				cancel()
				end := clk.now()
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
				}
				if i < nWarm {
					if err != nil {
						warmErrs.Add(1)
					}
					return
				}
				j := i - nWarm
				lat[j] = time.Duration(end - d)
				lag[j] = time.Duration(sentAt - d)
				failed[j] = err != nil
			}()
			sent++
		}
	}()

	sleepCtx(ctx, time.Duration(due(nWarm)-clk.now()))
	atStart()
	sleepCtx(ctx, time.Duration(due(n)-clk.now()))
	atEnd()
	sent := <-dispatched
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &result{requests: n - nWarm, warmErrs: int(warmErrs.Load()), unsent: n - sent}
	if s, ok := firstErr.Load().(string); ok {
		r.firstErr = s
	}
	for j := range lat {
		if failed[j] {
			r.errors++
			continue
		}
		r.lat = append(r.lat, lat[j])
	}
	r.lag = lag
	slices.Sort(r.lat)
	slices.Sort(r.lag)
	return r, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// percentile returns the q-th quantile (0 < q <= 1) of sorted values: the
// smallest value at least a fraction q of them are at or below.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Linux constants the syscall package does not name.
const (
	clockMonotonic  = 1  // CLOCK_MONOTONIC
	timerAbstime    = 1  // TIMER_ABSTIME
	prSetTimerSlack = 29 // PR_SET_TIMERSLACK
	prGetTimerSlack = 30 // PR_GET_TIMERSLACK
)

// clock reads CLOCK_MONOTONIC in nanoseconds. Go's monotonic time is the
// same clock, so after one reading of both, time.Since gives it without a
// system call.
type clock struct {
	base     time.Time
	baseMono int64
}

func newClock() clock {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return clock{base: time.Now(), baseMono: ts.Nano()}
}

func (c clock) now() int64 { return c.baseMono + int64(time.Since(c.base)) }

// sleepUntil sleeps the calling thread until CLOCK_MONOTONIC reads t.
func sleepUntil(t int64) {
	ts := syscall.NsecToTimespec(t)
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_CLOCK_NANOSLEEP, clockMonotonic, timerAbstime, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// setTimerSlack sets the calling thread's timer slack in nanoseconds and
// returns the previous one.
func setTimerSlack(ns uintptr) uintptr {
	old, _, _ := syscall.Syscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0)
	syscall.Syscall(syscall.SYS_PRCTL, prSetTimerSlack, ns, 0)
	return old
}
