package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"tcptracer/event"
)

// prog names a program of the object and how it attaches.
type prog struct {
	name   string
	kind   string // fentry, fexit, kprobe, kretprobe or tp_btf
	target string // kernel function or tracepoint
}

// Programs of each mode for the function hooks, better modes first.
var funcModes = []struct {
	mode  string
	progs []prog
}{
	{ModeFentry, []prog{
		{"fentry_v4_connect", "fentry", "tcp_v4_connect"},
		{"fexit_v4_connect", "fexit", "tcp_v4_connect"},
		{"fentry_v6_connect", "fentry", "tcp_v6_connect"},
		{"fexit_v6_connect", "fexit", "tcp_v6_connect"},
		{"fentry_rcv_state", "fentry", "tcp_rcv_state_process"},
		{"fexit_accept", "fexit", "inet_csk_accept"},
	}},
	{ModeKprobe, []prog{
		{"kprobe_v4_connect", "kprobe", "tcp_v4_connect"},
		{"kretprobe_v4_connect", "kretprobe", "tcp_v4_connect"},
		{"kprobe_v6_connect", "kprobe", "tcp_v6_connect"},
		{"kretprobe_v6_connect", "kretprobe", "tcp_v6_connect"},
		{"kprobe_rcv_state", "kprobe", "tcp_rcv_state_process"},
		{"kretprobe_accept", "kretprobe", "inet_csk_accept"},
	}},
	{ModeTracepoint, nil}, // the shared tracepoints do its work (connect_via_tp)
}

// Hooks every mode uses.
var baseProgs = []prog{
	{"tp_state", "tp_btf", "inet_sock_set_state"},
	{"tp_retransmit", "tp_btf", "tcp_retransmit_skb"},
	{"tp_send_reset", "tp_btf", "tcp_send_reset"},
	{"tp_receive_reset", "tp_btf", "tcp_receive_reset"},
}

// Tracepoints that name the owner of accepted sockets in tracepoint mode;
// they exist from Linux 6.4, so their absence is reported, not fatal.
var ownerProgs = []prog{
	{"tp_recv_length", "tp_btf", "sock_recv_length"},
	{"tp_send_length", "tp_btf", "sock_send_length"},
}

// attachSocketHooks picks the function hook mode by trying each in turn
// (or only the forced one), then attaches the hooks every mode shares.
func (t *Tracer) attachSocketHooks() error {
	mode, refused, err := t.attachFuncHooks()
	if err != nil {
		return err
	}
	if err := t.spec.Variables["connect_via_tp"].Set(boolByte(mode == ModeTracepoint)); err != nil {
		return fmt.Errorf("set connect_via_tp: %w", err)
	}
	if _, err := t.attachGroup(baseProgs); err != nil {
		return err
	}
	owner := ""
	if mode == ModeTracepoint {
		if _, err := t.attachGroup(ownerProgs); err != nil {
			owner = err.Error()
		}
	}
	t.hooks = hookReport(mode, refused, owner)
	return nil
}

func (t *Tracer) attachFuncHooks() (string, []event.Refusal, error) {
	var refused []event.Refusal
	for _, m := range funcModes {
		if t.opts.Attach != ModeAuto && t.opts.Attach != m.mode {
			continue
		}
		_, err := t.attachGroup(m.progs)
		if err == nil {
			return m.mode, refused, nil
		}
		if t.opts.Attach != ModeAuto {
			return "", nil, fmt.Errorf("attach mode %s: %w", m.mode, err)
		}
		refused = append(refused, event.Refusal{Mode: m.mode, Reason: err.Error()})
	}
	return "", nil, fmt.Errorf("no attach mode works for the function hooks: %v", refused)
}

// attachGroup loads and attaches a set of programs, all or nothing.
func (t *Tracer) attachGroup(progs []prog) ([]link.Link, error) {
	if len(progs) == 0 {
		return nil, nil
	}
	names := make([]string, len(progs))
	for i, p := range progs {
		names[i] = p.name
	}
	coll, err := t.loadPrograms(names...)
	if err != nil {
		return nil, err
	}
	var links []link.Link
	for _, p := range progs {
		l, err := attachProg(coll.Programs[p.name], p)
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			coll.Close()
			return nil, fmt.Errorf("attach %s %s: %w", p.kind, p.target, err)
		}
		links = append(links, l)
	}
	t.colls = append(t.colls, coll)
	t.links = append(t.links, links...)
	return links, nil
}

func attachProg(p *ebpf.Program, pr prog) (link.Link, error) {
	switch pr.kind {
	case "kprobe":
		return link.Kprobe(pr.target, p, nil)
	case "kretprobe":
		return link.Kretprobe(pr.target, p, nil)
	case "fentry", "fexit", "tp_btf":
		return link.AttachTracing(link.TracingOptions{Program: p})
	}
	return nil, errors.New("unknown program kind " + pr.kind)
}

func hookReport(mode string, refused []event.Refusal, ownerErr string) []event.Hook {
	var connect, rcv, accept string
	switch mode {
	case ModeFentry:
		connect, rcv, accept = "fentry+fexit %s", "fentry tcp_rcv_state_process", "fexit inet_csk_accept"
	case ModeKprobe:
		connect, rcv, accept = "kprobe+kretprobe %s", "kprobe tcp_rcv_state_process", "kretprobe inet_csk_accept"
	default:
		connect = "tp_btf inet_sock_set_state: the record for %s is written when the socket leaves SYN_SENT"
		rcv = "tp_btf inet_sock_set_state (kernel view on each state change; no per-segment record)"
		accept = "tp_btf sock_recv_length + sock_send_length"
		if ownerErr != "" {
			accept = "unavailable: " + ownerErr
		}
	}
	hooks := []event.Hook{
		{Name: "tcp_v4_connect", Mode: mode, Target: fmt.Sprintf(connect, "tcp_v4_connect"), Refused: refused},
		{Name: "tcp_v6_connect", Mode: mode, Target: fmt.Sprintf(connect, "tcp_v6_connect"), Refused: refused},
		{Name: "tcp_rcv_state_process", Mode: mode, Target: rcv, Refused: refused},
		{Name: "accept_owner", Mode: mode, Target: accept, Refused: refused},
	}
	for _, p := range baseProgs {
		hooks = append(hooks, event.Hook{Name: p.target, Mode: "tracepoint", Target: "tp_btf " + p.target})
	}
	return hooks
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (t *Tracer) tcHook(refused string) {
	h := event.Hook{Name: "tc", Mode: t.tc.mode, Target: "ingress+egress on " + fmt.Sprint(t.tc.names())}
	if refused != "" {
		h.Refused = []event.Refusal{{Mode: ModeTCX, Reason: refused}}
	}
	t.hooks = append(t.hooks, h)
}

// ProgramNames lists every program the tracer may load, for tests that
// check nothing of it stays behind.
func ProgramNames() []string {
	names := []string{"tc_ingress", "tc_egress"}
	for _, m := range funcModes {
		for _, p := range m.progs {
			names = append(names, p.name)
		}
	}
	for _, p := range append(append(baseProgs, ownerProgs...), xmitProg, dropProg, dropProgNoReason) {
		names = append(names, p.name)
	}
	return names
}
