#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-probes.sh - the USDT probes of lib/trace.h are in the built
# libipcsock.so, each with its number of arguments, and none other; and the
# library compiles cleanly with them compiled out.
#
# Usage: check-probes.sh
#
# Prints kselftest-style TAP for scripts/run-tests.sh; scripts/README.md
# lists the tests.
#
# Environment:
#   CC                  compiler (default cc)
#   IPCSOCK_SHARED_LIB  the library to read (default build/libipcsock.so)
set -eu
cd "$(dirname "$0")/.."
cc=${CC:-cc}
lib=${IPCSOCK_SHARED_LIB:-build/libipcsock.so}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=scripts/tap.sh
. scripts/tap.sh

# The probes and their argument counts, as lib/trace.h documents them.
expected="fail 2
hangup 2
queue 3
ready_read 2
receive 3
send 5"

echo "TAP version 13"

# 1. Compiled out: no <sys/sdt.h>, or IPCSOCK_NO_TRACE, leaves code that
# builds without a warning (no variable used by a probe alone).
if $cc -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -DIPCSOCK_NO_TRACE \
	-Iinclude -fsyntax-only lib/*.c 2>"$tmp/cc.log"; then
	ok "probes: compiled out with IPCSOCK_NO_TRACE"
else
	diag "$tmp/cc.log"
	not_ok "probes: compiled out with IPCSOCK_NO_TRACE"
fi

# 2. In the library: every stapsdt note of provider ipcsock, as
# "name argc", one line per probe site.
if ! command -v readelf >/dev/null 2>&1; then
	skipped "probes: in $lib" "readelf (binutils) is not installed"
	tap_finish
	exit
fi
if [ ! -r "$lib" ]; then
	not_ok "probes: in $lib # no such file"
	tap_finish
	exit
fi
if ! echo '#include <sys/sdt.h>' | $cc -E -x c - >/dev/null 2>&1; then
	if readelf -n "$lib" | grep -q 'Provider: ipcsock'; then
		not_ok "probes: none without <sys/sdt.h> # $lib has some"
	else
		skipped "probes: in $lib" "no <sys/sdt.h> (systemtap-sdt-dev): compiled out"
	fi
	tap_finish
	exit
fi
readelf -n "$lib" | awk '
	/^ *Provider:/ { prov = $2; name = ""; next }
	/^ *Name:/ { name = $2; next }
	/^ *Arguments:/ && prov == "ipcsock" {
		print name, NF - 1; name = ""; next
	}
	/^ *stapsdt/ || /^ *Location:/ { next }
	name != "" && prov == "ipcsock" { print name, 0; name = "" }
	END { if (name != "" && prov == "ipcsock") print name, 0 }
' | sort -u >"$tmp/found"
while read -r probe argc; do
	have=$(awk -v p="$probe" '$1 == p { print $2 }' "$tmp/found" | sort -u)
	if [ -z "$have" ]; then
		not_ok "probe: ipcsock:$probe # not in $lib"
	elif [ "$have" != "$argc" ]; then
		not_ok "probe: ipcsock:$probe # ${have//$'\n'/ } arguments, not $argc"
	else
		ok "probe: ipcsock:$probe, $argc arguments"
	fi
done <<<"$expected"
cut -d' ' -f1 "$tmp/found" | sort -u >"$tmp/names"
echo "$expected" | cut -d' ' -f1 >"$tmp/want"
extra=$(comm -23 "$tmp/names" "$tmp/want" | tr '\n' ' ')
if [ -n "$extra" ]; then
	not_ok "probes: none but the documented # also: $extra"
else
	ok "probes: none but the documented"
fi
tap_finish
