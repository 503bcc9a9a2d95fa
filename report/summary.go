package report

import (
	"tcptracer/analysis/expect"
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
	Violations      []violationBrief `json:"violations"`
	Failures        []failureLine    `json:"failed_expectations"`
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
	return l
}

func way(w timeline.Way) wayLine {
	return wayLine{w.Bytes, w.Segments, w.Retransmissions, w.KernelRetransmissions}
}
