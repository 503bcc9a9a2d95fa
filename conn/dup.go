package conn

import (
	"net/netip"

	"tcptracer/event"
)

// The same bytes are often observed twice: on lo every segment passes TC
// egress and then TC ingress; on other interfaces TC egress sees what the
// stack sent and the transmit hook what the driver was handed. The first
// sighting waits in a small set-associative table for the later one; the
// table is fixed-size so it never allocates, and a full bucket forgets its
// oldest entry (a twin that never came).
//
// A GSO super-packet that the kernel cut in software after TC reaches the
// later point as pieces of GSOSize bytes, in order: PSH and FIN only on the
// last piece, CWR only on the first (tcp_gso_segment). Its entry then walks
// along the pieces: each matched piece moves it to where the next one
// starts, until the last piece frees it.
const (
	twinBuckets = 256 // power of two
	twinWays    = 8
)

type twinKey struct {
	ifindex      uint32
	saddr, daddr netip.Addr
	sport, dport uint16
	seq, ack     uint32
}

type twinEntry struct {
	key     twinKey
	index   uint64 // Index of the first sighting; 0 = free slot
	len     uint32 // bytes from key.seq on still to be seen
	flags   uint16 // the first sighting's flags
	gsoSize uint16
	split   bool // a piece was matched already
}

type twinTable struct {
	b [twinBuckets][twinWays]twinEntry
}

func twinKeyOf(ev *event.Event) twinKey {
	return twinKey{ifindex: ev.Ifindex, saddr: ev.Saddr, daddr: ev.Daddr, sport: ev.Sport, dport: ev.Dport,
		seq: ev.Seq, ack: ev.Ack}
}

// hash mixes the fields that vary between segments; addresses rarely do
// on one interface, so they are left to the full comparison.
// The bucket is the hash's low bits, so the mix must reach them: seqs a
// power of two apart (a burst of 32 KiB segments) once all fell in one
// bucket and pushed each other out (murmur3's finaliser spreads them).
func (k *twinKey) hash() uint32 {
	h := uint64(k.seq)<<32 | uint64(k.ack)
	h ^= (uint64(k.sport)<<16 | uint64(k.dport) | uint64(k.ifindex)<<32) * 0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h)
}

// expect records a first sighting whose twin is still to come.
func (d *twinTable) expect(ev *event.Event) {
	d.insert(twinEntry{key: twinKeyOf(ev), index: ev.Index, len: ev.Len, flags: ev.Flags, gsoSize: ev.GSOSize})
}

func (d *twinTable) insert(e twinEntry) {
	bucket := &d.b[e.key.hash()&(twinBuckets-1)]
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
	*slot = e
}

// take returns the Index of the first sighting that ev is the twin of, the
// whole segment or its next GSO piece, and 0 when there is none.
func (d *twinTable) take(ev *event.Event) uint64 {
	k := twinKeyOf(ev)
	bucket := &d.b[k.hash()&(twinBuckets-1)]
	var found *twinEntry
	for i := range bucket {
		e := &bucket[i]
		if e.index != 0 && e.key == k && e.fits(ev) && (found == nil || e.index < found.index) {
			found = e
		}
	}
	if found == nil {
		return 0
	}
	e := *found
	*found = twinEntry{}
	if ev.Len < e.len {
		e.key.seq += ev.Len
		e.len -= ev.Len
		e.split = true
		d.insert(e)
	}
	return e.index
}

// fits says whether ev is the whole of e's remaining bytes or the next
// piece the kernel's GSO cut from them, with the flags that piece gets.
func (e *twinEntry) fits(ev *event.Event) bool {
	last := ev.Len == e.len
	if !last && (e.gsoSize == 0 || ev.Len != uint32(e.gsoSize)) {
		return false
	}
	want := e.flags
	if e.split {
		want &^= event.CWR
	}
	if !last {
		want &^= event.FIN | event.PSH
	}
	return ev.Flags == want
}
