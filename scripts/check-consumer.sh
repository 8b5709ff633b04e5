#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-consumer.sh - build and run a program of a libipcsock user against
# an installed tree, with nothing but the flags pkg-config gives.
#
# Usage: IPCSOCK_DESTDIR=dir check-consumer.sh
#
# dir is where `make install DESTDIR=dir` put the library. Prints
# kselftest-style TAP for scripts/run-tests.sh; scripts/README.md says how
# it points pkg-config at dir and what it checks.
#
# Environment:
#   IPCSOCK_DESTDIR         the install root (required)
#   CC, PKG_CONFIG          compiler and pkg-config (default cc, pkg-config)
#   IPCSOCK_CONSUMER_FLAGS  extra compiler flags, e.g. the sanitizer flags
#                           the library was built with; with -fsanitize
#                           the static build is skipped (sanitizer runtimes
#                           cannot be linked statically)
set -eu

cd "$(dirname "$0")/.."
src=$PWD/scripts/check-consumer.c
cc=${CC:-cc}
pkg_config=${PKG_CONFIG:-pkg-config}
read -r -a extra <<<"${IPCSOCK_CONSUMER_FLAGS:-}"

# shellcheck source=scripts/tap.sh
. scripts/tap.sh

finish()
{
	tap_finish
	exit
}

echo "TAP version 13"

destdir=${IPCSOCK_DESTDIR:-}
if [ -z "$destdir" ] || [ ! -d "$destdir" ]; then
	not_ok "consumer: IPCSOCK_DESTDIR='$destdir' is not an install root"
	finish
fi
destdir=$(cd "$destdir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. pkg-config finds the installed library, and only there.
pc=$(find "$destdir" -name ipcsock.pc -print -quit)
if [ -z "$pc" ]; then
	not_ok "consumer: pkg-config # no ipcsock.pc under $destdir"
	finish
fi
export PKG_CONFIG_PATH=${pc%/*}
export PKG_CONFIG_SYSROOT_DIR=$destdir
if ! version=$("$pkg_config" --modversion ipcsock 2>"$tmp/err") ||
   ! cflags=$("$pkg_config" --cflags ipcsock 2>>"$tmp/err") ||
   ! libs=$("$pkg_config" --libs ipcsock 2>>"$tmp/err") ||
   ! static_libs=$("$pkg_config" --static --libs ipcsock 2>>"$tmp/err"); then
	diag "$tmp/err"
	not_ok "consumer: pkg-config # $pkg_config failed on $pc"
	finish
fi
echo "# ipcsock $version: $pc"
echo "# --cflags: $cflags"
echo "# --libs: $libs"
echo "# --static --libs: $static_libs"
libdir=
for flag in $libs; do
	case $flag in
	-L*) libdir=${flag#-L} ;;
	esac
done
incdir=
for flag in $cflags; do
	case $flag in
	-I*) [ -f "${flag#-I}/ipcsock.h" ] && incdir=${flag#-I} ;;
	esac
done
case $incdir:$libdir in
"$destdir"/*:"$destdir"/*)
	ok "consumer: pkg-config"
	;;
*)
	not_ok "consumer: pkg-config # header dir '$incdir' or library dir '$libdir' is not under $destdir"
	finish
	;;
esac

# 2. Build, inspect and run each way.
read -r -a cflags_a <<<"$cflags"
read -r -a libs_a <<<"$libs"
read -r -a static_a <<<"$("$pkg_config" --static --cflags ipcsock) $static_libs"

# Shared.
prog=$tmp/consumer-shared
if ! "$cc" ${extra[@]+"${extra[@]}"} "${cflags_a[@]}" -o "$prog" "$src" \
     "${libs_a[@]}" >"$tmp/out" 2>&1; then
	diag "$tmp/out"
	not_ok "consumer: shared build"
	not_ok "consumer: shared run # not built"
else
	why=
	if ! readelf -d "$prog" | grep -q 'NEEDED.*\[libipcsock\.so\.0\]'; then
		why="does not need libipcsock.so.0"
	elif command -v ldd >/dev/null 2>&1; then
		loaded=$(LD_LIBRARY_PATH=$libdir ldd "$prog" |
			 sed -n 's/^[[:space:]]*libipcsock\.so\.0 => \([^ ]*\).*/\1/p')
		echo "# libipcsock.so.0 => ${loaded:-not found}"
		case $loaded in
		"$destdir"/*) ;;
		*) why="libipcsock.so.0 does not resolve under $destdir" ;;
		esac
	fi
	if [ -n "$why" ]; then
		not_ok "consumer: shared build # $why"
	else
		ok "consumer: shared build"
	fi
	LD_LIBRARY_PATH=$libdir tap_exec "consumer: shared run" "$prog" 30
fi

# Static.
prog=$tmp/consumer-static
case " ${extra[*]-} " in
*" -fsanitize="*)
	skipped "consumer: static build" "sanitizer runtimes do not link statically"
	skipped "consumer: static run" "not built"
	finish
	;;
esac
if ! "$cc" ${extra[@]+"${extra[@]}"} -static -o "$prog" "$src" \
     "${static_a[@]}" >"$tmp/out" 2>&1; then
	diag "$tmp/out"
	not_ok "consumer: static build"
	not_ok "consumer: static run # not built"
	finish
fi
if readelf -d "$prog" | grep -q NEEDED; then
	not_ok "consumer: static build # the program needs shared libraries"
else
	ok "consumer: static build"
fi
LD_LIBRARY_PATH=$libdir tap_exec "consumer: static run" "$prog" 30
finish
