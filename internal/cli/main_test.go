package cli

import (
	"context"
	"os"
	"testing"
)

// With cliRoleEnv set, the test binary is tcptracer itself, so the demo
// can run it as its echo client (Env.Self) as it runs the real binary.
const cliRoleEnv = "TCPTRACER_CLI_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliRoleEnv) != "" {
		os.Exit(Run(context.Background(), os.Args[1:], Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	os.Exit(m.Run())
}
