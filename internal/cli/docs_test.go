package cli

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tcptracer/analysis/expect"
)

var update = flag.Bool("update", false, "rewrite the help golden files")

const root = "../.."

// Every flag says what it does, and every command too.
func TestEveryFlagHasUsage(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range flagSpecs {
		if strings.TrimSpace(f.usage) == "" || len(f.cmds) == 0 {
			t.Errorf("flag %s has no usage text or no command", f.dashed())
		}
		if seen[f.name] {
			t.Errorf("flag %s declared twice", f.dashed())
		}
		seen[f.name] = true
		if f.kind == kindEnum && !contains(f.values, f.def) {
			t.Errorf("flag %s: default %q is not one of %v", f.dashed(), f.def, f.values)
		}
	}
	for _, c := range commands {
		if c.summary == "" || c.doc == "" || c.run == nil {
			t.Errorf("command %q lacks a summary, a doc or a run function", c.name)
		}
	}
}

// The help of each command, as -h, --help and help COMMAND print it, is
// golden (testdata/help; go test -update rewrites it).
func TestHelpGolden(t *testing.T) {
	for _, c := range commands {
		name := c.name
		if name == "" {
			name = "tcptracer"
		}
		want := goldenFile(t, filepath.Join("testdata", "help", name+".golden"), helpOf(t, c))
		for _, args := range helpCommandLines(c) {
			out, stderr, code := run(args...)
			if code != 0 || out != want || stderr != "" {
				t.Errorf("tcptracer %v: exit %d, stderr %q, output differs from the golden help:\n%s", args, code, stderr, out)
			}
		}
	}
}

func helpOf(t *testing.T, c *command) string {
	t.Helper()
	var b bytes.Buffer
	if c.name == "" {
		writeTopHelp(&b)
	} else {
		writeCommandHelp(&b, c)
	}
	return b.String()
}

func helpCommandLines(c *command) [][]string {
	if c.name == "" {
		return [][]string{{"help"}, {"-h"}, {"--help"}, {"--port", "0", "--help"}}
	}
	return [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}}
}

func goldenFile(t *testing.T, path, got string) string {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from what the command table generates (go test -update rewrites it):\n%s", path, got)
	}
	return string(want)
}

// Help lines fit in 80 columns.
func TestHelpWidth(t *testing.T) {
	for _, c := range commands {
		for _, line := range strings.Split(helpOf(t, c), "\n") {
			if len(line) >= helpWidth {
				t.Errorf("help of %q: line of %d columns: %q", c.name, len(line), line)
			}
		}
	}
}

// The man page, the completions and the README's flag table are what the
// command table generates: make docs rewrites them.
func TestDocsCommitted(t *testing.T) {
	for path, want := range Docs() {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || string(got) != want {
			t.Errorf("%s differs from the command table (run make docs): %v", path, err)
		}
	}
	readme := readREADME(t)
	i, j := strings.Index(readme, FlagTableBegin), strings.Index(readme, FlagTableEnd)
	if i < 0 || j < i {
		t.Fatal("README.md has no generated flag table")
	}
	if got := readme[i+len(FlagTableBegin)+1 : j]; got != FlagTable() {
		t.Errorf("README.md's flag table differs from the command table (run make docs):\n%s\nwant:\n%s", got, FlagTable())
	}
}

func readREADME(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The man page is valid roff: man renders it without a warning.
func TestManPageRenders(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("no groff to render the man page with")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(ManPage())
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff: %v: %s", err, out)
	}
}

// The bash completion loads in bash and completes commands, flags and
// flag values.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, c := range []struct {
		line string // the words typed, the last being completed
		want []string
	}{
		{"tcptracer ver", []string{"verify"}},
		{"tcptracer --po", []string{"--port"}},
		{"tcptracer verify --gr", []string{"--grace"}},
		{"tcptracer analyze --for", []string{"--format"}},
		{"tcptracer --attach k", []string{"kprobe"}},
		{"tcptracer verify --color ", []string{"always", "auto", "never"}},
		{"tcptracer --iface l", []string{"lo"}},
		{"tcptracer help ana", []string{"analyze"}},
	} {
		got := bashComplete(t, c.line)
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("complete %q: got %q, want %q", c.line, got, c.want)
		}
	}
	if got := bashComplete(t, "tcptracer analyze --gr"); len(got) != 0 {
		t.Errorf("analyze offers verify's --grace: %q", got)
	}
}

