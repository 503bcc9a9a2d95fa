package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tcptracer/internal/ptytest"
)

// What a person at a terminal sees (issue 11): the status line and the
// tally on stderr when it is a pty, the tally alone when it is not.

var (
	statusLine = regexp.MustCompile(`\r\x1b\[K\d+s  \d+ events/s  \d+ open  \d+ connections?  \d+ findings?  \d+ lost`)
	tallyLine  = regexp.MustCompile(`tcptracer: \d+ events?, \d+ segments?, \d+ connections?, \d+ records? lost in the kernel`)
)

// cliCommand is the tcptracer command (this binary in the cli role).
func cliCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"=cli")
	return cmd
}

func TestDemoOnTerminal(t *testing.T) {
	requireRoot(t)
	master, slave := ptytest.Open(t)
	screen := ptytest.Read(master)
	cmd := cliCommand(append([]string{"demo"}, modeArgs()...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, slave
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v: %q", err, screen.WaitFor("\n"))
	}
	shown := screen.WaitFor("lost in the kernel")
	if !statusLine.MatchString(shown) || !tallyLine.MatchString(shown) {
		t.Errorf("stderr on a pty: want the status line and the tally, got %q", shown)
	}
	t.Logf("tally: %s", tallyLine.FindString(shown))
}

func TestDemoNotOnTerminal(t *testing.T) {
	requireRoot(t)
	cmd := cliCommand(append([]string{"demo", "--format", "text", "--color", "never"}, modeArgs()...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo --format text: %v: %s", err, errb.String())
	}
	if strings.Contains(errb.String(), "events/s") || !tallyLine.MatchString(errb.String()) {
		t.Errorf("stderr on a pipe: want the tally only, got %q", errb.String())
	}
	if o := out.String(); !strings.Contains(o, "verdict: ok") || !strings.Contains(o, "[SYN] Seq=0 Len=0") || strings.Contains(o, "\x1b[") {
		t.Errorf("demo --format text --color never: %q", o)
	}
}

// verify --user runs the command without root: its connect event carries
// the user's uid, and it holds no capability.
func TestVerifyAsUser(t *testing.T) {
	requireRoot(t)
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash for /dev/tcp")
	}
	addr := serveEcho(t)
	host, port, _ := strings.Cut(addr, ":")
	script := "grep CapEff /proc/self/status >&2; id -u >&2; exec 3<>/dev/tcp/" + host + "/" + port + "; printf AB >&3; head -c 2 <&3 >/dev/null"
	args := append([]string{"verify", "--format", "json", "--user", "nobody"}, modeArgs()...)
	stdout, stderr, code := runCLI(t, addr, append(args, "--", "bash", "-c", script)...)
	if code != 0 {
		t.Fatalf("verify --user nobody: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "CapEff:\t0000000000000000") || !strings.Contains(stderr, "\n"+u.Uid+"\n") {
		t.Errorf("the command ran with privileges: %s", stderr)
	}
	if !strings.Contains(stdout, `"type":"connect"`) || !strings.Contains(stdout, `"uid":`+u.Uid+",") {
		t.Errorf("no connect event with uid %s:\n%.2000s", u.Uid, stdout)
	}
}

// Lost records are on stderr, not only in the JSON stream: the tally's
// count is the sum of the stream's lost events (issue 11: a 4K ring lost
// 1,130 events with nothing on stderr).
func TestLostOnStderr(t *testing.T) {
	requireRoot(t)
	addr := fmt.Sprintf("127.0.0.1:%d", echoPort)
	cmd := cliCommand("--ring-size", "4K", "--iface", "lo", "--port", strconv.Itoa(echoPort), "--duration", "2s")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReaderSize(out, 1<<20)
	if _, err := rd.ReadString('\n'); err != nil { // the start event: attached
		t.Fatalf("no start event: %v: %s", err, errb.String())
	}
	blast(t, addr, 500*time.Millisecond)
	var lost uint64
	for {
		line, err := rd.ReadString('\n')
		if strings.HasPrefix(line, `{"type":"lost"`) {
			var ev struct{ Count uint64 }
			json.Unmarshal([]byte(line), &ev)
			lost += ev.Count
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tcptracer: %v: %s", err, errb.String())
	}
	m := regexp.MustCompile(`(\d+) records? lost in the kernel$`).FindStringSubmatch(strings.TrimSpace(errb.String()))
	if m == nil || m[1] != strconv.FormatUint(lost, 10) {
		t.Errorf("stream reports %d lost; stderr: %q", lost, errb.String())
	}
	t.Logf("4K ring: %d records lost; stderr: %q", lost, errb.String())
}
