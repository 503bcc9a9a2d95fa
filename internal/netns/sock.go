package netns

import (
	"context"
	"fmt"
	"net"

	vnetns "github.com/vishvananda/netns"
)

// Do runs f inside ns; see the package-level Do.
func (p *Pair) Do(ns vnetns.NsHandle, f func() error) error { return Do(ns, f) }

// Listen opens a TCP listener on addr inside ns, e.g.
// p.Listen(p.B, "198.51.100.2:20000"). The listener stays in ns whichever
// goroutine later calls Accept.
func (p *Pair) Listen(ns vnetns.NsHandle, addr string) (net.Listener, error) {
	return Listen(ns, addr)
}

// Dial connects to addr over network from inside ns. addr must hold a
// literal IP: name resolution would run outside the namespace's thread.
func (p *Pair) Dial(ctx context.Context, ns vnetns.NsHandle, network, addr string) (net.Conn, error) {
	return Dial(ctx, ns, network, addr)
}

// Dialer returns a dial function that connects from inside ns; it fits
// echo.ClientWith.
func (p *Pair) Dialer(ns vnetns.NsHandle) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return Dial(ctx, ns, network, addr)
	}
}

// Listen opens a TCP listener on addr inside ns.
func Listen(ns vnetns.NsHandle, addr string) (net.Listener, error) {
	var ln net.Listener
	err := Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, ns, err)
	}
	return ln, nil
}

// Dial connects to addr over network from inside ns. The socket is created
// and connect(2) issued on the namespace's thread; only the wait for the
// handshake happens elsewhere, which does not matter to the socket.
func Dial(ctx context.Context, ns vnetns.NsHandle, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, addr, ns, err)
	}
	return c, nil
}
