#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-deps.sh - deps.sh tells a Debian 12 system whose apt sources lack
# bookworm-security how to get linux-source-6.12, and its advice works.
#
# Usage: check-deps.sh
#
# Prints kselftest-style TAP for scripts/run-tests.sh; scripts/README.md
# says how it fakes a fresh system and lists the tests.
set -eu

cd "$(dirname "$0")/.."
lists=/var/lib/apt/lists
deb=deb.debian.org_debian_dists
sec=deb.debian.org_debian-security_dists_bookworm-security

# shellcheck source=scripts/tap.sh
. scripts/tap.sh

tests=("deps: sources without bookworm-security"
       "deps: the advised sources line"
       "deps: the advised deb822 stanza")

skip_all()
{
	local t

	for t in "${tests[@]}"; do
		skipped "$t" "$1"
	done
	tap_finish
	exit
}

echo "TAP version 13"

command -v apt-cache >/dev/null 2>&1 || skip_all "no apt-cache"
for f in "${deb}_bookworm_InRelease" "${deb}_bookworm-updates_InRelease" \
	 "${sec}_InRelease"; do
	[ -f "$lists/$f" ] || skip_all "$lists has no $f"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/parts" "$tmp/cache/archives/partial"
: >"$tmp/status"
cat >"$tmp/apt.conf" <<EOF
Dir::Etc::sourcelist "$tmp/sources.list";
Dir::Etc::sourceparts "$tmp/parts";
Dir::State::Lists "$tmp/lists";
Dir::State::status "$tmp/status";
Dir::Cache "$tmp/cache";
EOF
cat >"$tmp/sources.list" <<EOF
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
EOF
for f in "$lists/${deb}_bookworm_"* "$lists/${deb}_bookworm-updates_"*; do
	ln -s "$f" "$tmp/lists/"
done

# deps OUT: run the check, its output to OUT; succeed if deps.sh did.
deps()
{
	APT_CONFIG=$tmp/apt.conf bash scripts/deps.sh --check-apt \
		linux-source-6.12 >"$1" 2>&1
}

# 1. A minimal system's sources.
line=
if deps "$tmp/minimal"; then
	diag "$tmp/minimal"
	not_ok "${tests[0]} # deps.sh found the package"
else
	diag "$tmp/minimal"
	line=$(sed -n "s/^ *echo '\(deb .*bookworm-security.*\)' > .*/\1/p" \
		   "$tmp/minimal")
	if [ -n "$line" ]; then
		ok "${tests[0]}"
	else
		not_ok "${tests[0]} # no bookworm-security sources line in the message"
	fi
fi

# 2. With what it advised, and the lists apt-get update would fetch.
for f in "$lists/${sec}_"*; do
	ln -s "$f" "$tmp/lists/"
done
if [ -z "$line" ]; then
	not_ok "${tests[1]} # no advice to follow"
else
	echo "# $line"
	echo "$line" >"$tmp/parts/bookworm-security.list"
	if deps "$tmp/out"; then
		ok "${tests[1]}"
	else
		diag "$tmp/out"
		not_ok "${tests[1]}"
	fi
	rm "$tmp/parts/bookworm-security.list"
fi

# 3. The stanza: the indented "Field: value" lines of the message.
sed -n 's/^ \{4\}\([A-Z][A-Za-z-]*: .*\)/\1/p' "$tmp/minimal" \
	>"$tmp/parts/debian.sources"
if ! grep -q '^Suites: bookworm-security$' "$tmp/parts/debian.sources"; then
	not_ok "${tests[2]} # no deb822 stanza in the message"
elif deps "$tmp/out"; then
	ok "${tests[2]}"
else
	diag "$tmp/parts/debian.sources"
	diag "$tmp/out"
	not_ok "${tests[2]}"
fi

tap_finish
