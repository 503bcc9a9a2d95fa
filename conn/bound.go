package conn

import "unsafe"

// ConnectionBytes is what the tracker holds per connection: its record
// and its entries in the tuple, pending and cookie tables, a map slot
// counted twice for the load factor.
func ConnectionBytes() int64 {
	slot := func(kv uintptr) int64 { return 2 * int64(kv+1) }
	ptr := unsafe.Sizeof(&connection{})
	return int64(unsafe.Sizeof(connection{})) + slot(unsafe.Sizeof(tupleKey{})+ptr) +
		slot(unsafe.Sizeof(partialKey{})+ptr) + maxCookies*slot(8+ptr)
}

// Bound caps the connections kept so that they fit in bytes, within
// 1024 and MaxConns: beyond the cap the least recently active one is
// forgotten, as at MaxConns.
func (t *Tracker) Bound(bytes int64) {
	t.maxConns = int(min(max(bytes/ConnectionBytes(), 1024), MaxConns))
}
