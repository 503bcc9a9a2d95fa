package tracer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// A clsact filter outlives the process that added it (tcx links do not), so
// a tracer that was killed leaves its classifier running. To find such
// orphans later, each filter carries its owner in the one free-form field
// the kernel keeps for it, the cls_bpf name (TCA_BPF_NAME):
//
//	tcptracer_ingress pid=4242 start=981234 pidns=4026531836 tracer=1 qdisc=1
//
// pid and start (the process start time in clock ticks after boot, field 22
// of /proc/PID/stat) name the process: a reused pid has another start time.
// pidns is the inode of the pid namespace the pid is counted in; another
// namespace's pid cannot be checked from here, so such filters are left
// alone. tracer tells several Tracers of one process apart. qdisc=1 says the
// clsact qdisc is tcptracer's (a tracer created it, or adopted it from
// tracers that had): whoever removes the last filter removes it too.
const filterPrefix = "tcptracer_"

// owner is who added a filter, as recorded in its name.
type owner struct {
	pid    int
	start  uint64
	pidns  uint64
	tracer uint32
	qdisc  bool
}

// OwnerState says whether the tracer that added a filter still runs.
type OwnerState int

const (
	OwnerRunning OwnerState = iota // its process is alive: left alone
	OwnerGone                      // its process exited or was killed: an orphan
	OwnerUnknown                   // no owner recorded, or in another pid namespace: left alone
)

func (s OwnerState) String() string {
	switch s {
	case OwnerRunning:
		return "running"
	case OwnerGone:
		return "gone"
	}
	return "unknown"
}

var tracerSeq atomic.Uint32

// selfOwner describes this process, for a new Tracer's filters.
func selfOwner() (owner, error) {
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil {
		return owner{}, err
	}
	ns, err := pidNamespace()
	if err != nil {
		return owner{}, err
	}
	return owner{pid: pid, start: start, pidns: ns, tracer: tracerSeq.Add(1)}, nil
}

func (o owner) filterName(dir string) string {
	q := 0
	if o.qdisc {
		q = 1
	}
	return fmt.Sprintf("%s%s pid=%d start=%d pidns=%d tracer=%d qdisc=%d", filterPrefix, dir, o.pid, o.start, o.pidns, o.tracer, q)
}

// parseFilterName reads an owner back. ok is false for names without one:
// another tool's filter, or one an older tcptracer added.
func parseFilterName(name string) (o owner, ok bool) {
	fields := strings.Fields(name)
	if len(fields) != 6 || !strings.HasPrefix(fields[0], filterPrefix) {
		return owner{}, false
	}
	vals := map[string]uint64{}
	for _, f := range fields[1:] {
		k, v, found := strings.Cut(f, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if !found || err != nil {
			return owner{}, false
		}
		vals[k] = n
	}
	o = owner{pid: int(vals["pid"]), start: vals["start"], pidns: vals["pidns"], tracer: uint32(vals["tracer"]), qdisc: vals["qdisc"] == 1}
	return o, o.pid > 0 && len(vals) == 5
}

// state checks the owner against the running processes; selfNS is the
// pid namespace this process sees them in.
func (o owner) state(selfNS uint64) OwnerState {
	if o.pidns != selfNS {
		return OwnerUnknown
	}
	st, err := readStat(o.pid)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return OwnerGone
	case err != nil:
		return OwnerUnknown
	case st.start != o.start || st.state == 'Z' || st.state == 'X':
		return OwnerGone // another process under a reused pid, or a dead one not yet reaped
	}
	return OwnerRunning
}

// procStat is what we read of /proc/PID/stat.
type procStat struct {
	state byte   // field 3: R, S, D, Z (zombie), X (dead), …
	start uint64 // field 22: start time in clock ticks after boot
}

func processStart(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.start, err
}

func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read state of pid %d: %w", pid, err)
	}
	return parseStat(data)
}

// parseStat reads fields 3 and 22 of /proc/PID/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after its
// last ')'.
func parseStat(stat []byte) (procStat, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procStat{}, errors.New("parse /proc stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	const stateField, startField = 3 - 3, 22 - 3 // fields 1 and 2 are before the ')'
	if len(fields) <= startField {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields after the command name", len(fields))
	}
	n, err := strconv.ParseUint(fields[startField], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat start time: %w", err)
	}
	return procStat{state: fields[stateField][0], start: n}, nil
}

func pidNamespace() (uint64, error) {
	fi, err := os.Stat("/proc/self/ns/pid")
	if err != nil {
		return 0, fmt.Errorf("find pid namespace: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("find pid namespace: no inode")
	}
	return st.Ino, nil
}
