package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tcptracer/internal/netns"
)

// The soak's size; the VM guests run it smaller.
//
//	TCPTRACER_SOAK_CONNS     busy long-lived connections (default 300)
//	TCPTRACER_SOAK_DURATION  how long the traffic runs (default 60s)
//	TCPTRACER_SOAK_MEMORY    the tracer's --max-memory in MiB (default 32)
func soakSize(t *testing.T) (conns int, d time.Duration, memMiB int) {
	conns, d, memMiB = 300, 60*time.Second, 32
	if v := os.Getenv("TCPTRACER_SOAK_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("TCPTRACER_SOAK_CONNS=%q: want a positive number", v)
		}
		conns = n
	}
	if v := os.Getenv("TCPTRACER_SOAK_DURATION"); v != "" {
		x, err := time.ParseDuration(v)
		if err != nil || x <= 0 {
			t.Fatalf("TCPTRACER_SOAK_DURATION=%q: want a positive duration", v)
		}
		d = x
	}
	if v := os.Getenv("TCPTRACER_SOAK_MEMORY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 16 {
			t.Fatalf("TCPTRACER_SOAK_MEMORY=%q: want MiB, at least 16", v)
		}
		memMiB = n
	}
	return conns, d, memMiB
}

// rssSlack is what the process may hold beyond --max-memory, as the README
// states it: the Go runtime's heap headroom (32 MiB), the ring buffer
// (8 MiB by default), the binary and stacks.
const rssSlack = 64 << 20

// Hundreds of busy long-lived connections plus churn on loopback in a
// namespace of the test's own, traced with a small --max-memory: the
// tracer's peak RSS stays under the bound plus the stated slack, and the
// bound was reached (history was dropped or connections evicted), so it
// is what held the memory, not a light load.
func TestSoakMemory(t *testing.T) {
	requireRoot(t)
	conns, d, memMiB := soakSize(t)
	p, err := netns.NewPair("tcptr-soak")
	if err != nil {
		t.Fatalf("create namespaces: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	ln, err := p.Listen(p.A, "127.0.0.1:20000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoAll(ln)

	tr := startCLI(t, "cli", "--netns", filepath.Join(netns.RunDir, p.NameA), "--iface", "lo",
		"--attach", envMode("TCPTRACER_ATTACH"), "--tc", envMode("TCPTRACER_TC"),
		"--max-memory", fmt.Sprintf("%dM", memMiB))
	var tally soakTally
	done := make(chan struct{})
	go func() { tally.read(tr.out); close(done) }()

	var peak atomic.Int64
	stopSampling := sampleRSS(tr.cmd.Process.Pid, &peak)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	exchanges := soakTraffic(ctx, t, p, conns)
	hwm := procStatus(tr.cmd.Process.Pid, "VmHWM")
	stopSampling()

	tr.cmd.Process.Signal(syscall.SIGINT)
	<-done
	if code := tr.wait(t); code != 0 {
		t.Fatalf("tracer exit %d; stderr: %s", code, tr.stderr.String())
	}
	bound := int64(memMiB)<<20 + rssSlack
	t.Logf("%d connections and churn for %v: %d exchanges, %d lines, %d summaries with history dropped, %d evicted; RSS peak sampled %d MiB, VmHWM %d MiB, bound %d MiB",
		conns, d, exchanges, tally.lines, tally.dropped, tally.evicted, peak.Load()>>20, hwm>>20, bound>>20)
	if hwm <= 0 {
		t.Fatalf("no VmHWM read for the tracer")
	}
	if hwm > bound {
		t.Errorf("tracer peak RSS %d MiB, over --max-memory %d MiB plus %d MiB", hwm>>20, memMiB, rssSlack>>20)
	}
	if tally.dropped+tally.evicted == 0 {
		t.Errorf("no history dropped and nothing evicted: the load never reached --max-memory %dM", memMiB)
	}
}

// echoAll echoes every connection until ln closes.
func echoAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { io.Copy(c, c); c.Close() }()
	}
}

// soakTraffic runs conns long-lived connections, each echoing 100 bytes
// at a time, and one goroutine of short connections, until ctx ends; it
// returns the exchanges made.
func soakTraffic(ctx context.Context, t *testing.T, p *netns.Pair, conns int) int64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		c, err := p.Dial(ctx, p.A, "tcp", "127.0.0.1:20000")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); defer c.Close(); n.Add(pingPong(ctx, c, -1)) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			c, err := p.Dial(ctx, p.A, "tcp", "127.0.0.1:20000")
			if err != nil {
				continue
			}
			n.Add(pingPong(ctx, c, 3))
			c.Close()
		}
	}()
	wg.Wait()
	return n.Load()
}

// pingPong echoes 100 bytes rounds times (-1: until ctx ends).
func pingPong(ctx context.Context, c net.Conn, rounds int) int64 {
	buf := make([]byte, 100)
	var n int64
	for i := 0; i != rounds && ctx.Err() == nil; i++ {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(buf); err != nil {
			return n
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return n
		}
		n++
	}
	return n
}

// soakTally counts the tracer's output lines and what the bound did.
type soakTally struct{ lines, dropped, evicted int }

func (s *soakTally) read(r *bufio.Reader) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue // a long summary line: read the rest of it
		}
		if len(line) > 0 {
			s.count(string(line))
		}
		if err != nil {
			return
		}
		line = line[:0]
	}
}

func (s *soakTally) count(line string) {
	s.lines++
	if !strings.HasPrefix(line, `{"type":"summary"`) {
		return
	}
	if !strings.Contains(line, `"history_dropped":null`) {
		s.dropped++
	}
	if strings.Contains(line, `"end":"evicted"`) {
		s.evicted++
	}
}

// sampleRSS records the highest VmRSS of pid every 250 ms until stopped.
func sampleRSS(pid int, peak *atomic.Int64) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := procStatus(pid, "VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// procStatus reads one "kB" field of /proc/PID/status, in bytes (0 if absent).
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
