package postgres

// SetCreateGroupHooks sets s's group-commit test hooks before s is used:
// enqueued sees the queue's length each time a creation joins it, hold
// runs in a writer before it takes a group, group sees each group
// transaction's size.
func SetCreateGroupHooks(s *Store, enqueued func(pending int), hold func(), group func(size int)) {
	s.creates.mu.Lock()
	defer s.creates.mu.Unlock()
	s.creates.hooks = createHooks{enqueued: enqueued, hold: hold, group: group}
}
