package echo

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBulkRoundTrip(t *testing.T) {
	addr, stop := startServer(t)
	var d net.Dialer
	for _, tc := range []struct {
		name         string
		total, chunk int
	}{
		{"8MiB in 256KiB writes", 8 << 20, 256 << 10},
		{"a short last write", 1<<20 + 17, 256 << 10},
		{"one byte", 1, 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := Bulk(ctx, d.DialContext, addr, tc.total, tc.chunk); err != nil {
				t.Fatalf("Bulk: %v", err)
			}
		})
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// fakeServer handles each connection with h, on an ephemeral port. At
// cleanup it closes the listener and every connection and waits for the
// handlers, so no goroutine outlives the test (other tests count them).
func fakeServer(t *testing.T, h func(net.Conn)) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { defer c.Close(); h(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestBulkErrors(t *testing.T) {
	corrupt := func(c net.Conn) { // flips byte 70000 of the echo
		buf := make([]byte, 4096)
		for off := 0; ; {
			n, err := c.Read(buf)
			if i := 70000 - off; i >= 0 && i < n {
				buf[i]++
			}
			c.Write(buf[:n])
			off += n
			if err != nil {
				return
			}
		}
	}
	short := func(c net.Conn) { // echoes 1000 bytes, sends FIN, drains the rest
		io.CopyN(c, c, 1000)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	}
	var d net.Dialer
	for _, tc := range []struct {
		name string
		h    func(net.Conn)
		want string
	}{
		{"corrupted echo", corrupt, "echo byte 70000 is"},
		{"echo cut short", short, "read echo at byte 1000 of 1048576: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.h)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := Bulk(ctx, d.DialContext, addr, 1<<20, 256<<10)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Bulk error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := Bulk(context.Background(), d.DialContext, "127.0.0.1:1", 0, 1); err == nil {
		t.Error("Bulk of 0 bytes: no error")
	}
	refused := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("refused") }
	if err := Bulk(context.Background(), refused, "127.0.0.1:1", 1, 1); err == nil || !strings.Contains(err.Error(), "dial") {
		t.Errorf("Bulk with a failing dialer: %v", err)
	}
}

// A server that stops reading stalls the transfer; the context ends it.
func TestBulkHonoursContext(t *testing.T) {
	quit := make(chan struct{})
	addr := fakeServer(t, func(net.Conn) { <-quit })
	t.Cleanup(func() { close(quit) }) // runs before fakeServer's wait
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var d net.Dialer
	err := Bulk(ctx, d.DialContext, addr, 64<<20, 256<<10)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Bulk error %v, want the context's deadline", err)
	}
}
