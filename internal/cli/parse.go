package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// errHelp asks for the command's help (-h, --help).
var errHelp = errors.New("help requested")

// invocation is a parsed command line: the values of the command's flags
// (defaults where not given), its positional arguments and, for a command
// that runs one, the command line after them.
type invocation struct {
	cmd     *command
	vals    map[string]any
	given   map[string]bool
	args    []string
	command []string
}

// parseArgs reads args for cmd. Flags may come before and after
// positional arguments; "--" ends the flags. In a command that runs
// another (verify), the first positional argument starts that command.
func parseArgs(cmd *command, args []string) (*invocation, error) {
	in := &invocation{cmd: cmd, vals: map[string]any{}, given: map[string]bool{}}
	for _, f := range flagsOf(cmd.name) {
		if err := in.setDefault(f); err != nil {
			return nil, err
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return in, in.positional(args[i+1:], true)
		case a == "-" || !strings.HasPrefix(a, "-"):
			if cmd.withCommand {
				return in, in.positional(args[i:], true)
			}
			in.args = append(in.args, a)
			continue
		}
		n, err := in.flag(args, i)
		if err != nil {
			return nil, err
		}
		i += n
	}
	return in, in.positional(nil, false)
}

// flag reads the flag at args[i] and returns how many more arguments it
// consumed (1 when its value is the next argument).
func (in *invocation) flag(args []string, i int) (int, error) {
	a := args[i]
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	name, val, hasVal := strings.Cut(name, "=")
	if name == "h" || name == "help" {
		return 0, errHelp
	}
	f := in.lookup(name)
	if f == nil {
		return 0, usagef("%s: unknown flag %s", in.cmd.displayName(), a)
	}
	used := 0
	if !hasVal && f.kind == kindBool {
		val = "true"
	} else if !hasVal {
		if i+1 >= len(args) {
			return 0, usagef("%s needs a value: %s %s", f.dashed(), f.dashed(), f.arg)
		}
		val, used = args[i+1], 1
	}
	if f.kind == kindList && !in.given[f.name] {
		in.vals[f.name] = []string(nil) // given values replace the default
	}
	if err := in.set(f, val); err != nil {
		return 0, err
	}
	in.given[f.name] = true
	return used, nil
}

func (in *invocation) lookup(name string) *flagSpec {
	for _, f := range flagsOf(in.cmd.name) {
		if f.name == name {
			return f
		}
	}
	return nil
}

// positional checks the positional arguments once the flags are read;
// rest, if given, is the command line to run (or extra arguments).
func (in *invocation) positional(rest []string, hasRest bool) error {
	if in.cmd.withCommand {
		in.command = rest
		return nil
	}
	in.args = append(in.args, rest...)
	switch n := in.cmd.nargs; {
	case n < 0:
		return nil
	case len(in.args) > n && n == 0:
		return usagef("%s: unexpected argument %q", in.cmd.displayName(), in.args[0])
	case len(in.args) != n:
		return usagef("%s: want one %s argument (- for standard input), got %d", in.cmd.name, in.cmd.args, len(in.args))
	}
	return nil
}

func (in *invocation) setDefault(f *flagSpec) error {
	d := f.defaultFor(in.cmd.name)
	switch {
	case f.kind == kindList:
		in.vals[f.name] = []string(nil)
		if d == "" {
			return nil
		}
	case f.kind == kindBool && d == "":
		d = "false"
	case d == "" && (f.kind == kindUint || f.kind == kindDuration):
		d = "0"
	}
	if err := in.set(f, d); err != nil {
		return fmt.Errorf("default of %s in %s: %w", f.dashed(), in.cmd.displayName(), err)
	}
	return nil
}

