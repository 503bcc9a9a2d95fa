package conn

import "net/netip"

// On lo every segment passes TC twice, egress then ingress, on the same
// ifindex. Recent egress observations wait in a small set-associative table
// for their ingress twin; the table is fixed-size so it never allocates, and
// a full bucket forgets its oldest entry (a twin that never came).
const (
	dupBuckets = 256 // power of two
	dupWays    = 8
)

type dupKey struct {
	ifindex      uint32
	saddr, daddr netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        uint16
	len          uint32
}

type dupEntry struct {
	key   dupKey
	index uint64 // Index of the egress observation; 0 = free slot
}

type dupTable struct {
	b [dupBuckets][dupWays]dupEntry
}

// hash mixes the fields that vary between segments; addresses rarely do
// on one interface, so they are left to the full comparison.
func (k *dupKey) hash() uint32 {
	h := uint64(k.seq)<<32 | uint64(k.ack)
	h ^= uint64(k.sport)<<48 | uint64(k.dport)<<32 | uint64(k.len)
	h ^= uint64(k.flags)<<16 ^ uint64(k.ifindex)<<40
	h *= 0x9e3779b97f4a7c15
	return uint32(h >> 32)
}

func (d *dupTable) insert(k dupKey, index uint64) {
	bucket := &d.b[k.hash()&(dupBuckets-1)]
	slot := &bucket[0]
	for i := range bucket {
		if bucket[i].index == 0 {
			slot = &bucket[i]
			break
		}
		if bucket[i].index < slot.index {
			slot = &bucket[i]
		}
	}
	slot.key, slot.index = k, index
}

// take returns the Index of the oldest waiting egress observation equal to
// k and frees its slot, or 0 when there is none.
func (d *dupTable) take(k dupKey) uint64 {
	bucket := &d.b[k.hash()&(dupBuckets-1)]
	var found *dupEntry
	for i := range bucket {
		e := &bucket[i]
		if e.index != 0 && e.key == k && (found == nil || e.index < found.index) {
			found = e
		}
	}
	if found == nil {
		return 0
	}
	index := found.index
	*found = dupEntry{}
	return index
}
