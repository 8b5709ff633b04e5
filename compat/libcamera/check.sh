#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check.sh - build compat/libcamera/check-ipc-unixsocket.cpp against the
# real libcamera 0.0.3 and run it: the declaration in ipc_unixsocket.h
# works with the library's IPCUnixSocket on both ends of a channel.
#
# Usage: compat/libcamera/check.sh
#
# Prints kselftest-style TAP ending in a "# Totals:" line, which
# scripts/run-tests.sh adds up (the program's own, or one skipped test
# when it cannot be built: no libcamera 0.0.3 for pkg-config - `make deps`
# as root installs Debian 12's libcamera-dev - or no C++ compiler).
#
# Environment:
#   CC, CXX               the C++ compiler is CXX, else the one of CC's
#                         family (sanitizer flags need its runtime)
#   IPCSOCK_EXAMPLE_FLAGS extra compiler and linker flags, e.g. the
#                         sanitizer flags the tree is built with
#   IPCSOCK_COMPAT_OUT    where the program goes (default: build/compat)
#   VALGRIND=1            run it under valgrind (memcheck sees the library's
#                         own writes, which a sanitizer does not
#                         instrument), with valgrind.supp, children too
set -eu

cd "$(dirname "$0")/../.."
src=compat/libcamera/check-ipc-unixsocket.cpp
out=${IPCSOCK_COMPAT_OUT:-build/compat}
cc=${CC:-cc}
case ${cc##*/} in
*clang*) cxx=${CXX:-${cc/clang/clang++}} ;;
*gcc*) cxx=${CXX:-${cc/gcc/g++}} ;;
*) cxx=${CXX:-c++} ;;
esac

skip_all()
{
	echo "TAP version 13"
	echo "ok 1 libcamera: IPCUnixSocket declaration # SKIP $1"
	echo "1..1"
	echo "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0"
	exit 0
}

command -v "$cxx" >/dev/null 2>&1 || skip_all "no C++ compiler ($cxx)"
pkg-config --exact-version=0.0.3 libcamera 2>/dev/null ||
	skip_all "no libcamera 0.0.3 (Debian 12's libcamera-dev: make deps as root)"

read -r -a cflags <<<"$(pkg-config --cflags libcamera)"
read -r -a libs <<<"$(pkg-config --libs libcamera)"
read -r -a extra <<<"${IPCSOCK_EXAMPLE_FLAGS:-}"
mkdir -p "$out"
prog=$out/check-ipc-unixsocket
if ! "$cxx" -std=gnu++17 -Wall -Wextra -Werror -O2 -g "${cflags[@]}" \
	"${extra[@]}" -o "$prog" "$src" "${libs[@]}"; then
	echo "TAP version 13"
	echo "not ok 1 libcamera: IPCUnixSocket declaration builds"
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
