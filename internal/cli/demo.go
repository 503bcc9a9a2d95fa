package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"tcptracer/event"
	"tcptracer/internal/echo"
	"tcptracer/tracer"
)

// How long the demo waits for each step before it gives up.
const demoStepTimeout = 10 * time.Second

// runDemo is the reference scenario with no setup: trace lo, run the echo
// server on 127.0.0.1:20000 and the client as a child process (so the
// connect event shows its own pid), stop once both sockets have closed.
func runDemo(ctx context.Context, in *invocation, env Env) error {
	o, err := traceOptions(in)
	if err != nil {
		return err
	}
	o.Port = 20000
	ro, err := reportOptions(in, env.Stdout)
	if err != nil {
		return err
	}
	ro.Stream = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newDemoWatch()
	p := newPipeline(env.Stdout, ro)
	p.watch = w.see
	t, err := tracer.New(o)
	if err != nil {
		return err
	}
	l := startLive(p, env)
	done := runTracer(ctx, t, p)
	err = demoSession(ctx, env, w)
	cancel()
	err = errors.Join(err, finishTrace(t, <-done, p))
	l.finish()
	return err
}

// demoSession serves one echo exchange and waits until the trace shows
// both ends closed and the listener gone.
func demoSession(ctx context.Context, env Env, w *demoWatch) error {
	if err := w.wait(ctx, w.started); err != nil {
		return fmt.Errorf("wait for the tracer to start: %w", err)
	}
	ln, err := echo.Listen(defaultEchoAddr)
	if err != nil {
		return fmt.Errorf("demo needs port 20000 free: %w", err)
	}
	srvCtx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- echo.Serve(srvCtx, ln) }()
	cmd := exec.CommandContext(ctx, env.Self, "echo-client", "--addr", defaultEchoAddr)
	cmd.Stdout, cmd.Stderr = env.Stderr, env.Stderr
	clientErr := cmd.Run()
	var closeErr error
	if clientErr == nil {
		closeErr = w.wait(ctx, w.closed)
	}
	stopServer()
	serveErr := <-served
	listenerErr := w.wait(ctx, w.listenerClosed)
	switch {
	case clientErr != nil:
		return fmt.Errorf("echo client: %w", clientErr)
	case closeErr != nil:
		return fmt.Errorf("wait for both sockets to close: %w", closeErr)
	case serveErr != nil:
		return fmt.Errorf("echo server: %w", serveErr)
	case listenerErr != nil:
		return fmt.Errorf("wait for the listener to close: %w", listenerErr)
	}
	return nil
}

// demoWatch follows the stream to know when each step has been traced.
type demoWatch struct {
	started, closed, listenerClosed chan struct{}
	closes                          int
}

func newDemoWatch() *demoWatch {
	return &demoWatch{started: make(chan struct{}), closed: make(chan struct{}), listenerClosed: make(chan struct{})}
}

func (w *demoWatch) see(ev *event.Event) {
	switch {
	case ev.Type == event.TypeStart:
		close(w.started)
	case ev.Type != event.TypeState || ev.NewState != event.ParseState("CLOSE"):
	case ev.OldState == event.ParseState("LISTEN"):
		closeOnce(w.listenerClosed)
	case ev.Conn != 0:
		if w.closes++; w.closes == 2 {
			close(w.closed)
		}
	}
}

func (w *demoWatch) wait(ctx context.Context, c chan struct{}) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(demoStepTimeout):
		return fmt.Errorf("not traced within %v", demoStepTimeout)
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}
