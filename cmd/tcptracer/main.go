// Command tcptracer traces TCP connections with eBPF and streams one JSON
// object per event. See README.md.
package main

import (
	"context"
	"os"

	"tcptracer/internal/cli"
)

func main() {
	ctx, stop := cli.SignalContext(context.Background())
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Self: self})
	stop()
	os.Exit(code)
}
