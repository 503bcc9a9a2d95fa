package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
)

const (
	helpWidth = 80 // lines of the help text wrap before this column
	flagCol   = 20 // where the usage text of each flag starts
)

const tagline = "tcptracer: trace TCP connections with eBPF, one JSON object per event"

// Facts every form of the help states (help, man page).
const (
	exitText = "Exit status: 0 success, a trace stopped by a signal, --duration or a closed stdout included; " +
		"1 a runtime error, a failed verdict or expectation (verify, analyze) or a failed cleanup --apply; " +
		"2 a bad command line (or a panic)."
	rootText = "Tracing (tcptracer, verify, demo) needs root: CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; cleanup " +
		"needs CAP_NET_ADMIN. analyze, echo-server, echo-client and help need nothing; verify --user runs COMMAND without root."
)

// synopsis is the command's usage line.
func (c *command) synopsis() string {
	s := c.displayName()
	if len(flagsOf(c.name)) > 0 {
		s += " [flags]"
	}
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// writeCommandHelp prints what `tcptracer CMD --help` prints.
func writeCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s\n\n", c.synopsis())
	fmt.Fprint(w, wrap(c.doc, helpWidth, ""))
	fmt.Fprint(w, "\nFlags:\n")
	writeFlags(w, c.name)
	if c.name == "" {
		fmt.Fprintf(w, "\nCommands: %s. Run 'tcptracer help' for all of them.\n", strings.Join(subcommandNames(), ", "))
	}
}

// writeTopHelp prints `tcptracer help`.
func writeTopHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n", tagline)
	const col = 36
	indent := strings.Repeat(" ", col)
	for _, c := range commands {
		syn := "  " + c.synopsis()
		body := wrap(c.summary, helpWidth, indent)
		if len(syn) >= col {
			fmt.Fprintf(w, "%s\n%s", syn, body)
			continue
		}
		fmt.Fprintf(w, "%-*s%s", col, syn, body[col:])
	}
	fmt.Fprint(w, "\nFlags of tcptracer (verify and demo take most of them too):\n")
	writeFlags(w, "")
	fmt.Fprint(w, "\n")
	fmt.Fprint(w, wrap(exitText, helpWidth, ""))
	fmt.Fprint(w, wrap(rootText, helpWidth, ""))
	fmt.Fprint(w, wrap("Run 'tcptracer COMMAND --help' for a command's flags. The output schema is in README.md and tcptracer(1).", helpWidth, ""))
}

func writeFlags(w io.Writer, cmd string) {
	for _, f := range flagsOf(cmd) {
		writeFlag(w, f.helpName(), f.helpUsage(cmd))
	}
	writeFlag(w, "-h, --help", "print this help and exit")
}

func writeFlag(w io.Writer, name, usage string) {
	indent := strings.Repeat(" ", flagCol)
	head := "  " + name
	if len(head) >= flagCol-1 {
		fmt.Fprintf(w, "%s\n%s", head, wrap(usage, helpWidth, indent))
		return
	}
	body := wrap(usage, helpWidth, indent)
	fmt.Fprintf(w, "%-*s%s", flagCol, head, body[flagCol:])
}

// helpName is "--port N" or "-4".
func (f *flagSpec) helpName() string {
	if f.arg == "" {
		return f.dashed()
	}
	return f.dashed() + " " + f.arg
}

// helpUsage is the usage text with the default in cmd.
func (f *flagSpec) helpUsage(cmd string) string {
	if d := f.defaultDoc(cmd); d != "" {
		return f.usage + " (default: " + d + ")"
	}
	return f.usage
}

// defaultDoc is the default in cmd in words, or "" for a bool or none.
func (f *flagSpec) defaultDoc(cmd string) string {
	if d := f.defaultFor(cmd); d != "" {
		return d
	}
	return f.defDoc
}

// wrap fills text into lines shorter than width, each starting with indent.
func wrap(text string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) >= width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}

func subcommandNames() []string {
	var out []string
	for _, c := range commands {
		if c.name != "" {
			out = append(out, c.name)
		}
	}
	return out
}

// runHelp is `tcptracer help [COMMAND]`.
func runHelp(_ context.Context, in *invocation, env Env) error {
	if len(in.args) == 0 {
		writeTopHelp(env.Stdout)
		return nil
	}
	if len(in.args) > 1 {
		return usagef("help: want at most one COMMAND")
	}
	c := findCommand(in.args[0])
	if c == nil {
		return usagef("help: unknown command %q; the commands are %s", in.args[0], strings.Join(subcommandNames(), ", "))
	}
	writeCommandHelp(env.Stdout, c)
	return nil
}
