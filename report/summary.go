package report

import (
	"tcptracer/analysis/expect"
	"tcptracer/event"
	"tcptracer/timeline"
)

// summaryLine is the JSON form of timeline.Summary.
type summaryLine struct {
	Type            string           `json:"type"`
	TS              uint64           `json:"ts_ns"`
	Conn            uint64           `json:"conn"`
	Verdict         string           `json:"verdict"`
	OK              bool             `json:"ok"` // verdict ok and every expectation held: what the exit code of verify and analyze says
	Client          string           `json:"client"`
	Server          string           `json:"server"`
	RolesGuessed    bool             `json:"roles_guessed"`
	Opened          bool             `json:"opened"`
	ActiveCloser    string           `json:"active_closer"`
	End             string           `json:"end"`
	HandshakeRTTNs  *int64           `json:"handshake_rtt_ns"`
	HandshakeNs     int64            `json:"handshake_ns"`
	DurationNs      int64            `json:"duration_ns"`
	ClientToServer  wayLine          `json:"client_to_server"`
	ServerToClient  wayLine          `json:"server_to_client"`
	Retransmissions int              `json:"retransmissions"`
	KernelKnown     bool             `json:"kernel_retransmits_known"`
	KernelRetrans   int              `json:"kernel_retransmissions"`
	Disagreements   int              `json:"disagreements"`
	Explained       map[string]int   `json:"explained_disagreements"`
	Resets          int              `json:"resets"`
	KernelRstSent   int              `json:"kernel_resets_sent"`
	KernelRstRecv   int              `json:"kernel_resets_received"`
	RstDisagree     int              `json:"reset_disagreements"`
	Findings        map[string]int   `json:"findings"`
	FinalStates     [2]string        `json:"final_states"`
	Owners          [2]*ownerLine    `json:"owners"`
	WindowScale     bool             `json:"window_scale_known"`
	RelDerived      bool             `json:"relative_derived"`
	Lossy           bool             `json:"lossy"`
	RulesUnknown    []spanLine       `json:"rules_unknown"`
	Dropped         *droppedLine     `json:"history_dropped"`
	Violations      []violationBrief `json:"violations"`
	Failures        []failureLine    `json:"failed_expectations"`
	Drops           int              `json:"drops"`
	RcvQueueDrops   int              `json:"receive_queue_drops"`
	Unread          int              `json:"unread_at_close"`
	Probes          int              `json:"probes_discarded"`
	TimeWait        int              `json:"time_wait_answered"`
	Processed       int              `json:"acks_processed"`
	DropList        []dropLine       `json:"drop_list"`
	Retransmits     []retxLine       `json:"kernel_retransmits"`
	RTOs            int              `json:"rtos"`
	Senders         [2]*senderLine   `json:"senders"`
	Repairs         []string         `json:"drop_repairs"`
}

// dropLine is one drop of the connection and what became of it.
type dropLine struct {
	ID         uint64 `json:"id"`
	From       string `json:"from"`
	Reason     string `json:"reason"`
	Kind       string `json:"kind"`
	Location   string `json:"location"`
	Segment    uint64 `json:"segment"`
	RepairedBy uint64 `json:"repaired_by"`
	Retransmit uint64 `json:"retransmit"`
	Cause      string `json:"cause"`
}

type retxLine struct {
	ID       uint64 `json:"id"`
	From     string `json:"from"`
	Seq      uint32 `json:"seq"`
	Len      uint32 `json:"len"`
	Cause    string `json:"cause"`
	Repaired uint64 `json:"repaired_drop"`
}

// senderLine is one side's socket over the connection (null when the
// tracer did not see that side send from a local socket).
type senderLine struct {
	Samples   int              `json:"samples"`
	MinSRTTUs int64            `json:"min_srtt_us"`
	AvgSRTTUs int64            `json:"avg_srtt_us"`
	MaxSRTTUs int64            `json:"max_srtt_us"`
	FinalCwnd uint32           `json:"final_cwnd"`
	MaxCwnd   uint32           `json:"max_cwnd"`
	CATimeNs  map[string]int64 `json:"ca_state_ns"`
	RTOs      int              `json:"rtos"`
}

// droppedLine is the oldest history the memory bound dropped.
type droppedLine struct {
	Segments int    `json:"segments"`
	States   int    `json:"states"`
	Through  uint64 `json:"through"`
}

type spanLine struct {
	From uint64  `json:"from"`
	To   *uint64 `json:"to"`
}

type wayLine struct {
	Bytes           uint64 `json:"bytes"`
	Segments        int    `json:"segments"`
	Retransmissions int    `json:"retransmissions"`
	KernelRetrans   int    `json:"kernel_retransmissions"`
}

type ownerLine struct {
	PID    uint32 `json:"pid"`
	TGID   uint32 `json:"tgid"`
	Comm   string `json:"comm"`
	Source string `json:"pid_src"`
}

