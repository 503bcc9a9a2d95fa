package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"tcptracer/analysis/expect"
	"tcptracer/event"
	"tcptracer/tracer"
)

// runVerify traces (while running a command, if one follows --) and exits
// 0 only if every connection's verdict is ok and every --expect holds.
func runVerify(ctx context.Context, in *invocation, env Env) error {
	o, err := traceOptions(in)
	if err != nil {
		return err
	}
	ro, err := reportOptions(in, env.Stdout)
	if err != nil {
		return err
	}
	if ro.Expectations, err = expect.Parse(in.list("expect")...); err != nil {
		return usagef("--expect: %v", err)
	}
	cmd := in.command
	run := commandRunner{}
	if name := in.str("user"); name != "" {
		if len(cmd) == 0 {
			return usagef("verify: --user %s needs a COMMAND to run (verify --user NAME -- COMMAND ARGS...)", name)
		}
		if run.user, err = lookupUser(name); err != nil {
			return err
		}
	}
	d := in.dur("duration")
	if len(cmd) == 0 && d == 0 {
		fmt.Fprintln(env.Stderr, "verify: tracing until SIGINT/SIGTERM (give --duration or -- COMMAND to stop by itself)")
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	p := newPipeline(env.Stdout, ro)
	l := startLive(p, env)
	cmdErr, err := verifyTrace(ctx, o, p, cmd, in.dur("grace"), env, run)
	l.finish()
	if err != nil {
		return err
	}
	return verdict(p, cmdErr, env)
}

// verifyTrace runs the tracer, and the command once the tracer is ready.
func verifyTrace(ctx context.Context, o tracer.Options, p *pipeline, cmd []string, grace time.Duration, env Env, run commandRunner) (error, error) {
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
			cmdErr = run.run(ctx, cmd, env)
			waitSettled(ctx, p, grace)
			cancel()
		case err := <-done:
			return nil, finishTrace(t, err, p)
		}
	}
	return cmdErr, finishTrace(t, <-done, p)
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
	n := p.report.Conns()
	var errs []error
	if cmdErr != nil {
		errs = append(errs, cmdErr)
	}
	if n == 0 {
		errs = append(errs, errors.New("no connection matched the filters"))
	}
	if !reportFailures(env.Stderr, "verify", n, p.report.Failures(), errs...) {
		return exitError{ExitFailure}
	}
	return nil
}

// reportFailures names on stderr every failed verdict and expectation (and
// errs), in every output format, so a person sees why the exit code is 1.
// It reports whether all was well.
func reportFailures(stderr io.Writer, who string, conns int, fails []expect.Failure, errs ...error) bool {
	for _, f := range fails {
		errs = append(errs, errors.New(f.String()))
	}
	if len(errs) == 0 {
		fmt.Fprintf(stderr, "%s: %d connection(s), all ok\n", who, conns)
		return true
	}
	fmt.Fprintf(stderr, "%s: FAILED (%d connection(s))\n", who, conns)
	for _, e := range errs {
		fmt.Fprintf(stderr, "  %v\n", e)
	}
	return false
}