func bashComplete(t *testing.T, line string) []string {
	t.Helper()
	words := strings.Split(line, " ")
	script := BashCompletion() + `
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
_tcptracer
printf '%s\n' "${COMPREPLY[@]}" | sort
`
	out, err := exec.Command("bash", append([]string{"-c", script, "bash"}, words...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion for %q: %v: %s", line, err, out)
	}
	return strings.Fields(string(out))
}

// The zsh completion loads as a completion function with compinit.
func TestZshCompletion(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("no zsh")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "_tcptracer"), []byte(ZshCompletion()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `fpath=(` + dir + ` $fpath); autoload -Uz compinit; compinit -u -d ` + dir + `/zcompdump
autoload -Uz _tcptracer && functions _tcptracer >/dev/null && [[ $_comps[tcptracer] == _tcptracer ]] && echo loaded`
	out, err := exec.Command("zsh", "-f", "-c", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "loaded" {
		t.Errorf("zsh did not load _tcptracer: %v: %s", err, out)
	}
	if out, err := exec.Command("zsh", "-n", filepath.Join(dir, "_tcptracer")).CombinedOutput(); err != nil {
		t.Errorf("zsh -n _tcptracer: %v: %s", err, out)
	}
}

// Every tcptracer command line in the README (in code blocks and inline
// code) parses, with values the command accepts; synopses with
// placeholders ([flags], COMMAND) are not command lines.
func TestREADMECommandLines(t *testing.T) {
	lines := readmeCommandLines(readREADME(t))
	if len(lines) < 5 {
		t.Fatalf("found only %d command lines in README.md: %q", len(lines), lines)
	}
	for _, line := range lines {
		t.Logf("README.md: %s", line)
		if err := checkCommandLine(shellWords(line)[1:]); err != nil {
			t.Errorf("README.md: %q: %v", line, err)
		}
	}
}

var inlineCode = regexp.MustCompile("`(tcptracer [^`]+)`")

func readmeCommandLines(doc string) []string {
	var out []string
	inBlock := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			// Blocks of other languages (json) hold no command lines.
			inBlock = !inBlock
			continue
		}
		if inBlock {
			cmd, _, _ := strings.Cut(line, " #")
			cmd = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(cmd), "sudo "))
			if strings.HasPrefix(cmd, "tcptracer ") && !isSynopsis(cmd) {
				out = append(out, cmd)
			}
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
			if cmd := strings.ReplaceAll(m[1], `\|`, "|"); !isSynopsis(cmd) { // \| in a table cell
				out = append(out, cmd)
			}
		}
	}
	return out
}

// shellWords splits a command line as sh would, for the quoting the README
// uses: single and double quotes, no escapes or expansions.
func shellWords(line string) []string {
	var words []string
	var w strings.Builder
	quote, inWord := rune(0), false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func isSynopsis(cmd string) bool {
	return strings.ContainsAny(cmd, "[…") || strings.Contains(cmd, "COMMAND") || strings.Contains(cmd, "FILE") ||
		strings.Contains(cmd, " CMD") || strings.Contains(cmd, "NAME")
}

// checkCommandLine parses args as Run would, and checks the values that
// are checked before tracing starts, without running anything.
func checkCommandLine(args []string) error {
	for i, a := range args { // a pipe or a redirection ends the command
		if a == "|" || a == ">" || a == "&&" || a == "&" {
			args = args[:i]
			break
		}
	}
	cmd := findCommand("")
	if len(args) > 0 {
		if c := findCommand(args[0]); c != nil {
			cmd, args = c, args[1:]
		}
	}
	in, err := parseArgs(cmd, args)
	if err != nil && err != errHelp {
		return err
	}
	if err == errHelp {
		return nil
	}
	if in.takes("attach") {
		if _, err := traceOptions(in); err != nil {
			return err
		}
	}
	if in.takes("expect") {
		_, err = expect.Parse(in.list("expect")...)
	}
	if cmd.withCommand && len(in.command) > 0 && in.command[0] == "tcptracer" {
		return checkCommandLine(in.command[1:])
	}
	return err
}

// The README's examples are checked by this test, and its check rejects
// what the parser rejects.
func TestCheckCommandLineRejects(t *testing.T) {
	for _, bad := range []string{"--port 70000", "analyze", "verify --expect bogus", "--bogus", "verify -- tcptracer echo-client --nope"} {
		if checkCommandLine(strings.Fields(bad)) == nil {
			t.Errorf("checkCommandLine accepts %q", bad)
		}
	}
	if err := checkCommandLine(shellWords("analyze saved.json --format text --expect 'handshake_rtt<5ms, no-findings' > x")); err != nil {
		t.Errorf("checkCommandLine: %v", err)
	}
}
