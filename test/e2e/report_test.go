package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"tcptracer/internal/cli"
	"tcptracer/internal/echo"
)

// serveEcho runs the echo server on 127.0.0.1:20000 for the test.
func serveEcho(t *testing.T) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", echoPort)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- echo.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("echo server: %v", err)
		}
	})
	return addr
}

// runCLI runs the tcptracer command (this binary in the cli role).
func runCLI(t *testing.T, addr string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"=cli", "TCPTRACER_E2E_ADDR="+addr)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run tcptracer %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func modeArgs() []string {
	return []string{"--iface", "lo", "--attach", envMode("TCPTRACER_ATTACH"), "--tc", envMode("TCPTRACER_TC")}
}

// verify prints the session's ladder and an ok verdict, and exits 0.
func TestVerifyEcho(t *testing.T) {
	requireRoot(t)
	addr := serveEcho(t)
	args := append([]string{"verify"}, modeArgs()...)
	out, errOut, code := runCLI(t, addr, append(args, "--", os.Args[0], "e2e-client")...)
	if code != 0 {
		t.Fatalf("verify exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"[SYN] Seq=0 Len=0", "[SYN, ACK] Seq=0 Ack=1 Len=0", "[ACK] Seq=1 Ack=1 Len=0",
		"[PSH, ACK] Seq=1 Ack=1 Len=2", "Seq=3 Ack=4", "verdict: ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "all ok") {
		t.Errorf("verify stderr lacks its conclusion: %s", errOut)
	}
}

// An expectation that cannot hold makes verify exit 1 and name it.
func TestVerifyExpectationFails(t *testing.T) {
	requireRoot(t)
	addr := serveEcho(t)
	args := append([]string{"verify", "--expect", "handshake-rtt<1ns"}, modeArgs()...)
	out, errOut, code := runCLI(t, addr, append(args, "--", os.Args[0], "e2e-client")...)
	if code != 1 || !strings.Contains(errOut, "handshake-rtt<1ns") {
		t.Fatalf("verify exit %d, stderr %q; want 1 naming the expectation\nstdout:\n%s", code, errOut, out)
	}
}

// A live JSON stream, saved and analysed offline, gives the same report.
func TestAnalyzeRoundTrip(t *testing.T) {
	requireRoot(t)
	addr := serveEcho(t)
	args := append([]string{"verify", "--format", "json"}, modeArgs()...)
	live, errOut, code := runCLI(t, addr, append(args, "--", os.Args[0], "e2e-client")...)
	if code != 0 {
		t.Fatalf("live run exit %d: %s", code, errOut)
	}
	saved := t.TempDir() + "/live.json"
	if err := os.WriteFile(saved, []byte(live), 0o644); err != nil {
		t.Fatal(err)
	}
	var offline, stderr bytes.Buffer
	if c := cli.Run(context.Background(), []string{"analyze", saved}, cli.Env{Stdout: &offline, Stderr: &stderr}); c != 0 {
		t.Fatalf("analyze exit %d: %s", c, stderr.String())
	}
	want := reportLines(live)
	if len(want) == 0 || !strings.Contains(strings.Join(want, "\n"), `"type":"summary"`) {
		t.Fatalf("the live stream has no summary line:\n%s", live)
	}
	if got := reportLines(offline.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("analyze differs from the live report\nlive:\n%s\nanalyze:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	t.Logf("round trip: %d report lines identical", len(want))
}

func reportLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		for _, p := range []string{`{"type":"finding"`, `{"type":"violation"`, `{"type":"summary"`} {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return out
}
