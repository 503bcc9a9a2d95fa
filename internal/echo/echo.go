// Package echo is the reference scenario's echo server and client: the
// server sends back every byte it reads until EOF and then closes; the client
// sends a payload, reads the same number of bytes back and closes. Both sides
// use plain read/write calls (no splice, no extra writes) so the segments on
// the wire follow the application's writes as closely as TCP allows.
package echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DialFunc dials addr over network; net.Dialer.DialContext has this shape.
// A netns-aware dialer lets the client live in another network namespace.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Listen opens a TCP listener on addr, e.g. "127.0.0.1:20000" or
// "127.0.0.1:0" for an ephemeral port.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve accepts connections on ln and echoes each one until its peer closes.
// When ctx is done it closes ln and every open connection, waits for all its
// goroutines and returns nil. It returns the accept error if ln fails for any
// other reason. Serve always closes ln.
func Serve(ctx context.Context, ln net.Listener) error {
	s := &server{conns: map[net.Conn]struct{}{}}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.closeAll()
	})
	defer stop()
	err := s.acceptLoop(ln)
	ln.Close()
	s.closeAll()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
}

type server struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (s *server) acceptLoop(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		if !s.track(c) {
			c.Close()
			return net.ErrClosed
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			echoConn(c)
		})
	}
}

// track registers c so shutdown can close it; it refuses once shutdown began.
func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// echoConn writes back each read as one write, so a 2-byte read becomes a
// 2-byte reply. io.Copy is avoided because it would splice socket to socket.
func echoConn(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Client dials addr over TCP and runs one echo exchange; see ClientWith.
func Client(ctx context.Context, addr string, payload []byte) ([]byte, error) {
	var d net.Dialer
	return ClientWith(ctx, d.DialContext, addr, payload)
}

// ClientWith dials addr ("tcp") with dial, writes payload in one write, reads
// exactly len(payload) bytes of echo, then closes in the ordinary way: it
// shuts down its sending side (FIN), waits for the server's FIN (EOF) and
// closes. When it returns without error the whole session, including both
// FINs and the final ACK, has been sent. ctx bounds the whole exchange.
func ClientWith(ctx context.Context, dial DialFunc, addr string, payload []byte) ([]byte, error) {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	got, err := exchange(c, payload)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return got, err
}

func exchange(c net.Conn, payload []byte) ([]byte, error) {
	if _, err := c.Write(payload); err != nil {
		return nil, fmt.Errorf("write payload: %w", err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		return got, fmt.Errorf("read echo: %w", err)
	}
	if err := closeWrite(c); err != nil {
		return got, err
	}
	if err := waitEOF(c); err != nil {
		return got, err
	}
	if err := c.Close(); err != nil {
		return got, fmt.Errorf("close: %w", err)
	}
	return got, nil
}

func closeWrite(c net.Conn) error {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return nil // not TCP: Close alone will have to do
	}
	if err := cw.CloseWrite(); err != nil {
		return fmt.Errorf("shut down sending side: %w", err)
	}
	return nil
}

// waitEOF reads until the server closes; any byte past the echo is an error
// because the scenario expects exactly one reply.
func waitEOF(c net.Conn) error {
	var b [1]byte
	n, err := c.Read(b[:])
	switch {
	case n > 0:
		return errors.New("read after echo: server sent more than the payload")
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("wait for server close: %w", err)
	}
}
