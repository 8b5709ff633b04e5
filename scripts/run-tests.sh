#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-tests.sh - run kselftest-harness programs and add up their results.
#
# Usage: run-tests.sh [--valgrind] PROGRAM...
#
# The output is TAP, as the kernel's selftest runner writes it: a plan, each
# program's own output (its TAP included) as "# " comment lines, one result
# line per program. Then, last and alone on its line:
#
#   N passed, N failed, N skipped
#
# adding up the "# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N"
# line each harness program prints at exit: pass and xfail count as passed,
# fail, xpass and error as failed (as ksft_finished() sees them), skip as
# skipped. A program that exits with a status other than 0 or 4 (KSFT_SKIP)
# while its totals show no failure - a sanitizer or valgrind finding at
# exit - adds one failure. A program that prints no totals counts once:
# passed if it exited 0, skipped if 4, failed otherwise (crash, timeout).
#
# Exits 1 if anything failed or nothing passed, else 0.
#
# Options and environment:
#   --valgrind, VALGRIND=1   run every program under valgrind: memory
#                            errors and leaks fail the test they occur in,
#                            fds a program leaves open at exit (other than
#                            those it inherited) fail the program
#   IPCSOCK_TEST_TIMEOUT     seconds a program may run (default 600)
set -eu

valgrind=${VALGRIND:-0}
while [ $# -gt 0 ]; do
	case $1 in
	--valgrind)
		valgrind=1
		shift
		;;
	--)
		shift
		break
		;;
	-*)
		echo "usage: $0 [--valgrind] PROGRAM..." >&2
		exit 2
		;;
	*)
		break
		;;
	esac
done

timeout_s=${IPCSOCK_TEST_TIMEOUT:-600}
runner=()
if [ "$valgrind" = 1 ]; then
	command -v valgrind >/dev/null 2>&1 ||
		{ echo "run-tests.sh: valgrind is not installed" >&2; exit 1; }
	runner=(valgrind --error-exitcode=99 --track-fds=yes --leak-check=full -q)
fi

# Stop at the first undefined behaviour, with a stack, in SANITIZE= builds.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

passed=0
failed=0
skipped=0
n=0

echo "TAP version 13"
echo "1..$#"
for prog in "$@"; do
	n=$((n + 1))
	name=${prog##*/}
	echo "# selftests: $name"

	if [ ! -x "$prog" ]; then
		echo "not ok $n selftests: $name # not built: $prog"
		failed=$((failed + 1))
		continue
	fi

	set +e
	timeout -k 10 "$timeout_s" ${runner[@]+"${runner[@]}"} "$prog" 2>&1 |
		tee "$log" | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	set -e

	totals=$(sed -n 's/^# Totals: pass:\([0-9]*\) fail:\([0-9]*\) xfail:\([0-9]*\) xpass:\([0-9]*\) skip:\([0-9]*\) error:\([0-9]*\).*/\1 \2 \3 \4 \5 \6/p' "$log" |
		 tail -n 1)
	if [ "$rc" -eq 124 ]; then
		why="timed out after ${timeout_s}s"
	elif [ "$rc" -gt 128 ]; then
		why="killed by signal $((rc - 128))"
	else
		why="exit status $rc"
	fi
	if [ -n "$totals" ]; then
		read -r t_pass t_fail t_xfail t_xpass t_skip t_error <<<"$totals"
		p=$((t_pass + t_xfail))
		f=$((t_fail + t_xpass + t_error))
		s=$t_skip
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 4 ] && [ "$f" -eq 0 ]; then
			f=1
			why="$why although no test failed"
		fi
	else
		p=0
		f=0
		s=0
		case $rc in
		0) p=1 ;;
		4) s=1 ;;
		*) f=1; why="$why, no totals" ;;
		esac
	fi

	# valgrind before 3.22 lists fds left open at exit without counting
	# them as errors; count those the program (or a test child) opened.
	if [ "$valgrind" = 1 ]; then
		fds=$(awk '/^==[0-9]+== Open .*[0-9]+:/ { open = 1; next }
			   open { if (!/<inherited from parent>/) n++; open = 0 }
			   END { print n + 0 }' "$log")
		if [ "$fds" -gt 0 ]; then
			[ "$f" -gt 0 ] || f=1
			why="$why, valgrind: $fds fds left open at exit"
		fi
	fi

	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))

	summary="pass:$p fail:$f skip:$s"
	if [ "$f" -ne 0 ]; then
		echo "not ok $n selftests: $name # $summary, $why"
	elif [ "$p" -eq 0 ]; then
		echo "ok $n selftests: $name # SKIP $summary"
	else
		echo "ok $n selftests: $name # $summary"
	fi
done

if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
	echo "# no test ran (no selftest programs, or every test skipped)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
