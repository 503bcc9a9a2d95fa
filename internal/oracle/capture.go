package oracle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vnetns "github.com/vishvananda/netns"

	"tcptracer/internal/netns"
)

// StartTimeout bounds the wait for tcpdump's "listening on" line, and
// StopTimeout the drain before SIGINT and, again, the wait for tcpdump to
// exit. DrainInterval is the pause between two counter requests while
// draining. Slow emulated guests may need more.
var (
	StartTimeout  = 15 * time.Second
	StopTimeout   = 10 * time.Second
	DrainInterval = 20 * time.Millisecond
)

// Capture is a running tcpdump.
type Capture struct {
	cmd     *exec.Cmd
	pcap    bytes.Buffer // tcpdump's stdout; read only after exit
	stderr  *stderrWatch
	exited  chan struct{}
	waitErr error
	stopCtx func() bool
	stopped bool
	stats   Stats
}

// Stats holds tcpdump's counters. On lo the kernel counts each packet
// twice (out and in) while tcpdump keeps one copy, so Received is about
// twice Captured there.
type Stats struct {
	Captured, Received, DroppedKernel, DroppedIface uint64
}

// Start runs tcpdump on iface with a BPF filter (e.g. "tcp port 20000"; ""
// for all) and returns once tcpdump reports it is listening, so every packet
// sent after Start returns is captured. With a namespace handle, tcpdump runs
// inside that network namespace: it is started from a thread locked and
// switched into it (netns.Do), and a child inherits its creating thread's
// namespace, so neither nsenter nor /run/netns is needed. When ctx ends
// tcpdump is interrupted; call Stop in any case.
//
// Timestamps are kept to the nanosecond: tshark's findings read them, and
// on loopback the gaps they are compared with are a few microseconds.
//
// tcpdump writes classic pcap to a pipe (-w -), which avoids temporary files
// and the permission trouble tcpdump has writing after it drops privileges;
// -Z root keeps it from looking up its own "tcpdump" user, which a minimal
// guest lacks (it still needs a passwd entry for root).
func Start(ctx context.Context, iface, filter string, ns ...vnetns.NsHandle) (*Capture, error) {
	if len(ns) > 1 {
		return nil, fmt.Errorf("start tcpdump: %d namespaces given, want at most one", len(ns))
	}
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("find tcpdump (install Debian's tcpdump package): %w", err)
	}
	c := &Capture{stderr: newStderrWatch(), exited: make(chan struct{})}
	c.cmd = exec.Command(path, tcpdumpArgs(iface, filter)...)
	c.cmd.Stdout, c.cmd.Stderr = &c.pcap, c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	target := vnetns.None()
	if len(ns) == 1 {
		target = ns[0]
	}
	if err := netns.Do(target, c.cmd.Start); err != nil {
		return nil, fmt.Errorf("start tcpdump on %s: %w", iface, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	if err := c.waitListening(ctx, iface); err != nil {
		return nil, err
	}
	c.stopCtx = context.AfterFunc(ctx, c.interrupt)
	return c, nil
}

func tcpdumpArgs(iface, filter string) []string {
	args := []string{"-i", iface, "-w", "-", "-U", "-n", "-s", "128", "--immediate-mode", "-Z", "root",
		"--time-stamp-precision=nano"}
	if filter != "" {
		args = append(args, filter)
	}
	return args
}

func (c *Capture) waitListening(ctx context.Context, iface string) error {
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	var why string
	select {
	case <-c.stderr.listening:
		return nil
	case <-c.exited:
		return fmt.Errorf("start tcpdump on %s: exited before listening (%v): %s", iface, c.waitErr, c.stderr.text())
	case <-timer.C:
		why = fmt.Sprintf("no \"listening on\" within %v", StartTimeout)
	case <-ctx.Done():
		why = ctx.Err().Error()
	}
	c.cmd.Process.Kill()
	<-c.exited
	return fmt.Errorf("start tcpdump on %s: %s; stderr: %s", iface, why, c.stderr.text())
}

func (c *Capture) interrupt() { c.cmd.Process.Signal(os.Interrupt) }

// Stop lets tcpdump catch up, interrupts it, waits for it and decodes the
// capture. It returns the segments decoded even when it also returns an
// error; the error names a tcpdump failure, packets dropped by the kernel or
// interface, or a decoding problem.
//
// Catching up matters: on SIGINT tcpdump leaves at once, and packets still
// waiting in its ring buffer are lost (a session on lo that ends just before
// Stop would vanish whole). So Stop first asks tcpdump for its counters with
// SIGUSR1 until two answers DrainInterval apart agree: tcpdump has run in
// between and had nothing left to write.
func (c *Capture) Stop() ([]Segment, error) {
	if c.stopped {
		return nil, errors.New("stop tcpdump: already stopped")
	}
	c.stopped = true
	c.stopCtx()
	var errs []error
	if err := c.drain(); err != nil {
		errs = append(errs, err)
	}
	c.interrupt()
	if err := c.waitExit(); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	if c.waitErr != nil {
		errs = append(errs, fmt.Errorf("tcpdump: %w: %s", c.waitErr, c.stderr.text()))
	}
	c.stats = parseStats(c.stderr.text())
	if c.stats.DroppedKernel > 0 || c.stats.DroppedIface > 0 {
		errs = append(errs, fmt.Errorf("tcpdump: %d packets dropped by kernel, %d by interface", c.stats.DroppedKernel, c.stats.DroppedIface))
	}
	segs, err := ReadPcap(bytes.NewReader(c.pcap.Bytes()))
	if err != nil {
		errs = append(errs, fmt.Errorf("decode tcpdump output: %w", err))
	}
	return segs, errors.Join(errs...)
}

func (c *Capture) waitExit() error {
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case <-c.exited:
		return nil
	case <-timer.C:
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("stop tcpdump: no exit within %v of SIGINT; stderr: %s", StopTimeout, c.stderr.text())
	}
}

