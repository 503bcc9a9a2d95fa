// Package cli implements the tcptracer command line: flag parsing,
// subcommands and the pipeline from tracer to output.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1 // a runtime error, or verify found a violation
	ExitUsage   = 2
)

// errUsage marks errors that come from bad command lines.
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string   { return e.msg }
func (e usageError) Is(t error) bool { return t == errUsage }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// Env is what a command may touch.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Self is the path of the tcptracer binary, for the demo's client.
	Self string
}

// Run runs the command line args (without the program name) and returns
// the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	err := dispatch(ctx, args, env)
	var ex exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case isClosedPipe(err):
		return ExitOK
	case errors.As(err, &ex):
		return ex.code
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.Stderr, "tcptracer: %v\nRun 'tcptracer help' for usage.\n", err)
		return ExitUsage
	default:
		fmt.Fprintf(env.Stderr, "tcptracer: %v\n", err)
		return ExitFailure
	}
}

// exitError ends a command with a code and nothing more to print.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func dispatch(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return runDemo(ctx, args[1:], env)
		case "verify":
			return runVerify(ctx, args[1:], env)
		case "analyze":
			return runAnalyze(ctx, args[1:], env)
		case "echo-server":
			return runEchoServer(ctx, args[1:], env)
		case "echo-client":
			return runEchoClient(ctx, args[1:], env)
		case "cleanup":
			return runCleanup(ctx, args[1:], env)
		case "help", "-h", "-help", "--help":
			fmt.Fprint(env.Stdout, usageText)
			return nil
		}
	}
	return runTrace(ctx, args, env)
}

const usageText = `tcptracer: trace TCP connections with eBPF, one JSON object per event

Usage:
  tcptracer [flags]                   trace until SIGINT/SIGTERM or --duration
  tcptracer verify [flags] [--expect E]... [-- COMMAND ARGS...]
                                      trace (while COMMAND runs); exit 0 only if every
                                      connection's verdict is ok and every E holds
  tcptracer analyze [--format F] [--expect E]... FILE|-
                                      rebuild timelines, findings and verdicts offline from
                                      a saved JSON stream or a pcap/pcapng capture
  tcptracer demo [flags]              trace the echo scenario on 127.0.0.1:20000 and exit
  tcptracer echo-server [--addr A]    echo server (default 127.0.0.1:20000)
  tcptracer echo-client [--addr A] [--payload P] [--timeout D]
                                      connect, send P (default AB), read the echo, close
  tcptracer cleanup [--apply] [--netns PATH]
                                      list the clsact filters killed tracers left; --apply removes them
  tcptracer help                      this text

Tracing flags:
  --port N          TCP port to trace, either end (default 20000; 0 = every port)
  --iface NAME      interface for TC, repeatable or comma-separated
                    (default: every interface that is up)
  --pid P           only connections owned by process P
  -4, -6            only IPv4 or only IPv6
  --duration D      stop after D (e.g. 10s, 1m); default: until a signal
  --attach MODE     function hooks: auto, fentry, kprobe or tracepoint (default auto)
  --tc MODE         TC attachment: auto, tcx or clsact (default auto)
  --netns PATH      attach TC in this network namespace (e.g. /run/netns/NAME)
  --ring-size SIZE  ring buffer size, power of two (default 8M)
  --format F        json (events and report lines) or text (ladder diagrams);
                    default json, text for verify
  --verbose         full verifier log on load errors
  --write FILE      also write the wire segments to FILE as pcapng: the kernel's own IP and
                    TCP header bytes (no payload), a comment per packet with the connection,
                    owner, findings and violations; - for stdout (then no JSON is written)
  --write-size SIZE start a new file when one holds SIZE bytes (tcpdump -C); FILE.N.pcapng
  --write-every D   start a new file every D (tcpdump -G)
  --write-files N   with rotation, reuse N file names in a ring (tcpdump -W)

verify also takes --expect E (e.g. no-retransmissions, handshake-rtt<5ms) and
--grace D (how long to wait after COMMAND for its connections to close, 2s).

Run as root (CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN). Output schema: README.md.
`