type violationBrief struct {
	Rule    string `json:"rule"`
	Segment uint64 `json:"segment"`
	Detail  string `json:"detail"`
}

type failureLine struct {
	Expectation string `json:"expectation"`
	Got         string `json:"got"`
}

func newSummaryLine(s *timeline.Summary, ts uint64, fails []expect.Failure) summaryLine {
	l := summaryLine{
		Type: "summary", TS: ts, Conn: s.Conn, Verdict: s.Verdict, OK: len(fails) == 0,
		Client: s.Client.String(), Server: s.Server.String(), RolesGuessed: s.RolesGuessed,
		Opened: s.Opened, ActiveCloser: s.ActiveCloser, End: s.End,
		HandshakeNs: int64(s.HandshakeTime), DurationNs: int64(s.Duration),
		ClientToServer: way(s.Sent[timeline.Client]), ServerToClient: way(s.Sent[timeline.Server]),
		Retransmissions: s.Retransmissions, KernelKnown: s.KernelKnown, KernelRetrans: s.KernelRetransmissions,
		Disagreements: s.Disagreements, Resets: s.Resets, KernelRstSent: s.KernelResetsSent, KernelRstRecv: s.KernelResetsReceived,
		RstDisagree: s.ResetDisagreements, Findings: s.Findings, FinalStates: s.FinalState,
		WindowScale: s.WindowScaleKnown, RelDerived: s.RelativeDerived, Lossy: s.Lossy,
		Violations: []violationBrief{}, Failures: []failureLine{},
		Explained: s.Explained, RulesUnknown: []spanLine{},
	}
	if l.Explained == nil {
		l.Explained = map[string]int{}
	}
	for _, sp := range s.RulesUnknown {
		sl := spanLine{From: sp.From}
		if sp.To != 0 {
			to := sp.To
			sl.To = &to
		}
		l.RulesUnknown = append(l.RulesUnknown, sl)
	}
	if d := s.Dropped; d.Segments > 0 || d.States > 0 {
		l.Dropped = &droppedLine{Segments: d.Segments, States: d.States, Through: d.Through}
	}
	if s.HasHandshakeRTT {
		rtt := int64(s.HandshakeRTT)
		l.HandshakeRTTNs = &rtt
	}
	for i, o := range s.Owners {
		if o.Source != 0 {
			l.Owners[i] = &ownerLine{PID: o.PID, TGID: o.TGID, Comm: o.Comm, Source: o.Source.String()}
		}
	}
	for _, v := range s.Violations {
		l.Violations = append(l.Violations, violationBrief{v.Rule.String(), v.Index, v.Detail})
	}
	for _, f := range fails {
		l.Failures = append(l.Failures, failureLine{f.Expectation, f.Got})
	}
	accountLines(&l, s)
	return l
}

func accountLines(l *summaryLine, s *timeline.Summary) {
	l.Drops, l.RTOs, l.Repairs = s.DropCount, s.RTOs, s.DropsRepairs
	l.RcvQueueDrops, l.Unread, l.Probes = s.RcvQueueDrops, s.UnreadCount, s.ProbeDrops
	l.TimeWait, l.Processed = s.TimeWaitDrops, s.ProcessedDrops
	l.DropList, l.Retransmits = []dropLine{}, []retxLine{}
	if l.Repairs == nil {
		l.Repairs = []string{}
	}
	for _, d := range s.Drops {
		l.DropList = append(l.DropList, dropLine{d.Index, d.From.String(), d.Reason, d.Kind, d.Location, d.Segment,
			d.RepairedBy, d.Retransmit, d.Cause})
	}
	for _, r := range s.Retxs {
		l.Retransmits = append(l.Retransmits, retxLine{r.Index, r.From.String(), r.Seq, r.Len, r.Cause, r.Repaired})
	}
	for side := timeline.Client; side <= timeline.Server; side++ {
		if !s.SenderKnown[side] {
			continue
		}
		st := &s.Senders[side]
		sl := &senderLine{Samples: st.Samples, MinSRTTUs: st.MinSRTT.Microseconds(), AvgSRTTUs: st.AvgSRTT.Microseconds(),
			MaxSRTTUs: st.MaxSRTT.Microseconds(), FinalCwnd: st.FinalCwnd, MaxCwnd: st.MaxCwnd,
			CATimeNs: map[string]int64{}, RTOs: st.RTOs}
		for ca, d := range st.CATime {
			if d > 0 {
				sl.CATimeNs[event.CAStateName(uint8(ca))] = int64(d)
			}
		}
		l.Senders[side] = sl
	}
}

func way(w timeline.Way) wayLine {
	return wayLine{w.Bytes, w.Segments, w.Retransmissions, w.KernelRetransmissions}
}
