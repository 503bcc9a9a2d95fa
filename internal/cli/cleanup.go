package cli

import (
	"context"
	"fmt"

	"tcptracer/tracer"
)

// runCleanup lists what tracers that were killed (SIGKILL, a crash) left
// attached, and with --apply removes it. Running tracers' filters, and
// everything of other tools, are listed as left alone.
func runCleanup(_ context.Context, in *invocation, env Env) error {
	apply := in.bool("apply")
	c, err := tracer.PlanCleanup(in.str("netns"))
	if err != nil {
		return err
	}
	defer c.Close()
	printCleanup(c, apply, env)
	if !apply {
		return nil
	}
	if err := c.Apply(); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}

func printCleanup(c *tracer.Cleanup, apply bool, env Env) {
	verb := "would remove"
	if apply {
		verb = "removing"
	}
	for _, f := range c.Remove {
		fmt.Fprintf(env.Stdout, "%s: %s\n", verb, f)
	}
	for _, q := range c.Qdiscs {
		fmt.Fprintf(env.Stdout, "%s: the clsact qdisc on %s (a tracer added it; nothing else is attached)\n", verb, q)
	}
	for _, f := range c.Found {
		switch f.State {
		case tracer.OwnerRunning:
			fmt.Fprintf(env.Stdout, "left alone: %s\n", f)
		case tracer.OwnerUnknown:
			// No owner to check here: a person has to decide.
			fmt.Fprintf(env.Stdout, "left alone: %s; if no tracer owns it: tc filter del dev %s %s pref %d handle %#x bpf\n",
				f, f.Iface, f.Direction, f.Prio, f.Handle)
		}
	}
	switch {
	case len(c.Remove) == 0 && len(c.Qdiscs) == 0:
		fmt.Fprintln(env.Stdout, "nothing to remove")
	case !apply:
		fmt.Fprintln(env.Stdout, "(dry run: run with --apply to remove)")
	}
}
