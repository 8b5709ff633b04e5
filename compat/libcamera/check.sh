#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check.sh - run a program of compat/libcamera/, which `make compat` builds
# against the real libcamera 0.0.3 (`make check` builds and runs them):
#
#   check.sh          check-ipc-unixsocket: the declaration in
#                     ipc_unixsocket.h works with the library's
#                     IPCUnixSocket on both ends of a channel
#   check.sh interop  interop, libipcsock's IPCUnixSocket in libcamera wire
#                     mode, against interop-peer, libcamera's, in a child
#                     (interop.sh runs this, for `make check`)
#
# Prints the program's kselftest-style TAP, or one skipped test where
# pkg-config finds no libcamera 0.0.3 (`make deps` as root installs Debian
# 12's libcamera-dev).
#
# Environment:
#   IPCSOCK_COMPAT_OUT    where the programs are (default: build/compat/libcamera)
#   VALGRIND=1            run it under valgrind (memcheck sees the library's
#                         own writes, which a sanitizer does not
#                         instrument), with valgrind.supp, children too
set -eu

cd "$(dirname "$0")/../.."
case ${1:-} in
'') name=check-ipc-unixsocket what="IPCUnixSocket declaration" ;;
interop) name=interop what="interop with libipcsock" ;;
*) echo "usage: $0 [interop]" >&2; exit 2 ;;
esac
prog=${IPCSOCK_COMPAT_OUT:-build/compat/libcamera}/$name

skip_all()
{
	echo "TAP version 13"
	echo "ok 1 libcamera: $what # SKIP $1"
	echo "1..1"
	echo "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0"
	exit 0
}

pkg-config --exact-version=0.0.3 libcamera 2>/dev/null ||
	skip_all "no libcamera 0.0.3 (Debian 12's libcamera-dev: make deps as root)"
if [ ! -x "$prog" ]; then
	echo "TAP version 13"
	echo "not ok 1 libcamera: $what # not built: make compat"
	echo "1..1"
	echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
	exit 1
fi

if [ "${VALGRIND:-0}" = 1 ]; then
	exec valgrind -q --error-exitcode=99 --leak-check=full \
		--trace-children=yes \
		--suppressions=compat/libcamera/valgrind.supp "$prog"
fi
exec "$prog"
