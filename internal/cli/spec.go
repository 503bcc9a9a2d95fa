package cli

import "context"

// The command line is declared once, here: every command and every flag
// with its type, default and usage text. The parser, each command's --help,
// the top-level help, the man page (tcptracer.1), the shell completions and
// the README's flag table are all generated from these two tables (help.go,
// docs.go), so they cannot disagree.

// kind is how a flag's value is read.
type kind int

const (
	kindBool     kind = iota
	kindString        // any text; the command checks it
	kindUint          // a decimal integer
	kindDuration      // a Go duration: 500ms, 10s, 1m
	kindSize          // bytes with an optional K, M or G suffix
	kindMemory        // bytes with an optional K, M or G suffix, 16M..1024G
	kindList          // repeatable, comma-separated; duplicates count once
	kindEnum          // one of values
)

// flagSpec declares one flag.
type flagSpec struct {
	name   string // without dashes; "4" is written -4
	arg    string // the value's placeholder in help ("N", "NAME"); empty for a bool
	kind   kind
	def    string            // default, as it would be typed; "" for none
	defDoc string            // the default in words, where def does not say it
	perCmd map[string]string // a command's own default, replacing def
	values []string          // kindEnum: the valid values, the first being the usual one
	usage  string
	// complete says what the shell completes the value with: "file",
	// "iface", "user", or nothing.
	complete string
	cmds     []string // the commands that take it; "" is the tracing command
}

// command declares one subcommand; name "" is tcptracer itself (tracing).
type command struct {
	name    string
	args    string // what follows the flags in the synopsis
	summary string // one line for the top-level help
	doc     string // a paragraph for --help and the man page
	// nargs is how many positional arguments it takes; withCommand means
	// everything from the first positional argument (or after --) is a
	// command line to run.
	nargs       int
	withCommand bool
	run         func(ctx context.Context, in *invocation, env Env) error
}

var tracing = []string{"", "verify"}

var flagSpecs = []flagSpec{
	{name: "port", arg: "N", kind: kindUint, def: "20000", cmds: tracing,
		usage: "trace TCP port N at either end; 0 traces every port. Filtered in the kernel, so other traffic costs almost nothing."},
	{name: "iface", arg: "NAME", kind: kindList, defDoc: "every interface that is up", perCmd: map[string]string{"demo": "lo"},
		complete: "iface", cmds: []string{"", "verify", "demo"},
		usage: "interfaces to attach TC to; repeat it or give a comma-separated list (a name given twice counts once, an empty name is an error)"},
	{name: "pid", arg: "PID", kind: kindUint, defDoc: "every process", cmds: tracing,
		usage: "only connections owned by the process with id PID (the tgid, as ps and pidof print it, not a thread id); the process must exist when tracing starts"},
	{name: "4", kind: kindBool, cmds: tracing, usage: "only IPv4"},
	{name: "6", kind: kindBool, cmds: tracing, usage: "only IPv6"},
	{name: "duration", arg: "D", kind: kindDuration, defDoc: "until a signal", cmds: tracing,
		usage: "stop after D (a Go duration: 500ms, 10s, 1m) and exit 0"},
	{name: "attach", arg: "MODE", kind: kindEnum, def: "auto", values: []string{"auto", "fentry", "kprobe", "tracepoint"},
		cmds:  []string{"", "verify", "demo"},
		usage: "how to attach the function hooks: fentry, kprobe, tracepoint, or auto (the first that loads and attaches, in that order); a forced mode that fails is an error"},
	{name: "tc", arg: "MODE", kind: kindEnum, def: "auto", values: []string{"auto", "tcx", "clsact"},
		cmds:  []string{"", "verify", "demo"},
		usage: "how to attach TC: tcx (Linux 6.6+), clsact (qdisc and cls_bpf filter), or auto (tcx, else clsact)"},
	{name: "netns", arg: "PATH", kind: kindString, defDoc: "the current one", complete: "file", cmds: []string{"", "verify", "cleanup"},
		usage: "the network namespace (its path, e.g. /run/netns/NAME) to attach TC in, or for cleanup to look in"},
	{name: "ring-size", arg: "SIZE", kind: kindSize, def: "8M", cmds: []string{"", "verify", "demo"},
		usage: "ring buffer size: a power of two from 4K to 1G, in bytes or with a K, M or G suffix"},
	{name: "max-memory", arg: "SIZE", kind: kindMemory, def: "256M", cmds: []string{"", "verify", "demo", "analyze"},
		usage: "bound on what is kept about connections: conn's table (a quarter) and the timeline's connections with their history; beyond it the oldest history is dropped (counted in the summary, history_dropped), then the least recently active connections end as evicted. 16M to 1024G, in bytes or with a K, M or G suffix"},
	{name: "format", arg: "F", kind: kindEnum, def: "json", perCmd: map[string]string{"verify": "text"}, values: []string{"json", "text"},
		cmds:  []string{"", "verify", "analyze", "demo"},
		usage: "json (events and report lines) or text (a ladder diagram and a verdict per connection)"},
	{name: "color", arg: "WHEN", kind: kindEnum, def: "auto", values: []string{"auto", "always", "never"},
		cmds:  []string{"", "verify", "analyze", "demo"},
		usage: "colour in the text format: auto (when stdout is a terminal and NO_COLOR is not set), always or never"},
	{name: "verbose", kind: kindBool, cmds: []string{"", "verify", "demo"},
		usage: "print the verifier's full log when the kernel rejects a program"},
	{name: "expect", arg: "E", kind: kindList, cmds: []string{"verify", "analyze"},
		usage: "a condition every connection must meet (e.g. no-retransmissions, handshake-rtt<5ms, bytes>=100); repeatable or comma-separated; the grammar is in the README and the man page"},
	{name: "grace", arg: "D", kind: kindDuration, def: "2s", cmds: []string{"verify"},
		usage: "after COMMAND exits, how long to wait for its connections to finish closing"},
	{name: "user", arg: "NAME", kind: kindString, defDoc: "root, as tcptracer", complete: "user", cmds: []string{"verify"},
		usage: "run COMMAND as user NAME (a name or a numeric uid): its uid, primary gid and groups, and no capabilities"},
	{name: "addr", arg: "ADDR", kind: kindString, def: "127.0.0.1:20000", cmds: []string{"echo-server", "echo-client"},
		usage: "host:port to listen on (echo-server) or connect to (echo-client)"},
	{name: "payload", arg: "P", kind: kindString, def: "AB", cmds: []string{"echo-client"},
		usage: "the bytes to send"},
	{name: "timeout", arg: "D", kind: kindDuration, def: "5s", cmds: []string{"echo-client"},
		usage: "give up after D"},
	{name: "apply", kind: kindBool, cmds: []string{"cleanup"},
		usage: "remove what killed tracers left, instead of only listing it"},
	{name: "version", kind: kindBool, cmds: []string{""}, usage: "print the version and exit"},
}

