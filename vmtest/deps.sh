#!/bin/bash
# deps.sh: install what vmtest/run.sh needs on a Debian host. Idempotent: only
# packages that are not already installed are fetched, so .ci/run can call it
# on every run.
set -euo pipefail

# tcpdump, iproute2 (ip, tc, ss), ethtool and nftables are copied into the
# guest (tcpdump is the tests' oracle; ethtool turns a veth pair's offloads
# off; nft drops chosen segments)
pkgs=(qemu-system-x86 busybox-static zstd xz-utils tcpdump iproute2 ethtool nftables)

missing=()
for pkg in "${pkgs[@]}"; do
	# ask dpkg, not PATH: the dynamic busybox also provides /bin/busybox
	dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

[ "$(id -u)" = 0 ] || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# recommends would pull in a graphical qemu stack we do not use
apt-get install -y -qq --no-install-recommends "${missing[@]}"
