# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# tap.sh - what the packaging checks share, sourced by each: kselftest-style
# TAP (ok/not_ok/skipped number the results, diag prints a file as
# comments, tap_finish prints the plan and the "# Totals:" line that
# scripts/run-tests.sh adds up, and succeeds when nothing failed); tests
# made of one command (tap_cmd, tap_exec); the C++ compiler to use
# (cxx_of_cc); a README code block (readme_code).

n=0
pass=0
fail=0
skip=0

ok()
{
	n=$((n + 1))
	pass=$((pass + 1))
	echo "ok $n $1"
}

not_ok()
{
	n=$((n + 1))
	fail=$((fail + 1))
	echo "not ok $n $1"
}

skipped()
{
	n=$((n + 1))
	skip=$((skip + 1))
	echo "ok $n $1 # SKIP $2"
}

tap_finish()
{
	echo "1..$n"
	echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
	[ "$fail" -eq 0 ]
}

diag()
{
	sed 's/^/# /' "$1"
}

# tap_cmd NAME COMMAND...: passed when COMMAND succeeds, else its output
# as comments.
tap_cmd()
{
	local name=$1 out

	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		printf '%s\n' "$out" | sed 's/^/# /'
		not_ok "$name"
	fi
}

# tap_exec NAME PROGRAM [SECONDS]: run PROGRAM for at most SECONDS
# (default 20), its output as comments; passed when it exits 0.
tap_exec()
{
	local out rc

	set +e
	out=$(timeout -k 5 "${3:-20}" "$2" </dev/null 2>&1)
	rc=$?
	set -e
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/# /'
	if [ "$rc" -eq 0 ]; then
		ok "$1"
	else
		not_ok "$1 # exit status $rc"
	fi
}

# The C++ compiler: CXX, else the one of CC's family (the library's
# sanitizer flags need that compiler's runtime), else c++.
cxx_of_cc()
{
	local cc=${CC:-cc}

	case ${cc##*/} in
	*clang*) echo "${CXX:-${cc/clang/clang++}}" ;;
	*gcc*) echo "${CXX:-${cc/gcc/g++}}" ;;
	*) echo "${CXX:-c++}" ;;
	esac
}

# readme_code HEADING LANG: the lines between the first "```LANG" and the
# next "```" after the "## HEADING" line of README.md, before the next
# heading.
readme_code()
{
	awk -v sec="## $1" -v fence="$2" '
		/^## / { in_sec = ($0 == sec); next }
		!in_sec { next }
		code && /^```/ { exit }
		code { print }
		$0 ~ "^```" fence "[[:space:]]*$" { code = 1 }' README.md
}