// commands lists the subcommands in the order help shows them. It is
// filled in init because the run functions refer to the table.
var commands []*command

func init() {
	commands = []*command{
		{name: "", summary: "trace until SIGINT/SIGTERM or --duration",
			doc: "Trace TCP connections and write one JSON object per event to stdout (or, with --format text, " +
				"a ladder diagram and a verdict per connection). At exit a tally (events, segments, connections, " +
				"lost records) goes to stderr; when stderr is a terminal, a status line is refreshed there about once a second.",
			run: runTrace},
		{name: "verify", args: "[-- COMMAND ARGS...]", withCommand: true,
			summary: "trace (while COMMAND runs); exit 0 only if every connection is ok",
			doc: "Trace, while COMMAND runs if one is given (it starts once every hook is attached; its output goes to stderr), " +
				"and exit 0 only if at least one connection was seen, every connection's verdict is ok and every --expect holds; " +
				"1 otherwise, each failure named on stderr.",
			run: runVerify},
		{name: "analyze", args: "FILE", nargs: 1,
			summary: "rebuild timelines, findings and verdicts from a saved JSON stream",
			doc: "Read a JSON stream tcptracer wrote from FILE (- for standard input) and print the report the live run printed: " +
				"finding, violation and summary lines (json) or ladders and verdicts (text). A line that is not a complete " +
				"event is an error naming the file, the line and the field. Exit 1 when a verdict or an expectation fails, " +
				"each failure named on stderr.",
			run: runAnalyze},
		{name: "demo", summary: "trace the reference echo session on 127.0.0.1:20000 and exit",
			doc: "Trace lo, run an echo server on 127.0.0.1:20000 and a client (a child process) that sends AB, reads " +
				"the echo and closes; print the session's events and exit 0 once both sockets and the listener have closed.",
			run: runDemo},
		{name: "echo-server", summary: "echo server (the demo's and the tests' peer)",
			doc: "Accept connections and echo what each sends until it closes.", run: runEchoServer},
		{name: "echo-client", summary: "connect, send the payload, read the echo, close",
			doc: "Connect, send the payload, read it back, close; exit 1 if the echo differs.", run: runEchoClient},
		{name: "cleanup", summary: "list what killed tracers left attached; --apply removes it",
			doc: "List the clsact filters and qdiscs that tracers killed by SIGKILL or a crash left attached (a running " +
				"tracer's filters and other tools' are listed as left alone), and with --apply remove them. A dry run by default.",
			run: runCleanup},
		{name: "help", args: "[COMMAND]", nargs: -1, summary: "this text, or a command's flags",
			doc: "Print the top-level help, or a command's help.", run: runHelp},
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// flagsOf lists a command's flags in declaration order.
func flagsOf(cmd string) []*flagSpec {
	var out []*flagSpec
	for i := range flagSpecs {
		if flagSpecs[i].takenBy(cmd) {
			out = append(out, &flagSpecs[i])
		}
	}
	return out
}

func (f *flagSpec) takenBy(cmd string) bool {
	for _, c := range f.cmds {
		if c == cmd {
			return true
		}
	}
	return false
}

// defaultFor is the flag's default in command cmd, as typed.
func (f *flagSpec) defaultFor(cmd string) string {
	if d, ok := f.perCmd[cmd]; ok {
		return d
	}
	return f.def
}

// dashed is the flag as typed: --port, or -4 for one-letter names.
func (f *flagSpec) dashed() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

// displayName is the command as a person types it.
func (c *command) displayName() string {
	if c.name == "" {
		return "tcptracer"
	}
	return "tcptracer " + c.name
}
