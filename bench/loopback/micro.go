package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// microPkgs hold the user-side hot path's benchmarks.
var microPkgs = []string{"./tracer", "./conn", "./output", "./internal/cli", "./capture"}

// micro is one Go benchmark's figures.
type micro struct {
	name    string
	nsOp    float64
	rate    float64 // records/s or events/s as the benchmark reports it
	bytesOp float64
	allocs  float64
}

// runMicro runs the Go micro-benchmarks on one core (-cpu 1): the goals
// are per core.
func runMicro(ctx context.Context, cfg *config) ([]micro, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-cpu", "1", "-count", "1"}, microPkgs...)
	cmd := exec.CommandContext(ctx, cfg.goBin, args...)
	cmd.Dir, cmd.Stderr = cfg.root, os.Stderr
	logf("running the Go micro-benchmarks: go %s", strings.Join(args, " "))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench: %w\n%s", err, out)
	}
	return parseMicro(out), nil
}

// parseMicro reads the result lines of go test -bench: name, iterations,
// then value-unit pairs.
func parseMicro(out []byte) []micro {
	var ms []micro
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		m := micro{name: strings.TrimSuffix(f[0], "-1")}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				m.nsOp = v
			case "records/s", "events/s":
				m.rate = v
			case "B/op":
				m.bytesOp = v
			case "allocs/op":
				m.allocs = v
			}
		}
		ms = append(ms, m)
	}
	return ms
}
