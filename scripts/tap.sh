# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# tap.sh - kselftest-style TAP for the packaging checks, sourced by
# check-man.sh and check-consumer.sh: ok/not_ok/skipped number the
# results, tap_finish prints the plan and the "# Totals:" line that
# scripts/run-tests.sh adds up, and succeeds when nothing failed.

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
