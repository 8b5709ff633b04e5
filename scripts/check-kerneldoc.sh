#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-kerneldoc.sh - the public header's kernel-doc comments are complete
# and clean.
#
# Usage: check-kerneldoc.sh
#
# Runs the kernel's scripts/kernel-doc (from `make deps`) over
# include/ipcsock.h; prints kselftest-style TAP for scripts/run-tests.sh.
# scripts/README.md lists the tests.
#
# Environment:
#   IPCSOCK_CACHE  where make deps put the kernel files (default build/.cache)
#   CC             to preprocess the header (default cc)
set -eu

cd "$(dirname "$0")/.."
header=include/ipcsock.h
cache=${IPCSOCK_CACHE:-build/.cache}
kdoc=$cache/kernel-doc/kernel-doc
cc=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=scripts/tap.sh
. scripts/tap.sh

finish()
{
	tap_finish
	exit
}

echo "TAP version 13"

if ! perl -MPod::Usage -e 1 >/dev/null 2>&1; then
	skipped "kernel-doc -Wall" "perl with Pod::Usage is not installed"
	finish
fi
if [ ! -s "$kdoc" ]; then
	not_ok "kernel-doc -Wall # $kdoc is missing: run make deps"
	finish
fi

# 1. kernel-doc's own checks.
if perl "$kdoc" -none -Wall -Werror "$header" >"$tmp/out" 2>&1 &&
   [ ! -s "$tmp/out" ]; then
	ok "kernel-doc -Wall"
else
	diag "$tmp/out"
	not_ok "kernel-doc -Wall"
fi

# 2. Every exported function documented, with Context: and Return:.
# The IPCSOCK_API declarations, as scripts/check-abi.sh finds them: one
# line each, "<type> <name>".
"$cc" -E -P -x c -DIPCSOCK_API=IPCSOCK_API "$header" | tr '\n' ' ' |
	tr ';' '\n' | grep -w IPCSOCK_API |
	sed -E -e 's/__attribute__[[:space:]]*\(\(([^()]|\([^()]*\))*\)\)//g' \
	       -e 's/^.*IPCSOCK_API[[:space:]]*//' \
	       -e 's/^(.*[^A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\(.*/\1 \2/' \
	       -e 's/[[:space:]]+/ /g' >"$tmp/declared"
if [ ! -s "$tmp/declared" ]; then
	not_ok "function: found no IPCSOCK_API declaration in $header"
fi

# From the reST output: "<name> <sections>" for each documented function,
# the sections as kernel-doc renders them ("**Context**" -> Context).
perl "$kdoc" -rst "$header" 2>/dev/null | awk '
	function flush() { if (name != "") print name, secs; name = "" }
	/^\.\. c:/ { flush() }
	/^\.\. c:function::/ {
		sub(/[[:space:]]*\(.*/, ""); name = $NF; secs = ""
	}
	name != "" && /^  \*\*[A-Za-z]+\*\*$/ {
		s = $1; gsub(/\*/, "", s); secs = secs " " s
	}
	END { flush() }' >"$tmp/documented"

while read -r line; do
	name=${line##* }
	type=${line% *}
	if ! secs=$(awk -v n="$name" '$1 == n { $1 = ""; print; f = 1; exit }
				    END { exit !f }' "$tmp/documented"); then
		not_ok "function: $name() # no kernel-doc comment"
	elif [[ " $secs " != *" Context "* ]]; then
		not_ok "function: $name() # no Context: section"
	elif [ "$type" != void ] && [[ " $secs " != *" Return "* ]]; then
		not_ok "function: $name() # returns $type, no Return: section"
	else
		ok "function: $name()"
	fi
done <"$tmp/declared"

# 3. Every struct, enum and typedef defined there documented.
perl "$kdoc" -none -v "$header" 2>&1 |
	sed -n 's/.*info: Scanning doc for \(struct\|enum\|typedef\) \([A-Za-z0-9_]*\).*/\1 \2/p' \
	>"$tmp/types-documented"
sed -n -E -e 's/^(struct|enum)[[:space:]]+([A-Za-z0-9_]+)[[:space:]]*\{.*/\1 \2/p' \
	  -e 's/^typedef[^(]*\([[:space:]]*\*[[:space:]]*([A-Za-z0-9_]+)\).*/typedef \1/p' \
	  -e 's/^typedef.*[^A-Za-z0-9_]([A-Za-z0-9_]+)[[:space:]]*;.*/typedef \1/p' \
	"$header" >"$tmp/types"
while read -r kind name; do
	if grep -qx "$kind $name" "$tmp/types-documented"; then
		ok "type: $kind $name"
	else
		not_ok "type: $kind $name # no kernel-doc comment"
	fi
done <"$tmp/types"

finish
