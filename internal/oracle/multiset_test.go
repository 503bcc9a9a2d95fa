package oracle

import (
	"reflect"
	"testing"

	"tcptracer/event"
)

func TestMatchKeys(t *testing.T) {
	k := func(seq, l uint32) Key {
		return Key{Saddr: a4, Daddr: b4, Sport: 40000, Dport: 20000, Seq: seq, Ack: 1, Flags: event.ACK, Len: l}
	}
	for _, tc := range []struct {
		name  string
		a, b  []Key
		want  Match
		equal bool
	}{
		{name: "both empty", want: Match{AtoB: []int{}}, equal: true},
		{
			name: "same keys, other order",
			a:    []Key{k(1, 10), k(11, 10), k(21, 0)},
			b:    []Key{k(21, 0), k(1, 10), k(11, 10)},
			want: Match{AtoB: []int{1, 2, 0}}, equal: true,
		},
		{
			// A retransmission seen twice by one side and once by the other:
			// the later sighting is the one left over.
			name: "multiplicity differs",
			a:    []Key{k(1, 10), k(11, 10), k(1, 10)},
			b:    []Key{k(1, 10), k(11, 10)},
			want: Match{AtoB: []int{0, 1, -1}, OnlyA: []int{2}},
		},
		{
			// A super-packet on one side, its pieces on the other.
			name: "pieces against the whole",
			a:    []Key{k(1, 20), k(21, 0)},
			b:    []Key{k(1, 10), k(11, 10), k(21, 0)},
			want: Match{AtoB: []int{-1, 2}, OnlyA: []int{0}, OnlyB: []int{0, 1}},
		},
		{
			name: "flags alone differ",
			a:    []Key{k(1, 10)},
			b:    []Key{func() Key { x := k(1, 10); x.Flags |= event.PSH; return x }()},
			want: Match{AtoB: []int{-1}, OnlyA: []int{0}, OnlyB: []int{0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MatchKeys(tc.a, tc.b)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MatchKeys = %+v, want %+v", got, tc.want)
			}
			if got.Equal() != tc.equal {
				t.Errorf("Equal = %v, want %v", got.Equal(), tc.equal)
			}
		})
	}
}

func TestKeyString(t *testing.T) {
	s := Segment{Saddr: a6, Daddr: b6, Sport: 1, Dport: 2, Seq: 3, Ack: 4, Flags: event.PSH | event.ACK, Len: 5, Win: 9}
	if got, want := s.Key().String(), "[2001:db8::1]:1 > [2001:db8::2]:2 [PSH|ACK] seq 3 ack 4 len 5"; got != want {
		t.Errorf("Key.String = %q, want %q", got, want)
	}
	if got := Keys([]Segment{s, s}); len(got) != 2 || got[0] != s.Key() {
		t.Errorf("Keys = %v", got)
	}
}
