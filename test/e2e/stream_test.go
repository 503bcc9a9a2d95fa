package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"tcptracer/internal/ptytest"
)

// TestStreamingLadder: on a live trace, --format text draws a connection's
// rows as its segments arrive, on the terminal, while the connection is
// still open; the verdict comes when it ends.
func TestStreamingLadder(t *testing.T) {
	requireRoot(t)
	addr := fmt.Sprintf("127.0.0.1:%d", echoPort)
	serveOn(t, addr)
	master, slave := ptytest.Open(t)
	screen := ptytest.Read(master)
	cmd := cliCommand(append([]string{"--format", "text", "--color", "never", "--iface", "lo"}, modeArgs()...)...)
	cmd.Stdout, cmd.Stderr = slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	screen.WaitFor("Ctrl-C to stop") // every hook is attached

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("AB")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil {
		t.Fatal(err)
	}
	shown := screen.WaitFor("Seq=1 Ack=3 Len=2") // the echo's row
	if !strings.Contains(shown, "[PSH, ACK] Seq=1 Ack=1 Len=2") || strings.Contains(shown, "verdict:") {
		t.Fatalf("while the connection is open: want its rows and no verdict yet, got:\n%s", shown)
	}
	conn.Close()
	shown = screen.WaitFor("verdict: ok")
	if !strings.Contains(shown, "verdict: ok") {
		t.Fatalf("after close: want the verdict, got:\n%s", shown)
	}
	stop()
}
