package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"tcptracer/event"
	"tcptracer/internal/oracle"
)

// wireEvent is one line of the tracer's JSON stream, read back as a user's
// script would: only the fields the wire tests look at. Fields of every
// event type share the struct; what a type lacks stays zero.
type wireEvent struct {
	Type    string     `json:"type"`
	TS      uint64     `json:"ts_ns"`
	Conn    *uint64    `json:"conn"`
	ID      uint64     `json:"id"`
	Iface   *string    `json:"iface"`
	Ifindex int        `json:"ifindex"`
	Dir     string     `json:"dir"`
	Saddr   netip.Addr `json:"saddr"`
	Sport   uint16     `json:"sport"`
	Daddr   netip.Addr `json:"daddr"`
	Dport   uint16     `json:"dport"`
	Seq     uint32     `json:"seq"`
	Ack     uint32     `json:"ack"`
	Flags   []string   `json:"flags"`
	Len     uint32     `json:"len"`
	Win     uint16     `json:"win"`

	// The wire contract's fields (issue 7). Wire is a pointer so a stream
	// from a tracer without the contract is told apart from wire:false.
	Point   string  `json:"point"`
	Wire    *bool   `json:"wire"`
	GSOSegs int     `json:"gso_segs"`
	GSOSize int     `json:"gso_size"`
	TwinOf  *uint64 `json:"twin_of"`

	OldState string `json:"old_state"` // state
	NewState string `json:"new_state"`
	Count    uint64 `json:"count"`   // lost
	Segment  uint64 `json:"segment"` // finding: the segment event's id
	Kind     string `json:"kind"`
}

func (e *wireEvent) flagBits() uint16 {
	var f uint16
	for _, n := range e.Flags {
		for i, name := range event.FlagNames {
			if n == name {
				f |= 1 << i
			}
		}
	}
	return f
}

func (e *wireEvent) key() oracle.Key {
	return oracle.Key{Saddr: e.Saddr, Sport: e.Sport, Daddr: e.Daddr, Dport: e.Dport,
		Seq: e.Seq, Ack: e.Ack, Flags: e.flagBits(), Len: e.Len}
}

func (e *wireEvent) isWire() bool { return e.Wire != nil && *e.Wire }

// String prints a segment event with what tells its observations apart.
func (e *wireEvent) String() string {
	w := "wire:absent"
	if e.Wire != nil {
		w = fmt.Sprintf("wire:%v", *e.Wire)
	}
	twin := "-"
	if e.TwinOf != nil {
		twin = fmt.Sprint(*e.TwinOf)
	}
	return fmt.Sprintf("#%d %s/%s %s gso %d×%d twin_of %s: %s", e.ID, orDash(e.Point), e.Dir, w, e.GSOSegs, e.GSOSize, twin, e.key())
}

// tracerCLI is the tcptracer command (this binary in the cli role) running
// in the background with --format json, its stream parsed as it arrives.
type tracerCLI struct {
	cmd    *exec.Cmd
	stderr lockedBuffer // read while the tracer runs
	exited chan struct{}
	err    error // cmd.Wait's, valid once exited is closed

	mu     sync.Mutex
	raw    bytes.Buffer // the stream as written, for artifacts
	events []wireEvent
	bad    error // the first line that did not parse
}

// startTracerCLI starts the command with args and returns once its start
// event arrived: every hook is attached then. It is stopped at cleanup if
// the test has not stopped it.
func startTracerCLI(t *testing.T, args ...string) *tracerCLI {
	t.Helper()
	p := &tracerCLI{exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), roleEnv+"=cli")
	p.cmd.Stderr = &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("tracer stdout: %v", err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start tcptracer %v: %v", args, err)
	}
	read := make(chan struct{})
	go func() { p.read(out); close(read) }()
	go func() { <-read; p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(t) })
	p.waitFor(t, "the tracer's start event", func(evs []wireEvent) bool {
		return len(evs) > 0 && evs[0].Type == "start"
	})
	return p
}

func (p *tracerCLI) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev wireEvent
		err := json.Unmarshal(sc.Bytes(), &ev)
		p.mu.Lock()
		p.raw.Write(sc.Bytes())
		p.raw.WriteByte('\n')
		if err == nil {
			p.events = append(p.events, ev)
		} else if p.bad == nil {
			p.bad = fmt.Errorf("stream line %d %q: %w", len(p.events)+1, sc.Text(), err)
		}
		p.mu.Unlock()
	}
}

func (p *tracerCLI) snapshot() []wireEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.events[:len(p.events):len(p.events)]
}

// waitFor polls the stream until ok holds, the tracer exits or waitTimeout
// passes. On failure, detail (if given) says what the stream holds.
func (p *tracerCLI) waitFor(t *testing.T, what string, ok func([]wireEvent) bool, detail ...func([]wireEvent) string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if ok(p.snapshot()) {
			return
		}
		select {
		case <-p.exited:
			if ok(p.snapshot()) {
				return
			}
			t.Fatalf("tracer exited (%v) while waiting for %s; stderr:\n%s", p.err, what, p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	evs := p.snapshot()
	var more string
	for _, d := range detail {
		more += "; " + d(evs)
	}
	t.Fatalf("timed out after %v waiting for %s; %d events so far%s; stderr:\n%s", waitTimeout, what, len(evs), more, p.stderr.String())
}

// stop interrupts the tracer as Ctrl-C would and waits for its report; it
// kills it if it does not exit in time. Safe to call twice.
func (p *tracerCLI) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("tracer: %v; stderr:\n%s", p.err, p.stderr.String())
		}
	case <-time.After(waitTimeout):
		p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("tracer still running %v after SIGINT, killed; stderr:\n%s", waitTimeout, p.stderr.String())
	}
	if p.bad != nil {
		t.Errorf("tracer wrote a line that is not JSON: %v", p.bad)
	}
}

// lockedBuffer is a bytes.Buffer that one goroutine may write while another
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
