#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-header.sh - include/ipcsock.hpp builds with every C++ compiler and
# standard it promises, and the README's C++ example runs.
#
# Usage: check-header.sh
#
# Prints kselftest-style TAP for scripts/run-tests.sh; README.md here
# lists the tests.
#
# Environment:
#   CC                    C compiler the library was built with (default
#                         cc): the README example is built with the C++
#                         compiler of its family, for the sanitizer runtime
#   CXX                   that C++ compiler instead
#   IPCSOCK_EXAMPLE_LIBS  what to link the example with; unset: compile only
#   IPCSOCK_EXAMPLE_FLAGS extra compiler and linker flags (e.g. the
#                         sanitizer flags the library was built with)
set -eu

cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=scripts/tap.sh
. scripts/tap.sh
cxx=$(cxx_of_cc)

read -r -a extra <<<"${IPCSOCK_EXAMPLE_FLAGS:-}"
read -r -a libs <<<"${IPCSOCK_EXAMPLE_LIBS:-}"
warn=(-Wall -Wextra -Wpedantic -Werror)

echo "TAP version 13"

echo '#include <ipcsock.hpp>' >"$tmp/header.cpp"
for compiler in g++ clang++; do
	for std in c++17 c++20; do
		if ! command -v "$compiler" >/dev/null 2>&1; then
			skipped "header: $compiler $std" "not installed"
			skipped "selftests: $compiler $std" "not installed"
			continue
		fi
		tap_cmd "header: $compiler $std" "$compiler" "-std=$std" \
			"${warn[@]}" -Iinclude -fsyntax-only "$tmp/header.cpp"
		for src in selftests/cxx/*.cpp; do
			"$compiler" "-std=$std" "${warn[@]}" -D_GNU_SOURCE \
				-Iinclude -fsyntax-only "$src" \
				>>"$tmp/all" 2>&1 || echo "$src" >>"$tmp/failed"
		done
		if [ -s "$tmp/failed" ]; then
			diag "$tmp/all"
			not_ok "selftests: $compiler $std"
		else
			ok "selftests: $compiler $std"
		fi
		rm -f "$tmp/all" "$tmp/failed"
	done
done

# The README's example.
readme_code C++ cpp >"$tmp/readme.cpp"
if [ ! -s "$tmp/readme.cpp" ]; then
	not_ok "README C++: found # no \`\`\`cpp block in README.md's \"## C++\""
	tap_finish
	exit
fi
for std in c++17 c++20; do
	if ! command -v "$cxx" >/dev/null 2>&1; then
		skipped "README C++: $std" "no C++ compiler ($cxx)"
		continue
	fi
	cmd=("$cxx" "-std=$std" "${warn[@]}" -Iinclude
	     ${extra[@]+"${extra[@]}"})
	if [ ${#libs[@]} -eq 0 ]; then
		tap_cmd "README C++: $std # compiled only" "${cmd[@]}" \
			-fsyntax-only "$tmp/readme.cpp"
		continue
	fi
	if ! "${cmd[@]}" -o "$tmp/readme" "$tmp/readme.cpp" "${libs[@]}" \
	     >"$tmp/out" 2>&1; then
		diag "$tmp/out"
		not_ok "README C++: $std # does not build"
		continue
	fi
	tap_exec "README C++: $std" "$tmp/readme"
done

tap_finish
