package analysis_test

import (
	"fmt"
	"strings"
	"testing"

	tt "tcptracer/timeline/timelinetest"
)

func conn() *tt.Builder { return tt.New("127.0.0.1:40000", "127.0.0.1:20000") }

// handshake with a chosen final ACK.
func hs(seq, ack uint32) *tt.Builder {
	return conn().Seg(C, "S", 0, 0, 0).Seg(S, "SA", 0, 1, 0).Seg(C, "A", seq, ack, 0)
}

var ruleCases = []struct {
	name string
	b    *tt.Builder
	want string // "rule@index" of every violation, comma-joined
}{
	{"syn_consumes_one", hs(0, 1), "syn-consumes-one@6"},
	{"syn_consumes_one_ok", hs(1, 1), ""},
	{"syn_consumes_one_retransmitted_syn_ok", conn().Seg(C, "S", 0, 0, 0).Wait(1e9).Seg(C, "S", 0, 0, 0).
		Seg(S, "SA", 0, 1, 0).Seg(C, "A", 1, 1, 0), ""},
	{"fin_consumes_one", hs(1, 1).Seg(C, "FA", 1, 1, 0).Seg(S, "FA", 1, 2, 0).Seg(C, "A", 1, 2, 0), "fin-consumes-one@12"},
	{"fin_consumes_one_ok", hs(1, 1).Seg(C, "FA", 1, 1, 0).Seg(S, "FA", 1, 2, 0).Seg(C, "A", 2, 2, 0), ""},
	{"fin_consumes_one_keep_alive_after_ok", hs(1, 1).Seg(C, "FA", 1, 1, 0).Seg(S, "A", 1, 2, 0).
		Seg(C, "A", 2, 1, 0).Wait(60e9).Seg(C, "A", 1, 1, 0), ""},
	{"synack_acks_client_isn", conn().Seg(C, "S", 0, 0, 0).Seg(S, "SA", 0, 2, 0), "synack-acks-client-isn@4"},
	{"synack_acks_client_isn_ok", conn().Seg(C, "S", 0, 0, 0).Seg(S, "SA", 0, 1, 0), ""},
	{"synack_acks_client_isn_from_connect", conn().Connect().Seg(S, "SA", 0, 5, 0), "synack-acks-client-isn@3"},
	{"handshake_ack_acks_server_isn", hs(1, 0), "handshake-ack-acks-server-isn@6"},
	{"handshake_ack_acks_server_isn_ok", hs(1, 1), ""},
	{"data_advances_seq", hs(1, 1).Seg(C, "PA", 1, 1, 2).Seg(C, "PA", 5, 1, 2), "data-advances-seq@10"},
	{"data_advances_seq_ok", hs(1, 1).Seg(C, "PA", 1, 1, 2).Seg(C, "PA", 3, 1, 2).Seg(C, "A", 5, 1, 0), ""},
	{"data_advances_seq_pure_ack_behind", hs(1, 1).Seg(C, "PA", 1, 1, 5).Seg(C, "A", 2, 1, 0), "data-advances-seq@10"},
	{"data_advances_seq_reordered_at_the_vantage_ok", hs(1, 1).Seg(C, "PA", 3, 1, 2).Seg(C, "PA", 1, 1, 2).Seg(C, "A", 5, 1, 0), ""},
	{"data_advances_seq_gap_acked_by_the_peer_ok", hs(1, 1).Seg(C, "PA", 3, 1, 2).Seg(S, "A", 1, 5, 0), ""},
	{"data_advances_seq_pure_ack_overtaken_ok", hs(1, 1).Seg(C, "PA", 1, 1, 2).Seg(C, "A", 1, 1, 0), ""},
	{"data_advances_seq_pure_ack_behind_acking_more", hs(1, 1).Seg(C, "PA", 1, 1, 2).Seg(S, "PA", 1, 3, 2).Seg(C, "A", 1, 3, 0),
		"data-advances-seq@12"},
	{"data_advances_seq_gap_when_events_lost", hs(1, 1).Seg(C, "PA", 1, 1, 2).Lost(3).Seg(C, "PA", 5, 1, 2), ""},
	{"data_advances_seq_gap_after_the_loss_resynced", hs(1, 1).Lost(3).Seg(C, "PA", 1, 1, 2).Seg(C, "PA", 5, 1, 2),
		"data-advances-seq@11"},
	{"ack_in_range", hs(1, 1).Seg(C, "PA", 1, 1, 2).Seg(S, "A", 1, 10, 0), "ack-in-range@10"},
	{"ack_in_range_ok", hs(1, 1).Seg(C, "PA", 1, 1, 2).Seg(S, "A", 1, 3, 0), ""},
	{"ack_in_range_fin_counts_one", hs(1, 1).Seg(C, "FA", 1, 1, 0).Seg(S, "A", 1, 2, 0), ""},
	{"ack_in_range_before_isn", hs(1, 1).Seg(S, "A", 1, 0xffffff00, 0), "ack-in-range@8"},
	{"ack_in_range_lost_events", hs(1, 1).Seg(C, "PA", 1, 1, 2).Lost(1).Seg(S, "A", 1, 10, 0), ""},
	{"ack_in_range_after_the_loss_resynced", hs(1, 1).Lost(1).Seg(C, "PA", 1, 1, 2).Seg(S, "A", 1, 10, 0),
		"ack-in-range@11"},
}

func TestRules(t *testing.T) {
	var golden strings.Builder
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			fmt.Fprintf(&golden, "== %s\n", tc.name)
			for _, s := range run(tc.b) {
				for _, v := range s.Violations {
					got = append(got, fmt.Sprintf("%s@%d", v.Rule, v.Index))
					fmt.Fprintf(&golden, "%s\n", v)
				}
			}
			if g := strings.Join(got, ","); g != tc.want {
				t.Errorf("violations %q, want %q", g, tc.want)
			}
		})
	}
	compareGolden(t, "rules.golden", golden.String())
}
