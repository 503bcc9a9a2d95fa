// Package version names the build of tcptracer. The Makefile stamps it
// with -ldflags "-X tcptracer/internal/version.stamp=$(git describe --tags
// --always --dirty)"; a plain `go build` falls back to the VCS revision Go
// records in the binary.
package version

import "runtime/debug"

// stamp is set at link time; empty in an unstamped build.
var stamp string

// String returns the stamped version, else the module version or the VCS
// revision from the build info ("-dirty" when the tree had changes), else
// "devel".
func String() string {
	if stamp != "" {
		return stamp
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
