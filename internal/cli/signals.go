package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
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

// isClosedPipe says whether err comes from writing to a reader that went
// away (tcptracer | head -1): a clean stop, not a failure.
func isClosedPipe(err error) bool { return errors.Is(err, syscall.EPIPE) }
