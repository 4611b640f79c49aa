package postgres

// SetTokenCacheHooks sets c's test hooks before it is used: beforeInsert
// runs between a lookup in the database and the caching of its result;
// onEvent sees each listener event ("up", "notified", "down") once the cache
// has applied it.
func SetTokenCacheHooks(c *TokenCache, beforeInsert func(), onEvent func(string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.beforeInsert = beforeInsert
	c.onEvent = func(e listenEvent) { onEvent([...]string{"up", "notified", "down"}[e]) }
}
