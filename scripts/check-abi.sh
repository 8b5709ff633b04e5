#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-abi.sh - the shared library exports exactly what the header promises.
#
# Usage: check-abi.sh MAJOR.MINOR HEADER VERSION_SCRIPT SHARED_LIB
#
# Fails unless:
#  - the newest node of VERSION_SCRIPT is LIBIPCSOCK_<MAJOR.MINOR>, so the
#    release number and the version script move together;
#  - the functions HEADER declares with IPCSOCK_API, the names
#    VERSION_SCRIPT lists as global and the symbols SHARED_LIB exports are
#    the same set;
#  - every exported symbol carries a LIBIPCSOCK_ version.
#
# Environment: CC (to preprocess HEADER, default cc), NM (default nm).
set -eu

if [ $# -ne 4 ]; then
	echo "usage: $0 MAJOR.MINOR HEADER VERSION_SCRIPT SHARED_LIB" >&2
	exit 2
fi
version=$1
header=$2
map=$3
so=$4
cc=${CC:-cc}
nm=${NM:-nm}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

error()
{
	echo "check-abi: $*" >&2
	status=1
}

# The version script without its comments.
"$cc" -E -P -x c "$map" >"$tmp/map.i"

# Nodes look like "LIBIPCSOCK_0.1 {"; the last one is the newest.
newest=$(sed -n 's/^[[:space:]]*\(LIBIPCSOCK_[0-9.]*\)[[:space:]]*{.*/\1/p' \
	 "$tmp/map.i" | tail -n 1)
if [ "$newest" != "LIBIPCSOCK_$version" ]; then
	error "newest node of $map is '${newest:-none}', the Makefile's version is $version: add a LIBIPCSOCK_$version node or fix VERSION_MAJOR/VERSION_MINOR"
fi

# IPCSOCK_API functions: let the preprocessor drop comments and #if'ed-out
# code, keep the marker, then take the name before the first "(" of every
# declaration that carries it (after removing __attribute__((...))).
"$cc" -E -P -x c -DIPCSOCK_API=IPCSOCK_API "$header" >"$tmp/header.i"
tr '\n' ' ' <"$tmp/header.i" | tr ';' '\n' |
	grep -w IPCSOCK_API |
	sed -E -e 's/__attribute__[[:space:]]*\(\(([^()]|\([^()]*\))*\)\)//g' \
	       -e 's/^[^(]*[^A-Za-z0-9_(]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\(.*/\1/' |
	sort -u >"$tmp/header"

# Names listed between "global:" and "local:" (or the node's end).
awk '
	/global:/ { global = 1; next }
	/local:/ || /}/ { global = 0; next }
	global && /^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*;/ {
		sub(/^[[:space:]]*/, ""); sub(/[[:space:]]*;.*/, ""); print
	}' "$tmp/map.i" | sort -u >"$tmp/map"

# Defined dynamic symbols, e.g. "ipcsock_new@@LIBIPCSOCK_0.1"; the
# version-definition symbols themselves (type A) are not functions.
"$nm" -D --defined-only "$so" | awk '$2 != "A" { print $3 }' >"$tmp/dynsym"
grep -v -E '@@?LIBIPCSOCK_[0-9.]+$' "$tmp/dynsym" >"$tmp/unversioned" || true
if [ -s "$tmp/unversioned" ]; then
	error "exported without a LIBIPCSOCK_ version: $(paste -s -d ' ' "$tmp/unversioned")"
fi
sed 's/@.*//' "$tmp/dynsym" | sort -u >"$tmp/exported"

compare()
{
	local a=$1 b=$2 what=$3 names

	names=$(comm -23 "$tmp/$a" "$tmp/$b" | paste -s -d ' ')
	[ -z "$names" ] || error "$what: $names"
}
compare header map "declared IPCSOCK_API in $header but not in $map"
compare map header "in $map but not declared IPCSOCK_API in $header"
compare map exported "in $map but not defined in $so"
compare exported map "exported by $so but not in $map"

if [ ! -s "$tmp/header" ]; then
	error "found no IPCSOCK_API declaration in $header"
fi
exit $status
