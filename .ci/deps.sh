#!/usr/bin/env bash
# Install the Debian packages a step needs, if they are missing.
#   deps.sh build   clang, llvm-strip and libbpf headers for make generate
#   deps.sh test    tcpdump and tshark (the tests' independent oracles),
#                   ethtool (the wire tests turn a veth pair's offloads off),
#                   nft (netfilter drops) and ss (the sender state's oracle)
set -euo pipefail

need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
case "${1:-test}" in
build)
	want clang clang
	want llvm-strip llvm
	[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
	;;
test)
	want tcpdump tcpdump
	want tshark tshark
	want ethtool ethtool
	want nft nftables
	want ss iproute2
	;;
*)
	echo "usage: $0 build|test" >&2
	exit 2
	;;
esac
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages: ${need[*]} (install them as root)" >&2
	exit 1
fi
echo "installing ${need[*]}" >&2
# Noninteractive: tshark's package asks whether non-root users may capture;
# the default (no) is what the tests want.
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
