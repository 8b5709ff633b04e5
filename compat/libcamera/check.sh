#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check.sh - run check-ipc-unixsocket, which `make compat` builds (`make
# check` builds and runs it): the declaration in ipc_unixsocket.h works with
# libcamera 0.0.3's IPCUnixSocket on both ends of a channel.
#
# Usage: compat/libcamera/check.sh
#
# Prints the program's kselftest-style TAP, or one skipped test where
# pkg-config finds no libcamera 0.0.3 (`make deps` as root installs Debian
# 12's libcamera-dev).
#
# Environment:
#   IPCSOCK_COMPAT_OUT    where the program is (default: build/compat/libcamera)
#   VALGRIND=1            run it under valgrind (memcheck sees the library's
#                         own writes, which a sanitizer does not
#                         instrument), with valgrind.supp, children too
set -eu

cd "$(dirname "$0")/../.."
prog=${IPCSOCK_COMPAT_OUT:-build/compat/libcamera}/check-ipc-unixsocket

skip_all()
{
	echo "TAP version 13"
	echo "ok 1 libcamera: IPCUnixSocket declaration # SKIP $1"
	echo "1..1"
	echo "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0"
	exit 0
}

pkg-config --exact-version=0.0.3 libcamera 2>/dev/null ||
	skip_all "no libcamera 0.0.3 (Debian 12's libcamera-dev: make deps as root)"
if [ ! -x "$prog" ]; then
	echo "TAP version 13"
	echo "not ok 1 libcamera: IPCUnixSocket declaration # not built: make compat"
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
