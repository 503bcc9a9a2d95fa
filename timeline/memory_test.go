package timeline_test

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"tcptracer/event"
	"tcptracer/timeline"
	tt "tcptracer/timeline/timelinetest"
)

// busy makes n connections that stay open while each sends rounds of
// data (every tenth round retransmitted), fed in interleaved order, then
// closes them all. Each builder annotates its own connection.
func busy(n, rounds int) []event.Event {
	bs := make([]*tt.Builder, n)
	var out []event.Event
	take := func(b *tt.Builder, from int) int {
		out = append(out, b.Events[from:]...)
		return len(b.Events)
	}
	seen := make([]int, n)
	for i := range bs {
		bs[i] = tt.New(fmt.Sprintf("192.0.2.1:%d", 30000+i), "192.0.2.2:20000")
		bs[i].Conn = uint64(i + 1)
		bs[i].Handshake()
		seen[i] = take(bs[i], 0)
	}
	for r := range rounds {
		for i, b := range bs {
			seq := uint32(1 + 100*r)
			b.Seg(tt.Client, "PA", seq, 1, 100)
			if r%10 == 9 {
				b.Seg(tt.Client, "PA", seq, 1, 100)
			}
			b.Seg(tt.Server, "A", 1, seq+100, 0)
			seen[i] = take(b, seen[i])
		}
	}
	for i, b := range bs {
		end := uint32(1 + 100*rounds)
		b.Seg(tt.Client, "FA", end, 1, 0).Seg(tt.Server, "FA", 1, end+1, 0).Seg(tt.Client, "A", end+1, 2, 0)
		b.State(tt.Client, "ESTABLISHED", "CLOSE").State(tt.Server, "ESTABLISHED", "CLOSE")
		take(b, seen[i])
	}
	return out
}

// summaries feeds evs and returns the summaries by connection (the last
// of each id) and all of them in order, checking after every event that
// the memory held stays under the bound.
func summaries(t *testing.T, o timeline.Options, evs []event.Event) (map[uint64]*timeline.Summary, []*timeline.Summary, int64) {
	t.Helper()
	tl := timeline.New(o)
	got := map[uint64]*timeline.Summary{}
	var all []*timeline.Summary
	var peak int64
	keep := func(cs []*timeline.Conn) {
		for _, c := range cs {
			got[c.ID] = c.Summary
			all = append(all, c.Summary)
		}
	}
	for i := range evs {
		keep(tl.Feed(&evs[i]).Ended)
		peak = max(peak, tl.Memory())
		if o.MaxMemory > 0 && tl.Memory() > o.MaxMemory {
			t.Fatalf("event %d: %d bytes held, bound %d", i, tl.Memory(), o.MaxMemory)
		}
	}
	keep(tl.Flush())
	return got, all, peak
}

// Under a bound far below what the history needs, the timeline drops the
// oldest history and says so, and every count in the summaries is the
// one an unbounded run gives.
func TestMaxMemoryKeepsCounts(t *testing.T) {
	evs := busy(50, 200)
	o := timeline.Options{MaxConns: 128, MaxSegments: 1 << 20, MaxMemory: 1 << 40}
	want, _, peak := summaries(t, o, evs)
	o.MaxMemory = timeline.New(o).Memory() + 1<<20
	if peak <= 4*o.MaxMemory {
		t.Fatalf("the unbounded run held only %d bytes: the test does not exercise the bound", peak)
	}
	got, _, _ := summaries(t, o, evs)
	if len(got) != len(want) {
		t.Fatalf("%d summaries, want %d", len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if g.Dropped.Segments == 0 || g.Dropped.States == 0 {
			t.Errorf("conn %d: dropped %+v, want segments and states dropped", id, g.Dropped)
		}
		if g.End != "closed" || w.End != "closed" {
			t.Errorf("conn %d: end %q (unbounded %q), want closed", id, g.End, w.End)
		}
		g2 := *g
		g2.Dropped = w.Dropped
		if !reflect.DeepEqual(&g2, w) {
			t.Errorf("conn %d: bounded summary differs:\n got  %+v\n want %+v", id, g, w)
		}
	}
}

// When the connections alone exceed the bound, the least recently active
// are ended as evicted; the bound still holds.
func TestMaxMemoryEvicts(t *testing.T) {
	evs := busy(100, 2)
	o := timeline.Options{MaxConns: 128}
	o.MaxMemory = timeline.New(o).Memory() + 20*timeline.ConnBytes()
	_, all, _ := summaries(t, o, evs)
	evicted := 0
	for _, s := range all {
		if s.End == "evicted" {
			evicted++
		}
	}
	if evicted == 0 {
		t.Fatalf("no connection evicted under a bound of %d bytes, 20 connections' worth", o.MaxMemory)
	}
}

// The bytes the bound counts are the bytes the heap holds: the figures
// from unsafe.Sizeof and slice capacities are not an underestimate.
func TestMemoryAccountingHonest(t *testing.T) {
	evs := busy(200, 50)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tl := timeline.New(timeline.Options{MaxMemory: 1 << 40})
	for i := range evs[:len(evs)-200*8] { // stop before the closes: all held
		tl.Feed(&evs[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	acc := tl.Memory()
	t.Logf("segment %d B, state change %d B, connection %d B; %d conns held: accounted %d B, heap grew %d B",
		timeline.SegmentBytes, timeline.StateBytes, timeline.ConnBytes(), tl.Len(), acc, heap)
	if float64(heap) > 1.15*float64(acc) {
		t.Fatalf("heap grew %d B, the bound counted %d B", heap, acc)
	}
	runtime.KeepAlive(tl)
	runtime.KeepAlive(evs)
}
