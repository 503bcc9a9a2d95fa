package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// A reader that went away (EPIPE) is a clean stop; any other write error
// is a failure.
func TestClosedPipeIsCleanStop(t *testing.T) {
	path := writeStream(t)
	for _, c := range []struct {
		err  error
		code int
	}{
		{&os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}, ExitOK},
		{errors.New("disk full"), ExitFailure},
		{&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, ExitFailure},
	} {
		var stderr bytes.Buffer
		code := Run(context.Background(), []string{"analyze", path}, Env{Stdin: strings.NewReader(""), Stdout: failWriter{c.err}, Stderr: &stderr})
		if code != c.code {
			t.Errorf("analyze writing into %v: exit %d, want %d; stderr %q", c.err, code, c.code, stderr.String())
		}
	}
}

// Closing the read end of stdout ends the context; other writers never do.
func TestStopWhenReaderGone(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := stopWhenReaderGone(context.Background(), w)
	defer cancel()
	if ctx.Err() != nil {
		t.Fatal("done while the reader is still there")
	}
	r.Close()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not done 10s after the reader closed")
	}
	file, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, other := range []io.Writer{&bytes.Buffer{}, file} {
		if _, ok := pipeFD(other); ok {
			t.Errorf("%T taken for a pipe", other)
		}
	}
}

func TestCleanupUsage(t *testing.T) {
	for _, args := range [][]string{{"cleanup", "extra"}, {"cleanup", "--force"}} {
		if _, stderr, code := run(args...); code != ExitUsage {
			t.Errorf("tcptracer %v: exit %d, stderr %q; want %d", args, code, stderr, ExitUsage)
		}
	}
}
