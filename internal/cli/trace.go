package cli

import (
	"context"
	"fmt"

	"tcptracer/conn"
	"tcptracer/event"
	"tcptracer/output"
	"tcptracer/tracer"
)

// pipeline is the tracer's Handler: annotate, let a watcher look, write.
type pipeline struct {
	tracker *conn.Tracker
	json    *output.JSONWriter
	watch   func(ev *event.Event)
}

func newPipeline(env Env) *pipeline {
	return &pipeline{tracker: conn.NewTracker(nil), json: output.NewJSONWriter(env.Stdout)}
}

func (p *pipeline) HandleEvent(ev *event.Event) error {
	p.tracker.Annotate(ev)
	if p.watch != nil {
		p.watch(ev)
	}
	return p.json.Write(ev)
}

func (p *pipeline) Flush() error { return p.json.Flush() }

func runTrace(ctx context.Context, args []string, env Env) error {
	var f traceFlags
	fs := newFlagSet("tcptracer")
	f.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if err := f.finish(); err != nil {
		return err
	}
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	return trace(ctx, f.opts, newPipeline(env))
}

// trace attaches, streams until ctx ends, and always detaches.
func trace(ctx context.Context, o tracer.Options, p *pipeline) error {
	t, err := tracer.New(o)
	if err != nil {
		return err
	}
	runErr := t.Run(ctx, p)
	closeErr := t.Close()
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("detach: %w", closeErr)
	}
	return nil
}
