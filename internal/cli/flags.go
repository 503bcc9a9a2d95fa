package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"tcptracer/tracer"
)

// procRoot is where process ids are looked up; tests point it elsewhere.
var procRoot = "/proc"

// traceOptions turns the tracing flags of a command into tracer options,
// checking every value against what the tracer and the host accept.
func traceOptions(in *invocation) (tracer.Options, error) {
	o := tracer.DefaultOptions()
	if in.takes("port") {
		port := in.uint("port")
		if port > 65535 {
			return o, usagef("--port %d: want 0..65535 (0 traces every port)", port)
		}
		o.Port = uint16(port)
	}
	if in.takes("pid") && in.isSet("pid") {
		pid, err := checkPID(in.uint("pid"))
		if err != nil {
			return o, err
		}
		o.PID = pid
	}
	if in.takes("4") {
		switch {
		case in.bool("4") && in.bool("6"):
			return o, usagef("-4 and -6 exclude each other (give neither for both families)")
		case in.bool("4"):
			o.Family = 4
		case in.bool("6"):
			o.Family = 6
		}
	}
	if in.takes("netns") {
		if err := checkNetns(in.str("netns")); err != nil {
			return o, err
		}
		o.Netns = in.str("netns")
	}
	o.Ifaces = in.list("iface")
	o.Attach, o.TC = in.str("attach"), in.str("tc")
	o.RingSize = uint32(in.vals["ring-size"].(uint64))
	o.Verbose = in.bool("verbose")
	if err := o.Validate(); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
}

// checkPID accepts the id of a running process (a thread group leader):
// the kernel filter compares it with the socket owner's tgid, so a thread
// id or a process that is gone would silently match nothing.
func checkPID(n uint64) (uint32, error) {
	if n == 0 || n > 1<<22 {
		return 0, usagef("--pid %d: not a process id (want 1..%d)", n, 1<<22)
	}
	tgid, err := readTgid(n)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, usagef("--pid %d: no such process", n)
	case err != nil:
		return 0, fmt.Errorf("check --pid %d: %w", n, err)
	case tgid != n:
		return 0, usagef("--pid %d: that is a thread of process %d; give the process id %d", n, tgid, tgid)
	}
	return uint32(n), nil
}

func readTgid(pid uint64) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("%s/%d/status", procRoot, pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Tgid:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no Tgid line in %s/%d/status", procRoot, pid)
}

func checkNetns(path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return usagef("--netns %q: %v (want the path of a network namespace, e.g. /run/netns/NAME)", path, errors.Unwrap(err))
	}
	return nil
}
