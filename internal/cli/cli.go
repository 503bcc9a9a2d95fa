// Package cli implements the tcptracer command line: flag parsing,
// subcommands and the pipeline from tracer to output.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"tcptracer/internal/version"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1 // a runtime error, or verify found a violation
	ExitUsage   = 2
)

// errUsage marks errors that come from bad command lines.
var errUsage = errors.New("usage")

type usageError struct {
	msg string
	cmd *command // the command whose line it was, for the hint; nil before one is known
}

func (e usageError) Error() string   { return e.msg }
func (e usageError) Is(t error) bool { return t == errUsage }

func usagef(format string, a ...any) error { return usageError{msg: fmt.Sprintf(format, a...)} }

// Env is what a command may touch.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Self is the path of the tcptracer binary, for the demo's client.
	Self string
}

// Run runs the command line args (without the program name) and returns
// the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	err := dispatch(ctx, args, env)
	var ex exitError
	switch {
	case err == nil:
		return ExitOK
	case isClosedPipe(err):
		return ExitOK
	case errors.As(err, &ex):
		return ex.code
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.Stderr, "tcptracer: %v\n%s\n", err, usageHint(err))
		return ExitUsage
	default:
		fmt.Fprintf(env.Stderr, "tcptracer: %v\n", err)
		return ExitFailure
	}
}

// exitError ends a command with a code and nothing more to print.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// usageHint points to the help of the command the bad line was for.
func usageHint(err error) string {
	var ue usageError
	if errors.As(err, &ue) && ue.cmd != nil && ue.cmd.name != "" && ue.cmd.name != "help" {
		return fmt.Sprintf("Run '%s --help' for its flags.", ue.cmd.displayName())
	}
	return "Run 'tcptracer help' for usage."
}

// forCommand records in a usage error which command it was about.
func forCommand(err error, cmd *command) error {
	var ue usageError
	if errors.As(err, &ue) && ue.cmd == nil {
		ue.cmd = cmd
		return ue
	}
	return err
}

func dispatch(ctx context.Context, args []string, env Env) error {
	cmd := findCommand("")
	if len(args) > 0 && args[0] != "" {
		if c := findCommand(args[0]); c != nil {
			cmd, args = c, args[1:]
		} else if !strings.HasPrefix(args[0], "-") {
			return usagef("unknown command %q; the commands are %s", args[0], strings.Join(subcommandNames(), ", "))
		}
	}
	in, err := parseArgs(cmd, args)
	switch {
	case errors.Is(err, errHelp) && cmd.name == "":
		writeTopHelp(env.Stdout)
		return nil
	case errors.Is(err, errHelp):
		writeCommandHelp(env.Stdout, cmd)
		return nil
	case err != nil:
		return forCommand(err, cmd)
	case cmd.name == "" && in.bool("version"):
		fmt.Fprintf(env.Stdout, "tcptracer %s\n", version.String())
		return nil
	}
	return forCommand(cmd.run(ctx, in, env), cmd)
}
