package tracer

//go:generate go tool bpf2go -tags linux -target amd64 -type segment_event -type connect_event -type state_event -type sock_event -type proc_info -type rec_hdr -type counter_set -type xmit_key -type drop_event -type sender_state -type snapshot_rec tcptracer ../bpf/tcptracer.bpf.c -- -I../bpf -O2 -g -Wall -Werror
