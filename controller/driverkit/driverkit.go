// Package driverkit holds what every switch driver needs the same way:
// reconnect backoff with full jitter, a context-aware sleep, and an
// originate pacer (stdlib only).
package driverkit

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff returns the delay before reconnect attempt (0-based): uniform in
// [0, min(hi, lo·2^attempt)] ("full jitter").
func Backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if attempt < 30 {
		if x := lo << attempt; x > 0 && x < hi {
			d = x
		}
	}
	return rand.N(d + 1)
}

// SleepCtx waits d; false if ctx ended first.
func SleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Pacer spaces originates at least Interval apart (0: no pacing).
type Pacer struct {
	Interval time.Duration

	mu   sync.Mutex
	next time.Time
}

// Wait blocks until the caller's slot; ctx.Err() if ctx ends first.
func (p *Pacer) Wait(ctx context.Context) error {
	if p.Interval == 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.Interval)
	p.mu.Unlock()
	if d := slot.Sub(now); d > 0 && !SleepCtx(ctx, d) {
		return ctx.Err()
	}
	return nil
}
