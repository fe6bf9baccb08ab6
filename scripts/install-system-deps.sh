#!/usr/bin/env bash
# Install the Debian packages the tests need, if they are missing.
#
# Idempotent and quiet: does nothing (and says so) when everything is there.
# Needs root to install; without root it only says what is missing and exits 0,
# so the tests that need these packages skip locally (CI runs as root and sets
# PUNCHLAB_REQUIRE_BROWSER=1, which turns that skip into a failure).
set -euo pipefail

# chromium: the browser tests (tests/test_browser.py) drive it through Playwright.
# fonts-liberation, fonts-dejavu-core: text to render (chromium only recommends
# fonts, and we install without recommends).
# nftables, iproute2, ethtool: the real NAT lab (tests/test_netlab.py): nft,
# ip netns, tc, and turning off checksum offload on the lab's delay line.
# coturn: the reference STUN server and NAT behaviour checker (turnserver,
# turnutils_natdiscovery) that punchlab's RFC 5780 server and client must agree with.
# tshark: reads back every pcapng file punchlab writes (tests/test_pcap.py).
# tcpdump, conntrack: the lab's captures on both sides of each NAT, and the
# kernel's own mapping table (tests/test_netlab_capture.py).
PACKAGES=(
    chromium
    fonts-liberation
    fonts-dejavu-core
    nftables
    iproute2
    ethtool
    coturn
    tshark
    tcpdump
    conntrack
)

missing=()
for package in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-system-deps: already installed: ${PACKAGES[*]}"
    exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
    echo "install-system-deps: missing ${missing[*]}; run as root to install them" \
        "(sudo $0); tests that need them will skip"
    exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! {
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
} >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-system-deps: FAILED to install ${missing[*]}" >&2
    exit 1
fi
echo "install-system-deps: installed ${missing[*]}"
