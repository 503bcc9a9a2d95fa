package cli

import (
	"io"
	"os"
	"testing"

	"tcptracer/internal/ptytest"
)

func TestIsTerminal(t *testing.T) {
	_, slave := ptytest.Open(t)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if !isTerminal(slave) {
		t.Error("a pty slave is not a terminal")
	}
	if isTerminal(null) || isTerminal(io.Discard) {
		t.Error("/dev/null or a plain writer counts as a terminal")
	}
}

// --color: always and never as said; auto only on a terminal and only
// without NO_COLOR.
func TestUseColor(t *testing.T) {
	_, tty := ptytest.Open(t)
	t.Setenv("NO_COLOR", "")
	for _, c := range []struct {
		when string
		w    io.Writer
		want bool
	}{
		{"always", io.Discard, true},
		{"never", tty, false},
		{"auto", tty, true},
		{"auto", io.Discard, false},
	} {
		if got := useColor(c.when, c.w); got != c.want {
			t.Errorf("useColor(%s, terminal=%v) = %v", c.when, c.w == tty, got)
		}
	}
	t.Setenv("NO_COLOR", "1")
	if useColor("auto", tty) || !useColor("always", tty) {
		t.Error("NO_COLOR: auto still colours, or always does not")
	}
}
