# tcptracer. Run as root: make demo, make test. See README.md.

GO      ?= go
BIN     := bin/tcptracer
# Packages whose tests touch the kernel run one at a time: they share lo,
# port 20000 and the TC hooks.
TESTFLAGS ?= -count=1 -p 1

.PHONY: all build demo test unit generate check-generate vmlinux deps deps-build bench vmtest vmtest-selftest clean

all: build

build:
	@$(GO) build -o $(BIN) ./cmd/tcptracer

# The README's first command: trace the echo session on 127.0.0.1:20000.
demo: build
	@./$(BIN) demo

# The README's second command: unit tests and the privileged end-to-end tests.
test: deps
	CI=$${CI:-true} $(GO) test $(TESTFLAGS) ./...

# Tests that need neither root nor a kernel.
unit:
	$(GO) test -count=1 ./event ./conn ./output/... ./timeline/... ./analysis/... ./internal/cli

# Regenerate the bpf2go output (committed) with Debian's clang.
generate: deps-build
	$(GO) generate ./tracer

check-generate: generate
	git diff --exit-code -- tracer/ || { echo "generated eBPF code differs from the committed files: run make generate and commit" >&2; exit 1; }

# bpf/vmlinux.h comes from a kernel's BTF; regenerate only on purpose.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

# What the tests need on a fresh Debian machine.
deps:
	@./.ci/deps.sh test

deps-build:
	@./.ci/deps.sh build

# The Go micro-benchmarks and the loopback benchmark, as one table also
# written into bench/README.md. Needs root; a few minutes at the defaults
# (BENCHFLAGS="-t 10s -r 5" for steadier figures).
BENCHFLAGS ?=
bench: deps
	$(GO) run ./bench/loopback -go $(GO) -readme bench/README.md $(BENCHFLAGS)

# The kernel matrix: forced attach modes on stock Debian kernels under qemu.
vmtest:
	@./vmtest/deps.sh
	./vmtest/run.sh

# The harness itself: verdict goldens and a run with the stand-in tests.
vmtest-selftest:
	./vmtest/judge_test.sh
	VMTEST_STANDIN=1 ./vmtest/run.sh

clean:
	rm -rf bin