// set parses val for f. Error messages show the value as it was given and
// say what is valid.
func (in *invocation) set(f *flagSpec, val string) error {
	bad := func(want string) error { return usagef("%s %q: %s", f.dashed(), val, want) }
	switch f.kind {
	case kindBool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return bad("want true or false")
		}
		in.vals[f.name] = b
	case kindString:
		in.vals[f.name] = val
	case kindUint:
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return bad("want a non-negative decimal integer")
		}
		in.vals[f.name] = n
	case kindDuration:
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return bad("want a non-negative duration such as 500ms, 10s or 1m")
		}
		in.vals[f.name] = d
	case kindMemory:
		n, err := parseMemory(val)
		if err != nil {
			return bad(err.Error())
		}
		in.vals[f.name] = n
	case kindSize:
		n, err := parseSize(val)
		if err != nil {
			return bad(err.Error())
		}
		in.vals[f.name] = n
	case kindEnum:
		for _, v := range f.values {
			if v == val {
				in.vals[f.name] = val
				return nil
			}
		}
		return bad("want one of " + strings.Join(f.values, ", "))
	case kindList:
		list, err := appendList(in.vals[f.name].([]string), val)
		if err != nil {
			return bad(err.Error())
		}
		in.vals[f.name] = list
	}
	return nil
}

// appendList adds the comma-separated items of v, each once.
func appendList(list []string, v string) ([]string, error) {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, errors.New("empty item; give one or more names separated by commas")
		}
		if !contains(list, s) {
			list = append(list, s)
		}
	}
	return list, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Ring buffer sizes the kernel takes: a power of two pages, and no more
// than we can reasonably lock.
const (
	minSize = 4 << 10
	maxSize = 1 << 30
)

// The --max-memory range: below the minimum the tables' fixed part
// (about 4 MiB for the timeline's recent-connection sets) leaves too
// little for history.
const (
	minMemory = 16 << 20
	maxMemory = 1 << 40
)

// splitBytes reads a byte count with an optional K, M or G suffix as the
// number and the suffix's multiplier (1 without one).
func splitBytes(v string) (n, mult uint64, err error) {
	num, mult := v, uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if s, ok := strings.CutSuffix(strings.ToUpper(v), u.suffix); ok {
			num, mult = s, u.mult
		}
	}
	n, err = strconv.ParseUint(num, 10, 64)
	return n, mult, err
}

// parseMemory reads a --max-memory value: 268435456, 256M or 2G.
func parseMemory(v string) (uint64, error) {
	n, mult, err := splitBytes(v)
	switch {
	case err != nil:
		return 0, errors.New("want bytes, optionally with a K, M or G suffix (e.g. 256M)")
	case n > maxMemory/mult:
		return 0, errors.New("too large: at most 1024G")
	case n*mult < minMemory:
		return 0, errors.New("too small: at least 16M")
	}
	return n * mult, nil
}

// parseSize reads 4096, 64K, 8M or 1G.
func parseSize(v string) (uint64, error) {
	n, mult, err := splitBytes(v)
	switch {
	case err != nil:
		return 0, errors.New("want bytes, optionally with a K, M or G suffix (e.g. 8M)")
	case n > maxSize/mult || n*mult > maxSize:
		return 0, errors.New("too large: at most 1G")
	case n*mult < minSize:
		return 0, errors.New("too small: at least 4K")
	case n*mult&(n*mult-1) != 0:
		return 0, errors.New("want a power of two (4K, 8K, ... 8M, ... 1G)")
	}
	return n * mult, nil
}

func (in *invocation) str(name string) string        { return in.vals[name].(string) }
func (in *invocation) uint(name string) uint64       { return in.vals[name].(uint64) }
func (in *invocation) bool(name string) bool         { return in.vals[name].(bool) }
func (in *invocation) dur(name string) time.Duration { return in.vals[name].(time.Duration) }
func (in *invocation) list(name string) []string     { return in.vals[name].([]string) }
func (in *invocation) isSet(name string) bool        { return in.given[name] }
func (in *invocation) takes(name string) bool        { _, ok := in.vals[name]; return ok }
