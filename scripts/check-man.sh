#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-man.sh - every exported function has a man page, and the pages hold
# up.
#
# Usage: check-man.sh
#
# Prints kselftest-style TAP for scripts/run-tests.sh; scripts/README.md
# lists the tests.
#
# Environment:
#   CC                    compiler (default cc)
#   IPCSOCK_VERSION       MAJOR.MINOR the .TH lines must name
#   IPCSOCK_EXAMPLE_LIBS  what to link examples with, e.g.
#                         "build/libipcsock.a -luring -lpthread"; unset:
#                         examples are only compiled
#   IPCSOCK_EXAMPLE_FLAGS extra compiler and linker flags (e.g. the
#                         sanitizer flags the library was built with)
set -eu

cd "$(dirname "$0")/.."
cc=${CC:-cc}
map=lib/libipcsock.map
mandir="man"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=scripts/tap.sh
. scripts/tap.sh

# Print a file's lines as TAP comments.
# The lines of section $2 (".SH $2" up to the next .SH) of page $1.
section()
{
	awk -v want="$2" '
		/^\.SH/ { sub(/^\.SH[ \t]+/, ""); gsub(/"/, ""); in_sec = ($0 == want); next }
		in_sec' "$1"
}

# The page a link page points to (".so man3/foo.3" -> man/foo.3), if any.
link_target()
{
	sed -n 's|^\.so[[:space:]]\{1,\}man[0-9]/\(.*\)|'"$mandir"'/\1|p' "$1" | head -n 1
}

# Names in the NAME section: "a, b \- what" -> a b
page_names()
{
	section "$1" NAME | sed -n 's/[[:space:]]*\\-.*//p' | tr ',' ' '
}

# Exported functions: the global names of the version script.
cc_e=("$cc" -E -P -x c)
"${cc_e[@]}" "$map" | awk '
	/global:/ { global = 1; next }
	/local:/ || /}/ { global = 0; next }
	global && /^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*;/ {
		sub(/^[[:space:]]*/, ""); sub(/[[:space:]]*;.*/, ""); print
	}' | sort -u >"$tmp/symbols"

# The plan comes last, once the count is known (TAP allows either end).
echo "TAP version 13"

if [ ! -s "$tmp/symbols" ]; then
	not_ok "man: found no global symbol in $map"
fi

# 1. One page per exported function.
while read -r sym; do
	page=$mandir/$sym.3
	if [ ! -f "$page" ]; then
		not_ok "man: $sym # no $page"
		continue
	fi
	doc=$page
	target=$(link_target "$page")
	if [ -n "$target" ]; then
		if [ ! -f "$target" ]; then
			not_ok "man: $sym # $page links to $target, which does not exist"
			continue
		fi
		doc=$target
	fi
	if ! page_names "$doc" | tr ' ' '\n' | grep -qx "$sym"; then
		not_ok "man: $sym # NAME of $doc does not name it"
	elif ! section "$doc" SYNOPSIS | grep -q "$sym("; then
		not_ok "man: $sym # SYNOPSIS of $doc does not declare $sym()"
	else
		ok "man: $sym"
	fi
done <"$tmp/symbols"

if [ -f "$mandir/ipcsock.7" ]; then
	ok "man: ipcsock.7"
else
	not_ok "man: ipcsock.7 # missing"
fi

# 2. Each real page: lint, version, references; its example.
have_mandoc=$(command -v mandoc || true)
have_groff=$(command -v groff || true)
version=${IPCSOCK_VERSION:-}
example_flags=(-std=gnu11 -Wall -Wextra -Werror -Iinclude)
read -r -a extra <<<"${IPCSOCK_EXAMPLE_FLAGS:-}"
read -r -a uring_cflags <<<"$(pkg-config --cflags liburing 2>/dev/null || true)"

for page in "$mandir"/*.[37]; do
	[ -f "$page" ] || continue
	grep -q '^\.so' "$page" && continue
	name=${page##*/}
	problems=0
	: >"$tmp/out"

	if [ -n "$have_mandoc" ]; then
		mandoc -Tlint -Wwarning "$page" >>"$tmp/out" 2>&1 || true
	fi
	if [ -n "$have_groff" ]; then
		groff -man -Tutf8 -ww -z "$page" >>"$tmp/out" 2>&1 || true
	fi
	[ -s "$tmp/out" ] && problems=1
	if [ -n "$version" ] &&
	   ! grep -q "^\.TH .*\"libipcsock $version\"" "$page"; then
		echo "$page: .TH does not name \"libipcsock $version\"" >>"$tmp/out"
		problems=1
	fi
	# References look like ".BR ipcsock_send (3)," or "\fBipcsock\fP(7)".
	sed -n 's/^\.BR[[:space:]]\{1,\}\(ipcsock[a-z_]*\)[[:space:]]*(\([37]\)).*/\1.\2/p' \
		"$page" | sort -u >"$tmp/refs"
	while read -r ref; do
		if [ ! -f "$mandir/$ref" ]; then
			echo "$page: refers to $ref, which is not in $mandir/" >>"$tmp/out"
			problems=1
		fi
	done <"$tmp/refs"

	if [ "$problems" -eq 0 ]; then
		ok "page: $name"
	else
		diag "$tmp/out"
		not_ok "page: $name"
	fi
	if [ -z "$have_mandoc$have_groff" ]; then
		echo "# page: $name: neither mandoc nor groff installed, not linted"
	fi

	# The example program.
	section "$page" EXAMPLE | awk '/^\.EE/ { ex = 0 } ex; /^\.EX/ { ex = 1 }' |
		sed -e 's/\\-/-/g' -e 's/\\&//g' -e "s/\\\\(aq/'/g" \
		    -e 's/\\(dq/"/g' -e 's/\\e/\\/g' >"$tmp/example.c"
	[ -s "$tmp/example.c" ] || continue
	if [ -n "${IPCSOCK_EXAMPLE_LIBS:-}" ]; then
		read -r -a libs <<<"$IPCSOCK_EXAMPLE_LIBS"
		cmd=("$cc" "${example_flags[@]}" ${uring_cflags[@]+"${uring_cflags[@]}"}
		     ${extra[@]+"${extra[@]}"} -o "$tmp/example" "$tmp/example.c"
		     "${libs[@]}")
	else
		cmd=("$cc" "${example_flags[@]}" ${uring_cflags[@]+"${uring_cflags[@]}"}
		     ${extra[@]+"${extra[@]}"} -fsyntax-only "$tmp/example.c")
	fi
	if ! "${cmd[@]}" >"$tmp/out" 2>&1; then
		diag "$tmp/out"
		not_ok "example: $name # does not compile"
		continue
	fi
	if [ -z "${IPCSOCK_EXAMPLE_LIBS:-}" ]; then
		ok "example: $name # compiled only"
		continue
	fi
	tap_exec "example: $name" "$tmp/example"
done

# 3. No page for a function that is not exported.
for page in "$mandir"/*.3; do
	[ -f "$page" ] || continue
	if grep -q '^\.so' "$page"; then
		name=${page##*/}
		echo "${name%.3}"
		continue
	fi
	page_names "$page" | tr ' ' '\n' | sed '/^$/d'
done | sort -u >"$tmp/documented"
stray=$(comm -13 "$tmp/symbols" "$tmp/documented" | paste -s -d ' ')
if [ -z "$stray" ]; then
	ok "man: no stray pages"
else
	not_ok "man: no stray pages # documented but not exported: $stray"
fi

tap_finish