// Pcap returns the raw capture (classic pcap) after Stop, e.g. to keep it
// as a test artifact.
func (c *Capture) Pcap() []byte { return c.pcap.Bytes() }

// Stats returns tcpdump's closing counters after Stop.
func (c *Capture) Stats() Stats { return c.stats }

// Stderr returns what tcpdump printed so far.
func (c *Capture) Stderr() string { return c.stderr.text() }

// drain returns once tcpdump's counters hold still (see Stop), or at once if
// tcpdump has already exited.
func (c *Capture) drain() error {
	deadline := time.Now().Add(StopTimeout)
	var last Stats
	for n := 0; ; n++ {
		s, ok, err := c.requestStats(deadline)
		if !ok || err != nil {
			return err
		}
		if n > 0 && s == last {
			return nil
		}
		last = s
		time.Sleep(DrainInterval)
	}
}

// requestStats sends SIGUSR1 and waits for the one-line report it causes.
// ok is false if tcpdump exited first.
func (c *Capture) requestStats(deadline time.Time) (Stats, bool, error) {
	seen := len(infoLine.FindAllString(c.stderr.raw(), -1))
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return Stats{}, false, nil // already exited
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if lines := infoLine.FindAllString(c.stderr.raw(), -1); len(lines) > seen {
			return parseStats(lines[len(lines)-1]), true, nil
		}
		select {
		case <-c.stderr.changed:
		case <-c.exited:
			return Stats{}, false, nil
		case <-timer.C:
			return Stats{}, false, fmt.Errorf("drain tcpdump: no answer to SIGUSR1 within %v; stderr: %q", StopTimeout, c.stderr.text())
		}
	}
}

var listeningLine = regexp.MustCompile(`(?m)^tcpdump: listening on [^\n]*\n`)

// infoLine is tcpdump's answer to SIGUSR1; the report at exit spreads the
// same counters over several lines.
var infoLine = regexp.MustCompile(`(?m)^tcpdump: \d+ packets? captured, [^\n]*\n`)

var statLine = regexp.MustCompile(`(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)`)

func parseStats(stderr string) Stats {
	var s Stats
	for _, m := range statLine.FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		switch m[2] {
		case "captured":
			s.Captured = n
		case "received by filter":
			s.Received = n
		case "dropped by kernel":
			s.DroppedKernel = n
		case "dropped by interface":
			s.DroppedIface = n
		}
	}
	return s
}

// stderrWatch keeps tcpdump's stderr and signals its "listening on" line.
type stderrWatch struct {
	mu        sync.Mutex
	buf       strings.Builder
	listening chan struct{}
	changed   chan struct{} // a token after each write
	once      sync.Once
}

func newStderrWatch() *stderrWatch {
	return &stderrWatch{listening: make(chan struct{}), changed: make(chan struct{}, 1)}
}

func (w *stderrWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	// The line arrives in several writes; tcpdump is in its capture loop
	// only after the last one.
	if listeningLine.MatchString(w.buf.String()) {
		w.once.Do(func() { close(w.listening) })
	}
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *stderrWatch) text() string { return strings.TrimSpace(w.raw()) }

func (w *stderrWatch) raw() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
