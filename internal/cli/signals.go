package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// StopSignals each ask a trace to stop: it detaches, reports and exits 0.
// SIGQUIT included: its default, a goroutine dump, would leave clsact
// filters behind.
var StopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// SignalContext is done at the first of StopSignals. It also takes SIGPIPE
// away from the runtime, which would otherwise kill the process on a write
// to a closed stdout before it detaches: the write fails with EPIPE
// instead, which ends the command cleanly (see isClosedPipe). Notify rather
// than Ignore, so commands verify runs do not inherit an ignored SIGPIPE.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	return signal.NotifyContext(parent, StopSignals...)
}

// isClosedPipe says whether err comes from writing to a file (stdout) whose
// reader went away (tcptracer | head -1): a clean stop, not a failure. A
// socket's EPIPE (a TCP peer gone, in echo-client) comes as a net.OpError
// and stays a failure.
func isClosedPipe(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && errors.Is(pe.Err, syscall.EPIPE)
}

// stopWhenReaderGone ends ctx once nobody reads stdout any more (a pipe or
// socket whose other end closed), so `tcptracer | head -1` stops on a quiet
// port too, where no next write would fail with EPIPE. It checks a few
// times a second until ctx ends.
func stopWhenReaderGone(ctx context.Context, w io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	fd, ok := pipeFD(w)
	if !ok {
		return ctx, cancel
	}
	go func() {
		for ctx.Err() == nil {
			fds := []unix.PollFd{{Fd: fd}} // no events asked: only POLLERR and POLLHUP come back
			n, err := unix.Poll(fds, 200)
			if err == nil && n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				cancel()
			}
		}
	}()
	return ctx, cancel
}

// pipeFD returns the descriptor behind w if w is a pipe or a socket.
func pipeFD(w io.Writer) (int32, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return 0, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var fd int32
	if rc.Control(func(d uintptr) { fd = int32(d) }) != nil {
		return 0, false
	}
	return fd, true
}
