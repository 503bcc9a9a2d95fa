package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tcptracer/capture"
	"tcptracer/event"
	"tcptracer/internal/cli"
	"tcptracer/internal/fault"
	"tcptracer/internal/oracle"
	"tcptracer/internal/privtest"
)

// The round trip of --write (issue 12): a live run on A's veth end with a
// segment dropped at B writes a pcapng that tshark reads without a
// warning, whose segments are tcpdump's capture of the same traffic one for
// one, whose comments carry the connection and the retransmission, and
// that analyze judges as the live run did.
func TestWritePcapngTshark(t *testing.T) {
	privtest.RequireRoot(t, "tcpdump", "tshark")
	b := newFaultBed(t)
	noTailLossProbes(t, b)
	d, err := fault.Drop(fault.Spec{Netns: b.pair.B, Iface: b.pair.IfB, Port: echoPort})
	if err != nil {
		t.Fatalf("attach the dropper: %v", err)
	}
	defer d.Close()
	file := filepath.Join(t.TempDir(), "live.pcapng")
	p := startCLI(t, "cli", "--iface", b.pair.IfA, "--netns", b.nsA, "--write", file,
		"--attach", envMode("TCPTRACER_ATTACH"), "--tc", envMode("TCPTRACER_TC"))
	lines := collectLines(p)
	c, err := oracle.Start(context.Background(), b.pair.IfA, "tcp", b.pair.A)
	if err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	exchange(t, b.pair.A, b.addr, b.pair.B, 2)
	summary := lines.waitSummary(t)
	if _, err := c.Stop(); err != nil {
		t.Fatalf("stop tcpdump: %v", err)
	}
	p.cmd.Process.Signal(os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("tracer exit %d: %s", code, p.stderr.String())
	}
	written, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	checkTsharkReads(t, file)
	checkSameSegments(t, written, c.Pcap())
	checkComments(t, file)
	checkAnalyzeAgrees(t, written, summary)
}

type lineLog struct{ summary chan string }

// collectLines reads the tracer's JSON lines and hands over the first
// summary line.
func collectLines(p *proc) *lineLog {
	l := &lineLog{summary: make(chan string, 1)}
	p.pump()
	go func() {
		for s := range p.lines {
			if strings.HasPrefix(s, `{"type":"summary"`) {
				select {
				case l.summary <- s:
				default:
				}
			}
		}
	}()
	return l
}

func (l *lineLog) waitSummary(t *testing.T) string {
	t.Helper()
	select {
	case s := <-l.summary:
		return s
	case <-time.After(waitTimeout):
		t.Fatalf("no summary line within %v", waitTimeout)
	}
	return ""
}

// checkTsharkReads: tshark reads the file and says nothing on stderr but
// its root warning.
func checkTsharkReads(t *testing.T, file string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command("tshark", "-r", file, "-n")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark -r: %v: %s", err, errOut.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		if l != "" && !strings.Contains(l, "Running as user") {
			t.Errorf("tshark warns: %s", l)
		}
	}
	t.Logf("tshark -r:\n%s", out.String())
}

type segKey struct {
	saddr, daddr string
	sport, dport uint16
	seq, ack     uint32
	flags        uint16
	len          uint32
}

func captureKeys(t *testing.T, b []byte) []segKey {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var keys []segKey
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		if ok, err := capture.Decode(&p, &ev); err != nil || !ok {
			t.Fatalf("packet %d: ok %v, %v", p.Number, ok, err)
		}
		keys = append(keys, segKey{ev.Saddr.String(), ev.Daddr.String(), ev.Sport, ev.Dport, ev.Seq, ev.Ack, ev.Flags, ev.Len})
	}
}

// checkSameSegments: the file's segments are tcpdump's, as multisets.
func checkSameSegments(t *testing.T, written, tcpdump []byte) {
	t.Helper()
	got, want := captureKeys(t, written), captureKeys(t, tcpdump)
	count := func(ks []segKey) map[segKey]int {
		m := map[segKey]int{}
		for _, k := range ks {
			m[k]++
		}
		return m
	}
	g, w := count(got), count(want)
	for k, n := range w {
		if g[k] != n {
			t.Errorf("segment %+v: %d in the file, %d in tcpdump's capture", k, g[k], n)
		}
	}
	for k, n := range g {
		if w[k] == 0 {
			t.Errorf("segment %+v: %d in the file, none in tcpdump's capture", k, n)
		}
	}
	t.Logf("%d segments in the file, %d in tcpdump's capture", len(got), len(want))
}

// checkComments: every packet names its connection; one carries the
// retransmission.
func checkComments(t *testing.T, file string) {
	t.Helper()
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark comments: %v", err)
	}
	comments := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, c := range comments {
		if !strings.Contains(c, "conn ") {
			t.Errorf("packet %d: comment %q names no connection", i+1, c)
		}
	}
	if !slices.ContainsFunc(comments, func(c string) bool { return strings.Contains(c, "findings: retransmission") }) {
		t.Errorf("no packet comment names the retransmission: %q", comments)
	}
}

// checkAnalyzeAgrees: analyze of the file gives the live run's verdict
// and findings.
func checkAnalyzeAgrees(t *testing.T, written []byte, live string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cli.Run(context.Background(), []string{"analyze", "-"}, cli.Env{Stdin: bytes.NewReader(written), Stdout: &out, Stderr: &errOut})
	var offline string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"type":"summary"`) {
			offline = sc.Text()
		}
	}
	type verdict struct {
		Verdict  string         `json:"verdict"`
		Findings map[string]int `json:"findings"`
		End      string         `json:"end"`
	}
	var a, b verdict
	if err := json.Unmarshal([]byte(live), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(offline), &b); err != nil {
		t.Fatalf("analyze summary %q: %v (stderr %s)", offline, err, errOut.String())
	}
	if a.Verdict != b.Verdict || a.End != b.End || !mapsEqual(a.Findings, b.Findings) {
		t.Errorf("live %+v, analyze of the file %+v", a, b)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The done-when: `tcptracer --iface lo --write x.pcapng` during
// the echo session gives a file tshark lists as its 10 segments, each with
// its comment.
func TestWriteEchoLoopbackTshark(t *testing.T) {
	privtest.RequireRoot(t, "tshark")
	addr := serveEcho(t)
	file := filepath.Join(t.TempDir(), "x.pcapng")
	p := startCLI(t, "cli", "--iface", "lo", "--write", file,
		"--attach", envMode("TCPTRACER_ATTACH"), "--tc", envMode("TCPTRACER_TC"))
	lines := collectLines(p)
	runClientProcess(t, addr, "")
	lines.waitSummary(t)
	p.cmd.Process.Signal(os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("tracer exit %d: %s", code, p.stderr.String())
	}
	checkTsharkReads(t, file)
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "tcp.flags.str", "-e", "tcp.len", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	rows := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(rows) != 10 {
		t.Fatalf("tshark lists %d packets, want the session's 10:\n%s", len(rows), out)
	}
	for i, r := range rows {
		if !strings.Contains(r, "tcptracer id ") || !strings.Contains(r, " conn 1") {
			t.Errorf("packet %d: %q has no comment naming conn 1", i+1, r)
		}
	}
}
