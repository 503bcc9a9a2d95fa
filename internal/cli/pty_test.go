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
