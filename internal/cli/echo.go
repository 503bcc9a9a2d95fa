package cli

import (
	"context"
	"fmt"
	"time"

	"tcptracer/internal/echo"
)

const defaultEchoAddr = "127.0.0.1:20000"

func runEchoServer(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("echo-server")
	addr := fs.String("addr", defaultEchoAddr, "")
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, err := echo.Listen(*addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "echo server on %s\n", ln.Addr())
	return echo.Serve(ctx, ln)
}

func runEchoClient(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("echo-client")
	addr := fs.String("addr", defaultEchoAddr, "")
	payload := fs.String("payload", "AB", "")
	timeout := fs.Duration("timeout", 5*time.Second, "")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	got, err := echo.Client(ctx, *addr, []byte(*payload))
	if err != nil {
		return fmt.Errorf("echo client to %s: %w", *addr, err)
	}
	if string(got) != *payload {
		return fmt.Errorf("echo client to %s: sent %q, got %q back", *addr, *payload, got)
	}
	fmt.Fprintf(env.Stderr, "echo client: sent %q, got %q back\n", *payload, got)
	return nil
}
