package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// btfPath is a variable so tests can point it elsewhere.
var btfPath = defaultBTFPath

const defaultBTFPath = "/sys/kernel/btf/vmlinux"

// Capabilities from linux/capability.h.
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// ErrPrivileges and ErrNoBTF let callers tell the user what to fix.
var (
	ErrPrivileges = errors.New("insufficient privileges")
	ErrNoBTF      = errors.New("kernel BTF not available")
)

// checkPrivileges fails early, naming the missing capabilities, instead of
// letting the first bpf() call fail with a bare EPERM.
func checkPrivileges() error {
	eff, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	var missing []string
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if !has(capBPF) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) && !has(capSysAdmin) {
		missing = append(missing, "CAP_PERFMON")
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s (run as root, e.g. with sudo)", ErrPrivileges, strings.Join(missing, ", "))
	}
	return nil
}

func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

// checkBTF loads the kernel's BTF, not just looks for the file: the
// programs are CO-RE, and a file that is there but does not parse would
// only fail later, at load, with a relocation error and no hint.
func checkBTF() error {
	const hint = "tcptracer needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.8+)"
	if _, err := os.Stat(btfPath); err != nil {
		return fmt.Errorf("%w: %s: %v (%s)", ErrNoBTF, btfPath, err, hint)
	}
	var err error
	if btfPath == defaultBTFPath {
		_, err = btf.LoadKernelSpec() // cached: the loader uses the same spec
	} else {
		_, err = btf.LoadSpec(btfPath)
	}
	if err != nil {
		return fmt.Errorf("%w: load %s: %v (the file is there but is not valid BTF: %s, and the file must be the running kernel's own)", ErrNoBTF, btfPath, err, hint)
	}
	return nil
}
