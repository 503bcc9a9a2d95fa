package oracle

import (
	"fmt"
	"net/netip"

	"tcptracer/event"
)

// Key is what the wire contract compares a segment on: two sightings with
// equal keys are the same packet as far as an oracle can tell.
type Key struct {
	Saddr, Daddr netip.Addr
	Sport, Dport uint16
	Seq, Ack     uint32
	Flags        uint16
	Len          uint32
}

// Key returns the segment's comparison key.
func (s Segment) Key() Key {
	return Key{Saddr: s.Saddr, Daddr: s.Daddr, Sport: s.Sport, Dport: s.Dport,
		Seq: s.Seq, Ack: s.Ack, Flags: s.Flags, Len: s.Len}
}

func (k Key) String() string {
	return fmt.Sprintf("%s > %s [%s] seq %d ack %d len %d",
		netip.AddrPortFrom(k.Saddr, k.Sport), netip.AddrPortFrom(k.Daddr, k.Dport),
		event.Flags(k.Flags), k.Seq, k.Ack, k.Len)
}

// Match is the outcome of comparing two sequences of keys as multisets.
// Occurrences of one key are paired in order (the first in a with the first
// in b, and so on), so when one side has more, the later ones are left over.
type Match struct {
	AtoB  []int // for each index in a, its partner in b, or -1
	OnlyA []int // indices in a without partner, ascending
	OnlyB []int // indices in b without partner, ascending
}

// Equal reports whether the two multisets are the same.
func (m Match) Equal() bool { return len(m.OnlyA) == 0 && len(m.OnlyB) == 0 }

// MatchKeys pairs a's keys with b's.
func MatchKeys(a, b []Key) Match {
	waiting := map[Key][]int{} // b's indices per key, in order
	for j, k := range b {
		waiting[k] = append(waiting[k], j)
	}
	m := Match{AtoB: make([]int, len(a))}
	used := make([]bool, len(b))
	for i, k := range a {
		q := waiting[k]
		if len(q) == 0 {
			m.AtoB[i] = -1
			m.OnlyA = append(m.OnlyA, i)
			continue
		}
		m.AtoB[i], used[q[0]] = q[0], true
		waiting[k] = q[1:]
	}
	for j, u := range used {
		if !u {
			m.OnlyB = append(m.OnlyB, j)
		}
	}
	return m
}

// Keys returns the keys of segs in order.
func Keys(segs []Segment) []Key {
	ks := make([]Key, len(segs))
	for i, s := range segs {
		ks[i] = s.Key()
	}
	return ks
}
