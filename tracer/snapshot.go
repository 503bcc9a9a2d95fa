package tracer

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"tcptracer/event"
)

// Kernel constants the snapshot uses (bpf/track.h, bpf/events.h).
const (
	trackFull   = 1
	trackListen = 3
	pidOwner    = uint8(event.PIDOwner)
)

// Socket is one TCP socket that existed when tracing started, as the
// snapshot iterator saw it, with its owner when /proc names one.
type Socket struct {
	rec   tcptracerSnapshotRec
	owner *tcptracerProcInfo
}

// snapshot reads every full TCP socket of the traced namespace that passes
// the filters (bpf/iter.h) and finds the process holding each. It runs
// after the hooks are attached, so a socket is in the snapshot, seen by
// the hooks, or both.
func (t *Tracer) snapshot() error {
	recs, err := t.iterSockets()
	if err != nil {
		// Not fatal: tracing works without it, as before; the start
		// event says it was refused and why.
		t.hooks = append(t.hooks, event.Hook{Name: "snapshot", Mode: "none",
			Refused: []event.Refusal{{Mode: "iter/tcp", Reason: err.Error()}}})
		return nil
	}
	defer func() {
		t.hooks = append(t.hooks, event.Hook{Name: "snapshot", Mode: "iter/tcp", Target: fmt.Sprintf("%d sockets", len(t.sockets))})
	}()
	owners := socketOwners()
	for _, r := range recs {
		s := Socket{rec: r}
		if p, ok := owners[r.Ino]; ok && r.Ino != 0 {
			s.owner = &p
		}
		if t.opts.PID != 0 && (s.owner == nil || s.owner.Tgid != t.opts.PID) {
			continue
		}
		if err := t.seed(&s); err != nil {
			return fmt.Errorf("snapshot existing sockets: %w", err)
		}
		t.sockets = append(t.sockets, s)
	}
	return nil
}

// iterSockets runs the iterator in the traced namespace (it lists the
// sockets of the namespace the reader is in) and decodes its records.
func (t *Tracer) iterSockets() ([]tcptracerSnapshotRec, error) {
	coll, err := t.loadPrograms("iter_tcp")
	if err != nil {
		return nil, err
	}
	defer coll.Close()
	l, err := link.AttachIter(link.IterOptions{Program: coll.Programs["iter_tcp"]})
	if err != nil {
		return nil, fmt.Errorf("attach tcp iterator: %w", err)
	}
	defer l.Close()
	var data []byte
	err = inNetns(t.opts.Netns, func() error {
		rd, err := l.Open()
		if err != nil {
			return fmt.Errorf("open tcp iterator: %w", err)
		}
		defer rd.Close()
		data, err = io.ReadAll(rd)
		return err
	})
	if err != nil {
		return nil, err
	}
	return decodeSnapshot(data)
}

func decodeSnapshot(data []byte) ([]tcptracerSnapshotRec, error) {
	size := int(unsafe.Sizeof(tcptracerSnapshotRec{}))
	if len(data)%size != 0 {
		return nil, fmt.Errorf("tcp iterator wrote %d bytes, not a multiple of its %d-byte record", len(data), size)
	}
	recs := make([]tcptracerSnapshotRec, len(data)/size)
	for i := range recs {
		recs[i] = *(*tcptracerSnapshotRec)(unsafe.Pointer(&data[i*size]))
	}
	return recs, nil
}

// socketOwners maps socket inodes to the process holding them, from
// /proc/PID/fd (the first process found, for a socket several share).
// A process that exits meanwhile is passed over.
func socketOwners() map[uint64]tcptracerProcInfo {
	out := map[uint64]tcptracerProcInfo{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		var p *tcptracerProcInfo
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name()))
			ino, ok := strings.CutPrefix(target, "socket:[")
			if err != nil || !ok {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
			if _, seen := out[n]; err != nil || seen {
				continue
			}
			if p == nil {
				p = procInfo(uint32(pid))
			}
			out[n] = *p
		}
	}
	return out
}

// procInfo describes process pid as the owners map holds owners: the
// thread is not known, so pid is the tgid.
func procInfo(pid uint32) *tcptracerProcInfo {
	p := &tcptracerProcInfo{Pid: pid, Tgid: pid, Src: pidOwner}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		copy(p.Comm[:len(p.Comm)-1], strings.TrimSuffix(string(b), "\n"))
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					uid, _ := strconv.ParseUint(f[0], 10, 32)
					p.Uid = uint32(uid)
				}
			}
		}
	}
	return p
}

// seed tells the kernel side what the hooks would have recorded had the
// socket been made while tracing: its owner and, with --pid, the tuple
// (a listener's port) the classifier passes.
func (t *Tracer) seed(s *Socket) error {
	r := &s.rec
	if s.owner != nil {
		if err := t.shared["owners"].Update(r.Sk, s.owner, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
			return fmt.Errorf("seed owner of socket %d: %w", r.Ino, err)
		}
	}
	if t.opts.PID == 0 {
		return nil
	}
	keys := []tcptracerTrackKey{{Family: r.Family, Kind: trackListen, Lport: r.Sport}}
	if r.State != event.StateListen {
		keys = []tcptracerTrackKey{
			{Laddr: r.Saddr, Raddr: r.Daddr, Lport: r.Sport, Rport: r.Dport, Family: r.Family, Kind: trackFull},
			{Laddr: r.Daddr, Raddr: r.Saddr, Lport: r.Dport, Rport: r.Sport, Family: r.Family, Kind: trackFull},
		}
	}
	one := uint8(1)
	for _, k := range keys {
		if err := t.shared["tracked"].Update(&k, &one, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("seed tracked tuple of socket %d: %w", r.Ino, err)
		}
	}
	return nil
}

// snapshotEvent is one socket as a state event, emitted right after the
// start event: old_state and new_state both the socket's state then, its
// snd_una/snd_nxt/rcv_nxt, its owner (pid_src owner) or none.
func (t *Tracer) snapshotEvent(s *Socket, ts uint64, ev *event.Event) {
	r := &s.rec
	*ev = event.Event{Type: event.TypeState, TS: ts, Cookie: r.Cookie, Sport: r.Sport, Dport: r.Dport,
		OldState: r.State, NewState: r.State, SndUna: r.SndUna, SndNxt: r.SndNxt, RcvNxt: r.RcvNxt}
	ev.Family, ev.Saddr, ev.Daddr = 4, netip.AddrFrom4([4]byte(r.Saddr[:4])), netip.AddrFrom4([4]byte(r.Daddr[:4]))
	if r.Family == afInet6 {
		ev.Family, ev.Saddr, ev.Daddr = 6, netip.AddrFrom16(r.Saddr), netip.AddrFrom16(r.Daddr)
	}
	if p := s.owner; p != nil {
		ev.PID, ev.TGID, ev.UID, ev.PIDSrc = p.Pid, p.Tgid, p.Uid, event.PIDOwner
		ev.Comm = strings.TrimRight(string(p.Comm[:]), "\x00")
	}
}
