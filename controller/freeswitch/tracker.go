package freeswitch

import (
	"log/slog"
	"sync"

	"github.com/callgate/callgate/controller"
)

// tracker is the set of channels callgate originated on this switch and
// still expects events for. A call is registered before its originate is
// written, so none of its events can be missed, and forgotten when both its
// channel and its background job are finished: on CHANNEL_DESTROY once the
// BACKGROUND_JOB arrived, or on a failed BACKGROUND_JOB when no channel was
// ever seen (FreeSWITCH refused it before creating one). A failed job whose
// channel exists stays tracked until CHANNEL_DESTROY, because FreeSWITCH
// often reports the failure before the channel's HANGUP_COMPLETE.
type tracker struct {
	mu    sync.RWMutex
	calls map[controller.CallID]*trackedCall
	jobs  map[string]controller.CallID // Job-UUID → call
	reg   uint64                       // registration counter
}

type trackedCall struct {
	log       *slog.Logger // enriched once with call_id
	job       string
	jobDone   bool
	channel   bool // a channel event was seen
	destroyed bool
	reg       uint64 // when it was registered, in tracker.reg units
	absent    int    // consecutive channel listings without it
}

func newTracker() *tracker {
	return &tracker{calls: make(map[controller.CallID]*trackedCall), jobs: make(map[string]controller.CallID)}
}

// adopt registers a call whose channel already exists on the switch (Track
// after a restart): no job will report on it. A tracked call is left as is.
func (t *tracker) adopt(id controller.CallID, log *slog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.calls[id]; ok {
		return
	}
	t.reg++
	t.calls[id] = &trackedCall{log: log, jobDone: true, channel: true, reg: t.reg}
}

type addResult int

const (
	added addResult = iota
	addDuplicate
	addFull
)

// addNew registers a call about to be originated, unless it is already
// tracked or max (> 0) calls are.
func (t *tracker) addNew(id controller.CallID, log *slog.Logger, max int) addResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.calls[id]; ok {
		return addDuplicate
	}
	if max > 0 && len(t.calls) >= max {
		return addFull
	}
	t.reg++
	t.calls[id] = &trackedCall{log: log, reg: t.reg}
	return added
}

// remove forgets id (an originate that was never sent or was refused).
func (t *tracker) remove(id controller.CallID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(id)
}

func (t *tracker) removeLocked(id controller.CallID) {
	if c, ok := t.calls[id]; ok {
		if c.job != "" {
			delete(t.jobs, c.job)
		}
		delete(t.calls, id)
	}
}

// has reports whether the channel uuid is one of ours. Called by the event
// reader for every channel event, so it only takes the read lock (and the
// conversion does not allocate).
func (t *tracker) has(uuid []byte) bool {
	t.mu.RLock()
	_, ok := t.calls[controller.CallID(uuid)]
	t.mu.RUnlock()
	return ok
}

func (t *tracker) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.calls)
}

// setJob records the Job-UUID of id's originate, unless the job already
// finished (its event can overtake the bgapi reply).
func (t *tracker) setJob(id controller.CallID, job string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.calls[id]; ok && !c.jobDone && c.job == "" {
		c.job = job
		t.jobs[job] = id
	}
}

// channelEvent notes an event of id's channel. It returns the call's logger
// and false if id is not tracked.
func (t *tracker) channelEvent(id controller.CallID, destroyed bool) (*slog.Logger, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.calls[id]
	if !ok {
		return nil, false
	}
	c.channel = true
	if destroyed {
		c.destroyed = true
		if c.jobDone {
			t.removeLocked(id)
		}
	}
	return c.log, true
}

// resolveJob finds the call a BACKGROUND_JOB belongs to: by Job-UUID, else by
// the uuid in a +OK body, else by the origination_uuid in the job's
// arguments (needed when a -ERR job overtakes the bgapi reply).
func (t *tracker) resolveJob(j jobResult) (controller.CallID, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if id, ok := t.jobs[j.jobUUID]; ok && j.jobUUID != "" {
		return id, true
	}
	for _, u := range []string{j.bodyUUID, j.argUUID} {
		if u == "" {
			continue
		}
		if c, ok := t.calls[controller.CallID(u)]; ok && !c.jobDone {
			return controller.CallID(u), true
		}
	}
	return "", false
}

// jobFinished notes that id's BACKGROUND_JOB arrived and forgets the call if
// it is over. It returns the call's logger.
func (t *tracker) jobFinished(id controller.CallID, accepted bool) *slog.Logger {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.calls[id]
	if !ok {
		return nil
	}
	c.jobDone = true
	if c.job != "" {
		delete(t.jobs, c.job)
		c.job = ""
	}
	if c.destroyed || (!accepted && !c.channel) {
		t.removeLocked(id)
	}
	return c.log
}

// mark returns the registration counter, to be passed to prune.
func (t *tracker) mark() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.reg
}

// prune forgets calls the switch no longer lists in two consecutive
// channel listings, so a call whose CHANNEL_DESTROY or BACKGROUND_JOB was
// lost across a reconnect stops being tracked. Only calls registered before
// the listing was requested (reg <= before) and whose job finished or
// channel was destroyed are candidates: a fresh originate may not have a
// channel yet. It returns how many calls it forgot.
func (t *tracker) prune(listed map[string]bool, before uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, c := range t.calls {
		if listed[string(id)] {
			c.absent = 0
			continue
		}
		if c.reg > before || !(c.jobDone || c.destroyed) {
			continue
		}
		c.absent++
		if c.absent >= 2 {
			t.removeLocked(id)
			n++
		}
	}
	return n
}
