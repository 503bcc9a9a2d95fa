package cli

import (
	"context"
	"fmt"

	"tcptracer/internal/echo"
)

const defaultEchoAddr = "127.0.0.1:20000"

func runEchoServer(ctx context.Context, in *invocation, env Env) error {
	ln, err := echo.Listen(in.str("addr"))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "echo server on %s\n", ln.Addr())
	return echo.Serve(ctx, ln)
}

func runEchoClient(ctx context.Context, in *invocation, env Env) error {
	addr, payload := in.str("addr"), in.str("payload")
	ctx, cancel := context.WithTimeout(ctx, in.dur("timeout"))
	defer cancel()
	got, err := echo.Client(ctx, addr, []byte(payload))
	if err != nil {
		return fmt.Errorf("echo client to %s: %w", addr, err)
	}
	if string(got) != payload {
		return fmt.Errorf("echo client to %s: sent %q, got %q back", addr, payload, got)
	}
	fmt.Fprintf(env.Stderr, "echo client: sent %q, got %q back\n", payload, got)
	return nil
}
