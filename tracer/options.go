package tracer

import (
	"fmt"
	"time"
)

// Attach modes for the function hooks (tcp_v4_connect, tcp_v6_connect,
// tcp_rcv_state_process) and for TC.
const (
	ModeAuto       = "auto"
	ModeFentry     = "fentry"
	ModeKprobe     = "kprobe"
	ModeTracepoint = "tracepoint"
	ModeTCX        = "tcx"
	ModeClsact     = "clsact"
)

// Options configure a Tracer. The zero value is not useful: start from
// DefaultOptions.
type Options struct {
	Port   uint16   // 0: every port
	PID    uint32   // 0: every process
	Family uint8    // 0: both, 4 or 6
	Ifaces []string // empty: every interface that is up
	// Netns, if set, is the path of a network namespace (e.g.
	// /run/netns/NAME) whose interfaces TC attaches to.
	Netns    string
	Attach   string // ModeAuto, ModeFentry, ModeKprobe or ModeTracepoint
	TC       string // ModeAuto, ModeTCX or ModeClsact
	RingSize uint32 // bytes, a power of two multiple of the page size
	Poll     time.Duration
	Verbose  bool // full verifier logs in errors
	// CaptureHeaders makes the kernel record the IP and TCP header bytes
	// of every wire segment (for a pcapng file; see HeadersHandler).
	// Off, the code is pruned at load and costs nothing.
	CaptureHeaders bool
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Port:     20000,
		Attach:   ModeAuto,
		TC:       ModeAuto,
		RingSize: 8 << 20,
		Poll:     5 * time.Millisecond,
	}
}

// Validate reports the first bad value.
func (o *Options) Validate() error {
	switch o.Attach {
	case ModeAuto, ModeFentry, ModeKprobe, ModeTracepoint:
	default:
		return fmt.Errorf("attach mode %q: want auto, fentry, kprobe or tracepoint", o.Attach)
	}
	switch o.TC {
	case ModeAuto, ModeTCX, ModeClsact:
	default:
		return fmt.Errorf("tc mode %q: want auto, tcx or clsact", o.TC)
	}
	if o.Family != 0 && o.Family != 4 && o.Family != 6 {
		return fmt.Errorf("family %d: want 4 or 6", o.Family)
	}
	if o.RingSize < 4096 || o.RingSize&(o.RingSize-1) != 0 {
		return fmt.Errorf("ring buffer size %d: want a power of two of at least 4096", o.RingSize)
	}
	if o.Poll <= 0 || o.Poll > time.Second {
		return fmt.Errorf("poll interval %v: want between 0 and 1s", o.Poll)
	}
	return nil
}

func (o *Options) kernelFamily() uint8 {
	switch o.Family {
	case 4:
		return afInet
	case 6:
		return afInet6
	}
	return 0
}
