// Package e2e holds the privileged end-to-end tests: the tracer on the real
// kernel, the reference echo session over loopback and over a veth pair,
// checked against tcpdump, and the cleanup after exit. Run as root; with CI
// set they fail instead of skipping when not root.
//
// Environment:
//
//	TCPTRACER_ATTACH  force the function hook mode (fentry, kprobe, tracepoint)
//	TCPTRACER_TC      force the TC mode (tcx, clsact)
//	TCPTRACER_ORACLE  "off" skips the tcpdump comparison (for guests without tcpdump)
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"

	"tcptracer/internal/cli"
	"tcptracer/internal/echo"
	"tcptracer/internal/netns"
)

// The test binary doubles as the echo client and as the tcptracer command,
// so the client has a pid of its own and the CLI can be signalled, without
// needing other binaries in a VM guest.
const roleEnv = "TCPTRACER_E2E_ROLE"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "e2e-client" { // a command for verify to run
		os.Exit(runClient())
	}
	if len(os.Args) > 1 && os.Args[1] == "e2e-client-whoami" { // the same, saying who it runs as
		os.Exit(whoami(os.Stderr))
	}
	switch os.Getenv(roleEnv) {
	case "client":
		os.Exit(runClient())
	case "client-wait": // connect only once a line arrives on stdin
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(runClient())
	case "cli":
		self, _ := os.Executable()
		os.Exit(cli.Run(signalContext(), os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Self: self}))
	case "cli-panic": // the command, with an output that panics after the start line
		os.Exit(cli.Run(signalContext(), os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: &panicWriter{w: os.Stdout}, Stderr: os.Stderr}))
	}
	os.Exit(m.Run())
}

// runClient runs one echo exchange, inside TCPTRACER_E2E_NETNS if set.
func runClient() int {
	addr := os.Getenv("TCPTRACER_E2E_ADDR")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := echo.DialFunc(nil)
	if p := os.Getenv("TCPTRACER_E2E_NETNS"); p != "" {
		ns, err := vnetns.GetFromPath(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			return 1
		}
		defer ns.Close()
		dial = func(ctx context.Context, network, a string) (net.Conn, error) {
			return netns.Dial(ctx, ns, network, a)
		}
	}
	var err error
	if dial == nil {
		_, err = echo.Client(ctx, addr, []byte("AB"))
	} else {
		_, err = echo.ClientWith(ctx, dial, addr, []byte("AB"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	return 0
}

// panicWriter passes the first write on and panics at the second: a bug
// in the output path, in the middle of a trace.
type panicWriter struct {
	w      io.Writer
	writes int
}

func (p *panicWriter) Write(b []byte) (int, error) {
	if p.writes++; p.writes > 1 {
		panic("test: output failed")
	}
	return p.w.Write(b)
}

// whoami writes the process's effective capabilities and uid, then runs
// the echo exchange: verify --user's test checks what CMD ran as.
func whoami(w io.Writer) int {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(w, "whoami:", err)
		return 1
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintf(w, "uid %d\n", os.Getuid())
	return runClient()
}

func signalContext() context.Context {
	ctx, _ := cli.SignalContext(context.Background())
	return ctx
}
