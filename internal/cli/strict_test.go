package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad flag values exit 2 with the value as given and what is valid.
func TestFlagValueErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		says []string
	}{
		{[]string{"--iface", ""}, []string{`--iface ""`, "empty"}},
		{[]string{"--iface", ","}, []string{`--iface ","`, "empty"}},
		{[]string{"--iface", "lo,"}, []string{`--iface "lo,"`}},
		{[]string{"--ring-size", "4G"}, []string{`--ring-size "4G"`, "at most 1G"}},
		{[]string{"--ring-size", "3000"}, []string{`"3000"`, "at least 4K"}},
		{[]string{"--ring-size", "12K"}, []string{`"12K"`, "power of two"}},
		{[]string{"--ring-size", "8Q"}, []string{`"8Q"`, "K, M or G"}},
		{[]string{"--max-memory", "1M"}, []string{`--max-memory "1M"`, "at least 16M"}},
		{[]string{"--max-memory", "2048G"}, []string{`--max-memory "2048G"`, "at most 1024G"}},
		{[]string{"--max-memory", "lots"}, []string{`--max-memory "lots"`, "K, M or G"}},
		{[]string{"analyze", "--max-memory", "0", "x.json"}, []string{`--max-memory "0"`, "at least 16M"}},
		{[]string{"--pid", "0"}, []string{"--pid 0", "not a process id"}},
		{[]string{"--pid", "4194000"}, []string{"--pid 4194000", "no such process"}},
		{[]string{"--pid", "x"}, []string{`--pid "x"`, "integer"}},
		{[]string{"--format", "xml"}, []string{`"xml"`, "json, text"}},
		{[]string{"--color", "sometimes"}, []string{`"sometimes"`, "auto, always, never"}},
		{[]string{"--attach", "magic"}, []string{`"magic"`, "auto, fentry, kprobe, tracepoint"}},
		{[]string{"--tc", "xdp"}, []string{`"xdp"`, "auto, tcx, clsact"}},
		{[]string{"--duration", "soon"}, []string{`--duration "soon"`, "10s"}},
		{[]string{"--netns", "/no/such/netns"}, []string{`"/no/such/netns"`, "/run/netns/NAME"}},
		{[]string{"--port"}, []string{"--port needs a value"}},
		{[]string{"--verbose=maybe"}, []string{`--verbose "maybe"`, "true or false"}},
		{[]string{"analyze", "--expect", "bogus", "x.json"}, []string{`"bogus"`, "valid expectations", "no-retransmissions"}},
		{[]string{"analyze", "--expect", "no-bogus", "x.json"}, []string{`unknown finding "bogus"`, "zero_window"}},
		{[]string{"analyze", "a", "b"}, []string{"got 2"}},
		{[]string{"demo", "--port", "1"}, []string{"tcptracer demo: unknown flag --port", "Run 'tcptracer demo --help' for its flags."}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`, "verify, analyze"}},
		{[]string{"help", "frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"verify", "--user", "nobody"}, []string{"needs a COMMAND"}},
		{[]string{"verify", "--user", "no-such-user-here", "--", "true"}, []string{`--user "no-such-user-here"`}},
	} {
		_, stderr, code := run(c.args...)
		if code != ExitUsage {
			t.Errorf("tcptracer %q: exit %d, want %d (stderr %q)", c.args, code, ExitUsage, stderr)
		}
		for _, s := range c.says {
			if !strings.Contains(stderr, s) {
				t.Errorf("tcptracer %q: stderr %q does not say %q", c.args, stderr, s)
			}
		}
	}
}

// A thread id is not a process id: --pid says which process it belongs to.
func TestPIDThreadOfProcess(t *testing.T) {
	dir := t.TempDir()
	old := procRoot
	procRoot = dir
	defer func() { procRoot = old }()
	os.MkdirAll(filepath.Join(dir, "1234"), 0o755)
	os.WriteFile(filepath.Join(dir, "1234", "status"), []byte("Name:\tworker\nTgid:\t1200\nPid:\t1234\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "1200"), 0o755)
	os.WriteFile(filepath.Join(dir, "1200", "status"), []byte("Name:\tserver\nTgid:\t1200\nPid:\t1200\n"), 0o644)
	if _, err := checkPID(1234); err == nil || !strings.Contains(err.Error(), "thread of process 1200") {
		t.Errorf("checkPID(thread 1234) = %v, want it to name process 1200", err)
	}
	if pid, err := checkPID(1200); err != nil || pid != 1200 {
		t.Errorf("checkPID(1200) = %d, %v", pid, err)
	}
}

// Our own process passes the --pid check.
func TestPIDOwnProcess(t *testing.T) {
	if _, err := checkPID(uint64(os.Getpid())); err != nil {
		t.Errorf("checkPID(own pid): %v", err)
	}
}

// A name given twice counts once, in the order given; given values
// replace a command's default.
func TestIfaceList(t *testing.T) {
	in, err := parseArgs(findCommand(""), []string{"--iface", "lo,lo", "--iface", "eth0, lo"})
	if err != nil || strings.Join(in.list("iface"), " ") != "lo eth0" {
		t.Errorf("--iface lo,lo --iface 'eth0, lo': %v, %v", in, err)
	}
	in, err = parseArgs(findCommand("demo"), []string{"--iface", "veth0"})
	if err != nil || strings.Join(in.list("iface"), " ") != "veth0" {
		t.Errorf("demo --iface veth0: %q, %v; want the default lo replaced", in.list("iface"), err)
	}
	in, _ = parseArgs(findCommand("demo"), nil)
	if strings.Join(in.list("iface"), " ") != "lo" {
		t.Errorf("demo's default iface: %q", in.list("iface"))
	}
}

// Flags are read before and after positional arguments; --flag=value
// works; verify's command starts at its first positional argument.
func TestFlagOrder(t *testing.T) {
	path := writeStream(t)
	want, _, code := run("analyze", "--format", "text", path)
	if code != 0 {
		t.Fatalf("analyze --format text: exit %d", code)
	}
	for _, args := range [][]string{
		{"analyze", path, "--format", "text"},
		{"analyze", path, "--format=text"},
		{"analyze", "-format", "text", path},
		{"analyze", "--color", "never", path, "--format", "text"},
	} {
		if out, stderr, code := run(args...); code != 0 || out != want {
			t.Errorf("tcptracer %q: exit %d (%s), output differs from analyze --format text FILE", args, code, stderr)
		}
	}
	in, err := parseArgs(findCommand("verify"), []string{"--grace", "1s", "curl", "--grace", "x", "-v"})
	if err != nil || strings.Join(in.command, " ") != "curl --grace x -v" || in.dur("grace").String() != "1s" {
		t.Errorf("verify --grace 1s curl --grace x -v: %v, command %q", err, in.command)
	}
	in, err = parseArgs(findCommand("verify"), []string{"--port", "80", "--", "-x"})
	if err != nil || strings.Join(in.command, " ") != "-x" || in.uint("port") != 80 {
		t.Errorf("verify --port 80 -- -x: %v, command %q", err, in.command)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run("--version")
	if code != 0 || !strings.HasPrefix(out, "tcptracer ") || strings.TrimSpace(out) == "tcptracer" {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}

// analyze rejects a line that lacks a field its type has, naming the file,
// the line and the field, exit 1.
func TestAnalyzeStrict(t *testing.T) {
	good, err := os.ReadFile(writeStream(t))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")
	for _, c := range []struct {
		name, line, says string
	}{
		{"bare segment", `{"type":"segment"}`, `segment event lacks the field "ts_ns"`},
		{"segment without seq", strings.Replace(lines[1], `"seq":`, `"xseq":`, 1), `lacks the field "seq"`},
		{"lost without count", `{"type":"lost","ts_ns":1,"conn":null,"id":9}`, `lost event lacks the field "count"`},
		{"unknown type", `{"type":"bogus","ts_ns":1}`, `unknown type "bogus"`},
		{"not an object", `[1,2]`, "decode event"},
	} {
		path := filepath.Join(t.TempDir(), "bad.json")
		data := lines[0] + strings.TrimSuffix(c.line, "\n") + "\n" + strings.Join(lines[1:], "")
		os.WriteFile(path, []byte(data), 0o644)
		_, stderr, code := run("analyze", path)
		if code != ExitFailure || !strings.Contains(stderr, path+":2:") || !strings.Contains(stderr, c.says) {
			t.Errorf("%s: exit %d, stderr %q; want 1, %s:2 and %q", c.name, code, stderr, path, c.says)
		}
	}
}

// A line over the limit is named with its number and the limit.
func TestAnalyzeLongLine(t *testing.T) {
	good, _ := os.ReadFile(writeStream(t))
	first := strings.SplitAfter(string(good), "\n")[0]
	var b bytes.Buffer
	b.WriteString(first)
	b.WriteString(first)
	b.WriteString(`{"type":"lost","pad":"` + strings.Repeat("x", maxLine) + "\"}\n")
	_, stderr, code := Run2(t, b.Bytes(), "analyze", "-")
	if code != ExitFailure || !strings.Contains(stderr, "standard input:3:") || !strings.Contains(stderr, "16 MiB") {
		t.Errorf("long line: exit %d, stderr %q", code, stderr)
	}
}

// Run2 runs with data on stdin.
func Run2(t *testing.T, data []byte, args ...string) (string, string, int) {
	t.Helper()
	var o, e bytes.Buffer
	code := Run(context.Background(), args, Env{Stdin: bytes.NewReader(data), Stdout: &o, Stderr: &e})
	return o.String(), e.String(), code
}

// A failed expectation is named on stderr in every format, and the JSON
// summary's ok agrees with the exit code.
func TestAnalyzeFailureOnStderr(t *testing.T) {
	path := writeStream(t)
	for _, format := range []string{"json", "text"} {
		out, stderr, code := run("analyze", "--format", format, "--expect", "bytes>=1000", path)
		if code != ExitFailure || !strings.Contains(stderr, "analyze: FAILED") || !strings.Contains(stderr, "bytes>=1000 failed (got 4)") {
			t.Errorf("--format %s: exit %d, stderr %q; want 1 and the expectation named", format, code, stderr)
		}
		if format == "json" && (!strings.Contains(out, `"ok":false`) || strings.Contains(out, `"ok":true`)) {
			t.Errorf("summary ok disagrees with exit 1: %s", out)
		}
	}
	out, stderr, code := run("analyze", "--expect", "bytes>=4", path)
	if code != 0 || !strings.Contains(out, `"ok":true`) || stderr != "" {
		t.Errorf("passing expectation: exit %d, stderr %q, out %q", code, stderr, out)
	}
}
