// Package tracer loads the eBPF programs, attaches them, reads the ring
// buffer and decodes its records into event.Event values.
package tracer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"tcptracer/event"
)

const (
	afInet  = 2
	afInet6 = 10
)

// Tracer owns every kernel object it created; Close releases them all.
type Tracer struct {
	opts   Options
	spec   *ebpf.CollectionSpec
	shared map[string]*ebpf.Map
	events *ebpf.Map // the ring buffer
	counts *ebpf.Map // failed reservations and malformed packets
	colls  []*ebpf.Collection
	links  []link.Link
	tc     *tcAttachment
	hooks  []event.Hook
	drops  *dropNames
	ifname map[uint32]string
	lost   uint64 // failed reservations reported so far
	missed uint64 // skipped tracing program runs reported so far
	lostEv event.Event
	closed bool
	// sockets is the snapshot at start (snapshot.go), emitted by Run.
	sockets []Socket
}

// New checks privileges and kernel support, loads the programs and attaches
// every hook. On error nothing stays attached.
func New(opts Options) (*Tracer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := checkPrivileges(); err != nil {
		return nil, err
	}
	if err := checkBTF(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	t := &Tracer{opts: opts, ifname: map[uint32]string{}}
	for _, step := range []func() error{t.loadSpec, t.loadMaps, t.attachSocketHooks, t.attachTC, t.attachXmit, t.attachDrops, t.snapshot} {
		if err := step(); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

func (t *Tracer) loadSpec() error {
	spec, err := loadTcptracer()
	if err != nil {
		return fmt.Errorf("parse embedded eBPF object: %w", err)
	}
	set := map[string]any{
		"filter_port":   t.opts.Port,
		"filter_pid":    t.opts.PID,
		"filter_family": t.opts.kernelFamily(),
		"jiffy_us":      jiffyMicros(),
	}
	for name, v := range set {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	spec.Maps["events"].MaxEntries = t.opts.RingSize
	t.spec = spec
	return nil
}

// loadMaps creates the maps once; every program group then shares them
// (all but the per-load .rodata, whose values depend on the group).
func (t *Tracer) loadMaps() error {
	spec := t.spec.Copy()
	spec.Programs = nil
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create maps: %w", err)
	}
	t.colls = append(t.colls, coll)
	t.shared = map[string]*ebpf.Map{}
	for name, m := range coll.Maps {
		if !strings.HasPrefix(name, ".") {
			t.shared[name] = m
		}
	}
	t.events, t.counts = t.shared["events"], t.shared["counters"]
	return nil
}

// loadPrograms loads the named programs (and nothing else) against the
// shared maps. The caller owns the collection.
func (t *Tracer) loadPrograms(names ...string) (*ebpf.Collection, error) {
	spec := t.spec.Copy()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for n := range spec.Programs {
		if !want[n] {
			delete(spec.Programs, n)
		}
	}
	opts := ebpf.CollectionOptions{MapReplacements: t.shared}
	if t.opts.Verbose {
		opts.Programs.LogLevel = ebpf.LogLevelBranch
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, opts)
	if err != nil {
		return nil, verifierError(err, t.opts.Verbose)
	}
	return coll, nil
}

// verifierError keeps the verifier's full log for --verbose and its last
// lines otherwise.
func verifierError(err error, verbose bool) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		if verbose {
			return fmt.Errorf("load programs: %+v", ve)
		}
		return fmt.Errorf("load programs: %v (run with --verbose for the full verifier log)", ve)
	}
	return fmt.Errorf("load programs: %w", err)
}

// Hooks reports how each hook was attached.
func (t *Tracer) Hooks() []event.Hook { return t.hooks }

// Ifaces names the interfaces TC is attached to.
func (t *Tracer) Ifaces() []string {
	if t.tc == nil {
		return nil
	}
	return t.tc.names()
}

// Swept reports what dead tracers had left in the namespace and this start
// removed (and in Err why that failed, which did not stop the start). It
// is nil when TC was not reached.
func (t *Tracer) Swept() *Cleanup {
	if t.tc == nil {
		return nil
	}
	return t.tc.swept
}

// Close detaches and releases everything this Tracer added, and nothing
// else: other tracers' and other tools' filters, and a clsact qdisc that
// was there before, stay. It is safe to call twice.
func (t *Tracer) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if t.tc != nil {
		errs = append(errs, t.tc.close())
	}
	for i := len(t.links) - 1; i >= 0; i-- {
		errs = append(errs, t.links[i].Close())
	}
	for i := len(t.colls) - 1; i >= 0; i-- {
		t.colls[i].Close()
	}
	return errors.Join(errs...)
}
