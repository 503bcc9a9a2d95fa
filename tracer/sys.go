package tracer

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strconv"
	"strings"

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

// jiffyMicros is the length of a jiffy in microseconds, from the kernel's
// CONFIG_HZ (in /proc/config.gz or /boot/config-RELEASE), or 0 when
// neither is readable: the sender's rto is then reported as unknown.
func jiffyMicros() uint32 {
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + kernelRelease()} {
		if hz := configHZ(path); hz > 0 {
			return uint32(1000000 / hz)
		}
	}
	return 0
}

func configHZ(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return 0
		}
		defer z.Close()
		r = z
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
			hz, _ := strconv.Atoi(v)
			return hz
		}
	}
	return 0
}
