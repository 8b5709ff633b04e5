#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-probes.sh - the USDT probes of lib/trace.h are in the built
# libipcsock.so, each with its number of arguments, and none other; the
# library compiles cleanly with them compiled out; and, where bpftrace can
# attach (root, BPF and uprobes available), ipcsock:receive fires in a
# program that receives (scripts/probe-fire.c) with its arguments.
#
# Usage: check-probes.sh
#
# Prints kselftest-style TAP for scripts/run-tests.sh; scripts/README.md
# lists the tests.
#
# Environment:
#   CC                  compiler (default cc)
#   IPCSOCK_SHARED_LIB  the library to read (default build/libipcsock.so)
#   IPCSOCK_CONSUMER_FLAGS  extra compiler flags for probe-fire.c, e.g. the
#                       sanitizer flags the library was built with
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

# 3. One fires: bpftrace attached to ipcsock:receive of the library sees
# probe-fire.c receive its 5-byte message without fds, and exits.
fire_check()
{
	local name="probe fires: ipcsock:receive (bpftrace)" so pid rc
	local -a extra

	if [ "$(id -u)" -ne 0 ]; then
		skipped "$name" "needs root to attach uprobes"
		return
	fi
	if ! command -v bpftrace >/dev/null 2>&1; then
		skipped "$name" "bpftrace is not installed (make deps as root)"
		return
	fi
	if ! timeout 30 bpftrace -e 'BEGIN { exit(); }' >"$tmp/bt.log" 2>&1; then
		skipped "$name" "bpftrace cannot load a BPF program here: $(grep -m1 ERROR "$tmp/bt.log")"
		return
	fi
	read -r -a extra <<<"${IPCSOCK_CONSUMER_FLAGS:-}"
	so=$(readlink -f "$lib")
	if ! $cc -std=gnu11 -Wall -Werror -Iinclude "${extra[@]}" \
		-o "$tmp/probe-fire" scripts/probe-fire.c "$so" \
		-Wl,-rpath,"$(dirname "$so")" 2>"$tmp/cc.log"; then
		diag "$tmp/cc.log"
		not_ok "$name # probe-fire.c does not build"
		return
	fi
	"$tmp/probe-fire" &
	pid=$!
	rc=0
	# Only this program's receives: other tests may use the library now.
	timeout 30 bpftrace -e "usdt:$so:ipcsock:receive /pid == \$1/ {
		printf(\"fired len %d fds %d\\n\", arg1, arg2); exit(); }" \
		"$pid" >"$tmp/bt.log" 2>&1 || rc=$?
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if grep -q '^fired len 5 fds 0$' "$tmp/bt.log"; then
		ok "$name"
	elif ! grep -q '^Attaching' "$tmp/bt.log"; then
		skipped "$name" "bpftrace cannot attach: $(grep -m1 'ERROR: [^U]' "$tmp/bt.log")"
	else
		diag "$tmp/bt.log"
		not_ok "$name # bpftrace exited $rc without the event"
	fi
}
fire_check
tap_finish
