package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/output"
	"tcptracer/timeline/timelinetest"
)

func run(args ...string) (string, string, int) {
	var o, e bytes.Buffer
	code := Run(context.Background(), args, Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e})
	return o.String(), e.String(), code
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--port", "70000"}, "--port 70000"},
		{[]string{"--port", "x"}, "port"},
		{[]string{"-4", "-6"}, "exclude"},
		{[]string{"--attach", "magic"}, `"magic"`},
		{[]string{"--tc", "xdp"}, `"xdp"`},
		{[]string{"--format", "xml"}, `"xml"`},
		{[]string{"--ring-size", "3000"}, `--ring-size "3000": too small`},
		{[]string{"--ring-size", "8Q"}, "size"},
		{[]string{"--duration", "-1s"}, "--duration"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra"}, `"extra"`},
		{[]string{"verify", "--expect", "fast<"}, "--expect"},
		{[]string{"analyze"}, "want one FILE"},
	} {
		_, stderr, code := run(c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.says) {
			t.Errorf("tcptracer %v: exit %d, stderr %q; want %d mentioning %q", c.args, code, stderr, ExitUsage, c.says)
		}
	}
}

func TestHelp(t *testing.T) {
	out, _, code := run("help")
	if code != 0 || !strings.Contains(out, "--port N") || !strings.Contains(out, "verify [flags]") {
		t.Errorf("help: exit %d, output %q", code, out)
	}
}

// writeStream saves the synthetic echo session as tcptracer writes it.
func writeStream(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	w := output.NewJSONWriter(&b)
	for _, ev := range timelinetest.Echo().Events {
		if err := w.Write(&ev); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	p := filepath.Join(t.TempDir(), "echo.json")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// analyze of a saved stream prints what the report prints for the same
// events (report/testdata holds that output).
func TestAnalyzeMatchesReport(t *testing.T) {
	path := writeStream(t)
	for _, c := range []struct{ format, golden string }{
		{"text", "echo_text.golden"},
		{"json", "echo_json.golden"},
	} {
		out, stderr, code := run("analyze", "--format", c.format, path)
		want, err := os.ReadFile(filepath.Join("..", "..", "report", "testdata", c.golden))
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 || out != string(want) {
			t.Errorf("analyze --format %s: exit %d (%s)\ngot:\n%s\nwant:\n%s", c.format, code, stderr, out, want)
		}
	}
}

func TestAnalyzeErrors(t *testing.T) {
	_, stderr, code := run("analyze", "/no/such/file.json")
	if code != ExitFailure || !strings.Contains(stderr, "/no/such/file.json") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{\"type\":\"lost\",\"ts_ns\":1,\"conn\":null,\"id\":1,\"count\":1}\nnot json\n"), 0o644)
	_, stderr, code = run("analyze", bad)
	if code != ExitFailure || !strings.Contains(stderr, "bad.json:2") {
		t.Errorf("bad line: exit %d, stderr %q; want the file and line", code, stderr)
	}
}

// analyze reads standard input with "-", and an expectation that fails
// makes it exit 1.
func TestAnalyzeStdinExpectation(t *testing.T) {
	data, err := os.ReadFile(writeStream(t))
	if err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	code := Run(context.Background(), []string{"analyze", "--expect", "bytes>=1000", "-"},
		Env{Stdin: bytes.NewReader(data), Stdout: &o, Stderr: &e})
	if code != ExitFailure || !strings.Contains(o.String(), "bytes>=1000") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and the failed expectation", code, o.String(), e.String())
	}
}
