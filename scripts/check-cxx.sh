#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-cxx.sh - the public header and the README's example build as C and
# as C++, without a warning.
#
# Usage: check-cxx.sh
#
# Prints kselftest-style TAP for scripts/run-tests.sh; scripts/README.md
# lists the tests.
#
# Environment:
#   CC                    C compiler (default cc)
#   CXX                   C++ compiler (default: clang++ for a clang CC,
#                         g++ for a gcc CC, else c++)
#   IPCSOCK_EXAMPLE_LIBS  what to link the example with, e.g.
#                         "build/libipcsock.a -luring -lpthread"; unset:
#                         compile only
#   IPCSOCK_EXAMPLE_FLAGS extra compiler and linker flags (e.g. the
#                         sanitizer flags the library was built with)
set -eu

cd "$(dirname "$0")/.."
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=scripts/tap.sh
. scripts/tap.sh
cxx=$(cxx_of_cc)

read -r -a extra <<<"${IPCSOCK_EXAMPLE_FLAGS:-}"
read -r -a uring_cflags <<<"$(pkg-config --cflags liburing 2>/dev/null || true)"
read -r -a libs <<<"${IPCSOCK_EXAMPLE_LIBS:-}"
have_cxx=$(command -v "$cxx" || true)

# build NAME STD SOURCE [FLAGS...]: compile SOURCE as STD (c* or c++*) and
# report the result as test NAME; README tests also link when
# IPCSOCK_EXAMPLE_LIBS is set.
build()
{
	local name=$1 std=$2 src=$3 compiler lang
	shift 3

	case $std in
	*++*)
		compiler=$cxx
		lang=c++
		if [ -z "$have_cxx" ]; then
			skipped "$name" "no C++ compiler ($cxx)"
			return
		fi
		;;
	*)
		compiler=$cc
		lang=c
		;;
	esac
	cmd=("$compiler" "-std=$std" "$@" -Iinclude
	     ${uring_cflags[@]+"${uring_cflags[@]}"} ${extra[@]+"${extra[@]}"})
	# -x applies to the files after it only, so libraries stay libraries.
	if [ "$name" != "${name#README}" ] && [ ${#libs[@]} -gt 0 ]; then
		cmd+=(-o "$tmp/example" -x "$lang" "$src" -x none "${libs[@]}")
	else
		cmd+=(-fsyntax-only -x "$lang" "$src")
	fi
	tap_cmd "$name" "${cmd[@]}"
}

echo "TAP version 13"

# 1. The header on its own.
echo '#include <ipcsock.h>' >"$tmp/header.c"
for std in c99 c11 c++17 c++20; do
	build "header: $std" "$std" "$tmp/header.c" \
		-Wall -Wextra -Wpedantic -Werror
done

# 2. The README's example.
readme_code Example c >"$tmp/readme.c"
if [ ! -s "$tmp/readme.c" ]; then
	not_ok "README example: found # no \`\`\`c block in README.md's \"## Example\""
	tap_finish
	exit
fi
ok "README example: found ($(wc -l <"$tmp/readme.c") lines)"
for std in gnu11 c++17 c++20; do
	build "README example: $std" "$std" "$tmp/readme.c" \
		-Wall -Wextra -Werror
done

tap_finish
