package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"tcptracer/event"
)

// Handler receives each event. The event is reused after HandleEvent
// returns; an error stops Run.
type Handler interface {
	HandleEvent(ev *event.Event) error
}

// Flusher is implemented by handlers that buffer output; Flush is called
// after every poll round and when Run returns.
type Flusher interface {
	Flush() error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ev *event.Event) error

func (f HandlerFunc) HandleEvent(ev *event.Event) error { return f(ev) }

// Start describes the running tracer (the start event's payload).
func (t *Tracer) Start() *event.Start {
	return &event.Start{
		Kernel:  kernelRelease(),
		Hooks:   t.hooks,
		Port:    t.opts.Port,
		PID:     t.opts.PID,
		Family:  t.opts.Family,
		Ifaces:  t.Ifaces(),
		Version: buildVersion(),
	}
}

// Run emits the start event, then every record until ctx is done; what the
// ring buffer still holds then is drained before Run returns. The kernel
// submits without wakeups, so Run polls every Options.Poll.
func (t *Tracer) Run(ctx context.Context, h Handler) error {
	rd, err := ringbuf.NewReader(t.events)
	if err != nil {
		return fmt.Errorf("open ring buffer reader: %w", err)
	}
	defer rd.Close()
	ev := &event.Event{Type: event.TypeStart, TS: monotonicNow(), Start: t.Start()}
	if err := h.HandleEvent(ev); err != nil {
		return err
	}
	for i := range t.sockets {
		t.snapshotEvent(&t.sockets[i], ev.TS, ev)
		if err := h.HandleEvent(ev); err != nil {
			return err
		}
	}
	dec := NewDecoder(t.ifaceName)
	dec.drops = t.drops
	var rec ringbuf.Record
	for {
		done := ctx.Err() != nil
		if err := t.poll(rd, &rec, dec, ev, h); err != nil {
			return err
		}
		if err := t.reportDrops(ev, h); err != nil {
			return err
		}
		if f, ok := h.(Flusher); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// poll hands over the records that arrive within one poll interval. Under
// sustained load the ring never empties, so the round also ends once the
// interval is over, to report drops and flush on time.
func (t *Tracer) poll(rd *ringbuf.Reader, rec *ringbuf.Record, dec *Decoder, ev *event.Event, h Handler) error {
	deadline := time.Now().Add(t.opts.Poll)
	rd.SetDeadline(deadline)
	for n := 1; ; n++ {
		if n%1024 == 0 && time.Now().After(deadline) {
			return nil
		}
		err := rd.ReadInto(rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read ring buffer: %w", err)
		}
		if err := dec.Decode(rec.RawSample, ev); err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		if err := t.lostBefore(dec.LostStamp(), h); err != nil {
			return err
		}
		if err := h.HandleEvent(ev); err != nil {
			return err
		}
	}
}

// lostBefore emits a lost event ahead of a record whose stamp says that
// reservations failed since the last record, so consumers learn of a gap
// where it is in the stream, not at the end of the poll round. The stamp
// holds the low 32 bits of the kernel's count.
func (t *Tracer) lostBefore(stamp uint32, h Handler) error {
	gap := stamp - uint32(t.lost)
	if gap == 0 || int32(gap) < 0 {
		return nil
	}
	t.lost += uint64(gap)
	t.lostEv = event.Event{Type: event.TypeLost, TS: monotonicNow(), Count: uint64(gap)}
	return h.HandleEvent(&t.lostEv)
}

// reportDrops emits a lost event for reservations that failed after the
// last record read (no later record carried their count).
// It also reports the runs of the tracing programs the kernel skipped:
// a tracepoint program is not run again on a CPU where it is already
// running (a softirq that transmits while the transmit hook runs in
// process context, say), and the records it would have written are lost.
func (t *Tracer) reportDrops(ev *event.Event, h Handler) error {
	c, err := t.Counters()
	if err != nil {
		return err
	}
	n := c.Lost - min(t.lost, c.Lost) + c.Missed - min(t.missed, c.Missed)
	t.lost, t.missed = max(t.lost, c.Lost), max(t.missed, c.Missed)
	if n == 0 {
		return nil
	}
	*ev = event.Event{Type: event.TypeLost, TS: monotonicNow(), Count: n}
	return h.HandleEvent(ev)
}

// Counts are the kernel side's running totals.
type Counts struct {
	Lost      uint64 // ring buffer reservations that failed
	Malformed uint64 // packets on a traced interface that did not parse as well-formed TCP
	// Missed counts runs of the tracing programs the kernel skipped
	// because the program was already running on that CPU (recursion
	// misses, Linux 5.12+): records that were never written.
	Missed uint64
}

// Counters reads the kernel side's running totals.
func (t *Tracer) Counters() (Counts, error) {
	var c tcptracerCounterSet
	if err := t.counts.Lookup(uint32(0), &c); err != nil {
		return Counts{}, fmt.Errorf("read counters: %w", err)
	}
	missed, err := t.recursionMisses()
	if err != nil {
		return Counts{}, err
	}
	return Counts{Lost: c.Lost, Malformed: c.Malformed, Missed: missed}, nil
}

// recursionMisses sums the skipped runs of every program but the TC
// classifiers (which the kernel always runs).
func (t *Tracer) recursionMisses() (uint64, error) {
	var n uint64
	for _, coll := range t.colls {
		for name, p := range coll.Programs {
			if name == "tc_ingress" || name == "tc_egress" {
				continue
			}
			st, err := p.Stats()
			if err != nil {
				return 0, fmt.Errorf("read stats of program %s: %w", name, err)
			}
			n += st.RecursionMisses
		}
	}
	return n, nil
}

func (t *Tracer) ifaceName(idx uint32) string {
	if n, ok := t.ifname[idx]; ok {
		return n
	}
	n := fmt.Sprintf("if%d", idx)
	t.ifname[idx] = n
	return n
}
