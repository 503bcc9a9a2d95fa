package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"tcptracer/event"
	"tcptracer/output"
)

// repoRoot is the module root: the benchmark builds the tracer from it.
func repoRoot(goBin string) (string, error) {
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			return filepath.Dir(mod), nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository: %w", err)
	}
	return wd, nil
}

// makeScratch prefers tmpfs: the tracer's output goes to a file there,
// which costs it a memory copy, cheaper than a pipe to a counting process.
func makeScratch(cfg *config) error {
	dir := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir = "/dev/shm"
	}
	d, err := os.MkdirTemp(dir, "tcptracer-bench.")
	if err != nil {
		return fmt.Errorf("create scratch directory: %w", err)
	}
	cfg.scratch = d
	return nil
}

func preflight(cfg *config) error {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return fmt.Errorf("tcpdump not found (make bench installs it through .ci/deps.sh test): %w", err)
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("taskset not found (util-linux), needed for the pinned workload: %w", err)
	}
	for _, p := range []int{port, otherPort} {
		if err := portFree(p); err != nil {
			return err
		}
	}
	return nil
}

// buildBinaries puts the load generator and the tracer in the scratch
// directory, not bin/: a rebuild of bin/tcptracer during the run must not
// change what is measured.
func buildBinaries(ctx context.Context, cfg *config) error {
	cfg.loadBin = filepath.Join(cfg.scratch, "load")
	if err := goBuild(ctx, cfg, cfg.loadBin, "./bench/load"); err != nil {
		return err
	}
	if cfg.tracer != "" {
		logf("measuring %s", cfg.tracer)
		return nil
	}
	cfg.tracer = filepath.Join(cfg.scratch, "tcptracer")
	if err := goBuild(ctx, cfg, cfg.tracer, "./cmd/tcptracer"); err != nil {
		return err
	}
	logf("measuring the tracer built from %s", describeRev(cfg.root))
	return nil
}

func goBuild(ctx context.Context, cfg *config, out, pkg string) error {
	cmd := exec.CommandContext(ctx, cfg.goBin, "build", "-o", out, pkg)
	cmd.Dir, cmd.Stderr = cfg.root, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func describeRev(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "an unknown revision"
	}
	return "revision " + strings.TrimSpace(string(out))
}

// countStream decodes every line of the tracer's output with the
// project's decoder: a line it cannot read fails the run.
func countStream(r io.Reader) (segs, lost uint64, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev event.Event
	for n := 1; sc.Scan(); n++ {
		if !isEventLine(sc.Bytes()) {
			continue // the analysis report's lines (summary, finding, ...)
		}
		if err := output.Decode(sc.Bytes(), &ev); err != nil {
			return 0, 0, fmt.Errorf("tracer output line %d: %w", n, err)
		}
		switch ev.Type {
		case event.TypeSegment:
			segs++
		case event.TypeLost:
			lost += ev.Count
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read tracer output: %w", err)
	}
	return segs, lost, nil
}

// isEventLine tells event lines from the report's lines interleaved with
// them: every line starts with its type.
func isEventLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte(`{"type":"`))
	if !ok {
		return true // let the decoder say what is wrong with it
	}
	name, _, _ := bytes.Cut(rest, []byte(`"`))
	return event.ParseType(string(name)) != 0
}
