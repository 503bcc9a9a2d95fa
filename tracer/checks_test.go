package tracer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

// A verifier rejection names its last line by default and carries the
// whole log with --verbose.
func TestVerifierError(t *testing.T) {
	log := []string{"0: R1=ctx() R10=fp0", "1: (85) call bpf_get_current_pid_tgid#14", "unknown func bpf_get_current_pid_tgid#14"}
	ve := &ebpf.VerifierError{Cause: syscall.EINVAL, Log: log}
	err := fmt.Errorf("program tc_egress: %w", ve)

	short := verifierError(err, false).Error()
	if !strings.Contains(short, "unknown func") || strings.Contains(short, "R10=fp0") || !strings.Contains(short, "--verbose") {
		t.Errorf("short form %q: want the last line and a pointer to --verbose, not the whole log", short)
	}
	long := verifierError(err, true).Error()
	for _, l := range log {
		if !strings.Contains(long, l) {
			t.Errorf("verbose form lacks %q: %s", l, long)
		}
	}
	if other := verifierError(errors.New("map create: no space"), false); !strings.Contains(other.Error(), "no space") {
		t.Errorf("other errors must pass through: %v", other)
	}
}

func TestNoBTF(t *testing.T) {
	old := btfPath
	defer func() { btfPath = old }()
	btfPath = "/nonexistent/btf/vmlinux"
	err := checkBTF()
	if !errors.Is(err, ErrNoBTF) || !strings.Contains(err.Error(), "CONFIG_DEBUG_INFO_BTF") {
		t.Errorf("checkBTF with no BTF: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*Options)
		says string
	}{
		{"attach", func(o *Options) { o.Attach = "xdp" }, "attach mode"},
		{"tc", func(o *Options) { o.TC = "ebpf" }, "tc mode"},
		{"family", func(o *Options) { o.Family = 5 }, "family"},
		{"ring", func(o *Options) { o.RingSize = 5000 }, "ring buffer"},
		{"poll", func(o *Options) { o.Poll = 0 }, "poll"},
	} {
		o := DefaultOptions()
		c.mod(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error about %s", c.name, err, c.says)
		}
	}
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// A file that is there but is not BTF fails at the check, with the hint.
func TestGarbageBTF(t *testing.T) {
	old := btfPath
	defer func() { btfPath = old }()
	btfPath = filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(btfPath, []byte("not BTF at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := checkBTF()
	if !errors.Is(err, ErrNoBTF) || !strings.Contains(err.Error(), "not valid BTF") || !strings.Contains(err.Error(), "CONFIG_DEBUG_INFO_BTF") {
		t.Errorf("checkBTF with a garbage file: %v", err)
	}
}
