package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// btfPath is a variable so tests can point it elsewhere.
var btfPath = "/sys/kernel/btf/vmlinux"

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

func checkBTF() error {
	if _, err := os.Stat(btfPath); err != nil {
		return fmt.Errorf("%w: %s: %v (tcptracer needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)", ErrNoBTF, btfPath, err)
	}
	return nil
}
