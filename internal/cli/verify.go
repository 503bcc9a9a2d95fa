package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"tcptracer/analysis/expect"
	"tcptracer/event"
	"tcptracer/tracer"
)

// runVerify traces (while running a command, if one follows --) and exits
// 0 only if every connection's verdict is ok and every --expect holds.
func runVerify(ctx context.Context, args []string, env Env) error {
	var f traceFlags
	var exps listFlag
	fs := newFlagSet("verify")
	f.register(fs)
	format := fs.String("format", "text", "")
	grace := fs.Duration("grace", 2*time.Second, "")
	fs.Var(&exps, "expect", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.finish(); err != nil {
		return err
	}
	ro, err := reportOptions(*format, env.Stdout)
	if err != nil {
		return err
	}
	ro.MaxMemory = int64(f.maxMem)
	if ro.Expectations, err = expect.Parse(exps...); err != nil {
		return usagef("--expect: %v", err)
	}
	cmd := fs.Args()
	if len(cmd) == 0 && f.duration == 0 {
		fmt.Fprintln(env.Stderr, "verify: tracing until SIGINT/SIGTERM (give --duration or -- COMMAND to stop by itself)")
	}
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	p := newPipeline(env.Stdout, ro)
	cmdErr, err := verifyTrace(ctx, f.opts, p, cmd, *grace, env)
	if err != nil {
		return err
	}
	return verdict(p, cmdErr, env)
}

// verifyTrace runs the tracer, and the command once the tracer is ready.
func verifyTrace(ctx context.Context, o tracer.Options, p *pipeline, cmd []string, grace time.Duration, env Env) (error, error) {
	t, err := tracer.New(o)
	if err != nil {
		return nil, err
	}
	reportSwept(t.Swept(), env.Stderr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan struct{})
	p.watch = func(ev *event.Event) {
		if ev.Type == event.TypeStart {
			close(started)
		}
	}
	done := runTracer(ctx, t, p)
	var cmdErr error
	if len(cmd) > 0 {
		select {
		case <-started:
			cmdErr = runCommand(ctx, cmd, env)
			waitSettled(ctx, p, grace)
			cancel()
		case err := <-done:
			return nil, finishTrace(t, err, p)
		}
	}
	return cmdErr, finishTrace(t, <-done, p)
}

// runCommand runs the traced command; its output goes to stderr so that
// stdout stays the report.
func runCommand(ctx context.Context, args []string, env Env) error {
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Stdout, c.Stderr = env.Stderr, env.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("command %q: %w", args[0], err)
	}
	return nil
}

// waitSettled gives the connections the command made up to grace to end,
// so their closing segments are in the report.
func waitSettled(ctx context.Context, p *pipeline, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if p.open.Load() == 0 {
			time.Sleep(20 * time.Millisecond) // a poll round for late state events
			return
		}
	}
}

func verdict(p *pipeline, cmdErr error, env Env) error {
	fails := p.report.Failures()
	n := p.report.Conns()
	var errs []error
	if cmdErr != nil {
		errs = append(errs, cmdErr)
	}
	if n == 0 {
		errs = append(errs, errors.New("no connection matched the filters"))
	}
	for _, f := range fails {
		errs = append(errs, errors.New(f.String()))
	}
	if len(errs) == 0 {
		fmt.Fprintf(env.Stderr, "verify: %d connection(s), all ok\n", n)
		return nil
	}
	fmt.Fprintf(env.Stderr, "verify: FAILED (%d connection(s))\n", n)
	for _, e := range errs {
		fmt.Fprintf(env.Stderr, "  %v\n", e)
	}
	return exitError{ExitFailure}
}
