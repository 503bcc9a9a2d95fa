package cli

import (
	"fmt"
	"sort"
	"strings"
)

// Docs returns the files generated from the command table, by path from
// the repository's root: the man page and the bash and zsh completions.
// `make docs` writes them; TestDocsCommitted fails when they drift.
func Docs() map[string]string {
	return map[string]string{
		"tcptracer.1":               ManPage(),
		"completion/tcptracer.bash": BashCompletion(),
		"completion/_tcptracer":     ZshCompletion(),
	}
}

// The README's flag table sits between these lines; `make docs` rewrites it.
const (
	FlagTableBegin = "<!-- flags: generated from internal/cli/spec.go by make docs -->"
	FlagTableEnd   = "<!-- end of flags -->"
)

// FlagTable is the README's table of every flag, in markdown.
func FlagTable() string {
	var b strings.Builder
	b.WriteString("| flag | commands | default | meaning |\n| --- | --- | --- | --- |\n")
	for i := range flagSpecs {
		f := &flagSpecs[i]
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.helpName(), tableCommands(f), tableDefault(f), f.usage)
	}
	return b.String()
}

func tableCommands(f *flagSpec) string {
	var names []string
	for _, c := range f.cmds {
		if c == "" {
			c = "tcptracer"
		}
		names = append(names, c)
	}
	return strings.Join(names, ", ")
}

func tableDefault(f *flagSpec) string {
	d := f.defaultDoc("")
	if d == "" && !f.takenBy("") {
		d = f.defaultDoc(f.cmds[0])
	}
	switch {
	case f.kind == kindBool:
		d = "off"
	case f.def != "":
		d = "`" + f.def + "`"
	}
	var per []string
	for _, c := range sortedKeys(f.perCmd) {
		per = append(per, fmt.Sprintf("`%s` for %s", f.perCmd[c], c))
	}
	if len(per) > 0 {
		d += " (" + strings.Join(per, ", ") + ")"
	}
	return d
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ManPage is tcptracer(1) in roff.
func ManPage() string {
	var b strings.Builder
	b.WriteString(`.\" Generated from internal/cli/spec.go by make docs; do not edit.
.TH TCPTRACER 1 "" "tcptracer" "User Commands"
.SH NAME
tcptracer \- trace TCP connections with eBPF, one JSON object per event
.SH SYNOPSIS
`)
	for i, c := range commands {
		if i > 0 {
			b.WriteString(".br\n")
		}
		fmt.Fprintf(&b, ".B %s\n", roff(c.displayName()))
		if rest := strings.TrimPrefix(c.synopsis(), c.displayName()); rest != "" {
			b.WriteString(roff(strings.TrimSpace(rest)) + "\n")
		}
	}
	b.WriteString(".SH DESCRIPTION\n" + roff(manDescription) + "\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands {
		fmt.Fprintf(&b, ".SS %s\n%s\n", roff(c.synopsis()), roff(c.doc))
		for _, f := range flagsOf(c.name) {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roff(f.helpName()), roff(f.helpUsage(c.name)))
		}
	}
	b.WriteString(".SH EXPECTATIONS\n" + roff(manExpectations) + "\n")
	b.WriteString(".SH OUTPUT\n" + roff(manOutput) + "\n")
	b.WriteString(".SH EXIT STATUS\n" + roff(exitText) + "\n")
	b.WriteString(".SH ENVIRONMENT\n.TP\n.B NO_COLOR\n" + roff("When set and not empty, --color auto uses no colour (https://no-color.org).") + "\n")
	b.WriteString(".SH PRIVILEGES\n" + roff(rootText) + "\n")
	b.WriteString(".SH SEE ALSO\n.BR tcpdump (8),\n.BR bpftool (8),\n.BR tc (8).\nThe README of the source distribution documents every field of the output.\n")
	return b.String()
}

const manDescription = "tcptracer attaches eBPF programs to TC ingress and egress and to the kernel's TCP " +
	"functions and tracepoints, and streams one JSON object per event to stdout: every segment with absolute and " +
	"relative Seq/Ack numbers, the kernel's view of each socket (state changes, snd_una, snd_nxt, rcv_nxt, " +
	"retransmissions, resets) and the process that owns it. It checks each connection against TCP's rules and " +
	"reports findings in the sense of Wireshark's tcp.analysis flags, and a verdict per connection."

const manExpectations = "An expectation (--expect) is a flag: ok, no-violations, no-disagreements, " +
	"no-retransmissions, no-findings, no-resets, or no-FINDING for a finding kind (e.g. no-duplicate_ack); " +
	"or METRIC OP VALUE with OP one of < <= > >= == != and METRIC one of handshake-rtt and duration (VALUE a " +
	"duration such as 5ms) or bytes, bytes-c2s, bytes-s2c, segments, retransmissions, kernel-retransmissions, " +
	"findings, resets (VALUE an integer). Names may be written with underscores as in the JSON summary " +
	"(handshake_rtt<5ms). Several expectations are separated by commas or given with several --expect."

const manOutput = "One JSON object per line. Every event starts with type, ts_ns (CLOCK_MONOTONIC), ts " +
	"(the wall-clock time of ts_ns, RFC 3339 in UTC with nanoseconds; in live output), conn and id; report lines " +
	"(finding, violation, summary) start with type, ts_ns and conn. In a summary, ok is true when the verdict is " +
	"ok and every expectation held, which is what the exit status of verify and analyze reports."

// roff escapes text for a man page body line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
