# tcptracer. Run as root: make demo, make test. See README.md.

GO      ?= go
BIN     := bin/tcptracer
# The version stamped into the binary (tcptracer --version, the start event).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X tcptracer/internal/version.stamp=$(VERSION)
# Static: nothing in tcptracer needs cgo (os/user reads /etc/passwd itself).
export CGO_ENABLED = 0
# make install: PREFIX is where it runs from, DESTDIR a staging root.
PREFIX  ?= /usr/local
DESTDIR ?=
DIST    := dist/tcptracer-$(VERSION)-linux-amd64
# Packages whose tests touch the kernel run one at a time: they share lo,
# port 20000 and the TC hooks.
TESTFLAGS ?= -count=1 -p 1

.PHONY: all build release install docs check-docs demo test unit fuzz generate check-generate vmlinux deps deps-build bench vmtest vmtest-selftest clean

all: build

build:
	@$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tcptracer

# A static binary with the version stamped, the man page, the completions,
# the licences and the README in dist/, and their tarball.
release:
	rm -rf $(DIST)
	mkdir -p $(DIST)
	$(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(DIST)/tcptracer ./cmd/tcptracer
	cp tcptracer.1 LICENSE LICENSE.GPL-2.0 README.md $(DIST)/
	cp -r completion $(DIST)/
	tar -C dist -czf $(DIST).tar.gz $(notdir $(DIST))
	@echo $(DIST).tar.gz

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tcptracer
	install -D -m 0644 tcptracer.1 $(DESTDIR)$(PREFIX)/share/man/man1/tcptracer.1
	install -D -m 0644 completion/tcptracer.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/tcptracer
	install -D -m 0644 completion/_tcptracer $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_tcptracer
	install -D -m 0644 LICENSE $(DESTDIR)$(PREFIX)/share/doc/tcptracer/LICENSE
	install -D -m 0644 LICENSE.GPL-2.0 $(DESTDIR)$(PREFIX)/share/doc/tcptracer/LICENSE.GPL-2.0

# The man page, the completions and the README's flag table come from the
# command table (internal/cli/spec.go); TestDocsCommitted checks them.
docs:
	$(GO) run ./internal/tools/gendocs

check-docs: docs
	git diff --exit-code -- tcptracer.1 completion README.md || { echo "generated docs differ from the committed files: run make docs and commit" >&2; exit 1; }

# The README's first command: trace the echo session on 127.0.0.1:20000.
demo: build
	@./$(BIN) demo

# The README's second command: unit tests and the privileged end-to-end tests.
test: deps
	CI=$${CI:-true} $(GO) test $(TESTFLAGS) ./...

# Tests that need neither root nor a kernel.
unit:
	$(GO) test -count=1 ./event ./conn ./output/... ./timeline/... ./analysis/... ./report/... ./internal/cli ./internal/version ./capture ./internal/tsharkcheck

# The capture readers' fuzz targets, a little beyond their seed corpus.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzPcap$$' -fuzztime 20s ./capture
	$(GO) test -run '^$$' -fuzz '^FuzzPcapng$$' -fuzztime 20s ./capture

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
	rm -rf bin dist
