package tracer

import (
	"golang.org/x/sys/unix"

	"tcptracer/internal/version"
)

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// monotonicNow matches bpf_ktime_get_ns (CLOCK_MONOTONIC).
func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// buildVersion names the build: the stamped version, else the VCS revision
// (package version).
func buildVersion() string { return version.String() }
