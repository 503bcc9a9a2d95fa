package echo

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServer runs Serve on an ephemeral loopback port and returns its
// address and a stop function that reports Serve's result.
func startServer(t *testing.T) (string, func() error) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			return errors.New("Serve did not return within 5s of cancel")
		}
	})
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

func TestClientRoundTrip(t *testing.T) {
	addr, stop := startServer(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB, several segments
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"AB", []byte("AB")},
		{"one byte", []byte{0}},
		{"64KiB", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := Client(ctx, addr, tc.payload)
			if err != nil {
				t.Fatalf("Client: %v", err)
			}
			if !bytes.Equal(got, tc.payload) {
				t.Fatalf("echo differs: got %d bytes %q..., want %d bytes", len(got), head(got), len(tc.payload))
			}
		})
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestConcurrentClients(t *testing.T) {
	addr, stop := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			p := []byte(strings.Repeat(string(rune('a'+i)), i+1))
			got, err := Client(ctx, addr, p)
			if err == nil && !bytes.Equal(got, p) {
				err = errors.New("echo of " + string(p) + " was " + string(got))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// An idle client must not keep Serve (or its handler goroutine) alive after
// cancel.
func TestServeStopsWithIdleConnection(t *testing.T) {
	before := runtime.NumGoroutine()
	addr, stop := startServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("echo of x: %q, %v", buf, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); n != 0 || err == nil {
		t.Fatalf("read after server stop: n=%d err=%v, want closed connection", n, err)
	}
	waitGoroutines(t, before)
}

func TestServeReturnsAcceptError(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), ln) }()
	ln.Close() // not through ctx: Serve must report it
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v, want an error wrapping net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its listener closed")
	}
}

func TestClientHonoursContext(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts and never answers
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Client(ctx, ln.Addr().String(), []byte("AB"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Client = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Client took %v after a 200ms deadline", d)
	}
}

func TestClientRejectsExtraBytes(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 2)
		c.Read(buf)
		c.Write([]byte("ABC"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := Client(ctx, ln.Addr().String(), []byte("AB"))
	if err == nil || !strings.Contains(err.Error(), "more than the payload") {
		t.Fatalf("Client = %q, %v; want an error about extra bytes", got, err)
	}
}

func TestClientWithUsesDialer(t *testing.T) {
	addr, _ := startServer(t)
	var used []string
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		used = append(used, network+" "+a)
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ClientWith(ctx, dial, addr, []byte("AB")); err != nil {
		t.Fatal(err)
	}
	if len(used) != 1 || used[0] != "tcp "+addr {
		t.Fatalf("dialer calls = %q, want one tcp %s", used, addr)
	}
}

func TestListenBadAddress(t *testing.T) {
	if _, err := Listen("127.0.0.1:99999"); err == nil || !strings.Contains(err.Error(), "listen on 127.0.0.1:99999") {
		t.Fatalf("Listen = %v, want an error naming the address", err)
	}
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
