package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"tcptracer/timeline"
	"tcptracer/tracer"
)

// traceFlags are the flags of every command that traces.
type traceFlags struct {
	opts     tracer.Options
	duration time.Duration
	port     uint
	pid      uint
	ipv4     bool
	ipv6     bool
	ifaces   listFlag
	ring     sizeFlag
	maxMem   memoryFlag
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func (f *traceFlags) register(fs *flag.FlagSet) {
	f.opts = tracer.DefaultOptions()
	f.ring = sizeFlag(f.opts.RingSize)
	fs.UintVar(&f.port, "port", uint(f.opts.Port), "")
	fs.Var(&f.ifaces, "iface", "")
	fs.UintVar(&f.pid, "pid", 0, "")
	fs.BoolVar(&f.ipv4, "4", false, "")
	fs.BoolVar(&f.ipv6, "6", false, "")
	fs.DurationVar(&f.duration, "duration", 0, "")
	fs.StringVar(&f.opts.Attach, "attach", tracer.ModeAuto, "")
	fs.StringVar(&f.opts.TC, "tc", tracer.ModeAuto, "")
	fs.StringVar(&f.opts.Netns, "netns", "", "")
	fs.Var(&f.ring, "ring-size", "")
	f.maxMem = defaultMaxMemory
	fs.Var(&f.maxMem, "max-memory", "")
	fs.BoolVar(&f.opts.Verbose, "verbose", false, "")
}

// finish checks the values and fills opts.
func (f *traceFlags) finish() error {
	if f.port > 65535 {
		return usagef("--port %d: want 0..65535", f.port)
	}
	if f.pid > 1<<22 {
		return usagef("--pid %d: not a process id", f.pid)
	}
	if f.ipv4 && f.ipv6 {
		return usagef("-4 and -6 exclude each other")
	}
	if f.duration < 0 {
		return usagef("--duration %v: want a positive duration", f.duration)
	}
	f.opts.Port = uint16(f.port)
	f.opts.PID = uint32(f.pid)
	f.opts.Ifaces = f.ifaces
	f.opts.RingSize = uint32(f.ring)
	switch {
	case f.ipv4:
		f.opts.Family = 4
	case f.ipv6:
		f.opts.Family = 6
	}
	if err := f.opts.Validate(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usagef("%v", err)
	}
	return nil
}

// listFlag collects repeated or comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// sizeFlag parses byte sizes such as 4096, 64K or 8M.
type sizeFlag uint32

func (s *sizeFlag) String() string { return strconv.FormatUint(uint64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(v, "K"):
		mult, v = 1<<10, strings.TrimSuffix(v, "K")
	case strings.HasSuffix(v, "M"):
		mult, v = 1<<20, strings.TrimSuffix(v, "M")
	case strings.HasSuffix(v, "G"):
		mult, v = 1<<30, strings.TrimSuffix(v, "G")
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n*mult > 1<<31 {
		return fmt.Errorf("size %q: want bytes, optionally with K, M or G", v)
	}
	*s = sizeFlag(n * mult)
	return nil
}

// The --max-memory range: below the minimum the tables' fixed part
// (about 4 MiB for the timeline's recent-connection sets) leaves too
// little for history.
const (
	defaultMaxMemory = memoryFlag(timeline.DefaultMaxMemory)
	minMaxMemory     = 16 << 20
	maxMaxMemory     = 1 << 40
)

// memoryFlag is --max-memory: bytes, with K, M or G (binary multiples).
type memoryFlag int64

func (m *memoryFlag) String() string { return strconv.FormatInt(int64(*m), 10) }

func (m *memoryFlag) Set(v string) error {
	num, mult := v, uint64(1)
	if i := len(v) - 1; i > 0 {
		switch v[i] {
		case 'K':
			num, mult = v[:i], 1<<10
		case 'M':
			num, mult = v[:i], 1<<20
		case 'G':
			num, mult = v[:i], 1<<30
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > maxMaxMemory/mult || n*mult < minMaxMemory {
		return fmt.Errorf("%q: want bytes with an optional K, M or G suffix, from 16M to 1024G (e.g. 256M)", v)
	}
	*m = memoryFlag(n * mult)
	return nil
}
