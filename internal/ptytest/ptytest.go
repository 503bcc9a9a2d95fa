// Package ptytest opens pseudo-terminals for tests that check what a
// person at a terminal sees, with x/sys only (no cgo, no extra module).
package ptytest

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Open opens a pseudo-terminal pair (posix_openpt, unlockpt, ptsname);
// the test closes both ends at its end.
func Open(t testing.TB) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// Reader collects what the terminal shows and lets a test wait for a
// piece of it.
type Reader struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
	done bool
}

// Read reads what the master end shows, until it closes.
func Read(m *os.File) *Reader {
	r := &Reader{}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := m.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			if err != nil {
				r.done = true
			}
			r.cond.Broadcast()
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

// WaitFor blocks until the terminal has shown s (or the pty closed) and
// returns everything shown so far.
func (r *Reader) WaitFor(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !strings.Contains(r.buf.String(), s) && !r.done {
		r.cond.Wait()
	}
	return r.buf.String()
}
