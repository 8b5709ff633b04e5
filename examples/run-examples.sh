#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-examples - run each example program for a bounded time, as `make
# check` does, and count each run as one test.
#
# `make examples` installs this script as $(O)/examples/run-examples, next
# to the programs it runs. Its output is TAP, ending with a kselftest-style
# "# Totals: pass:N fail:N xfail:0 xpass:0 skip:N error:0" line, which is
# what scripts/run-tests.sh adds up. A program passes with exit status 0,
# is skipped with 4 (KSFT_SKIP: e.g. no io_uring), fails otherwise.
#
# Usage: run-examples [NAME...]     (default: all; names as listed below)
#
# Environment:
#   IPCSOCK_EXAMPLE_TIMEOUT   seconds one example may take (default 180:
#                             a bound for hangs; each program also has its
#                             own, shorter deadline)
set -u

dir=$(cd "$(dirname "$0")" && pwd)
timeout_s=${IPCSOCK_EXAMPLE_TIMEOUT:-180}

# name:command, the command relative to this directory. Durations are
# short here; run the programs by hand for the full-length runs.
all=(
	"camera-pipeline:camera-pipeline/pipeline-handler --duration 2.5 --max-late 25"
	"camera-pipeline-crash:camera-pipeline/pipeline-handler --duration 3 --kill-worker-after 240"
	"epoll-host:epoll-host --duration 1000"
	"glib-host:glib-host --duration 1000"
	"libcamera-ipa:libcamera-ipa/vimc-pipeline --duration 2"
	"libcamera-ipa-kill:libcamera-ipa/vimc-pipeline --duration 2 --kill-after 500"
	"uring-server:uring-server --clients 16"
)

selected=()
if [ $# -eq 0 ]; then
	selected=("${all[@]}")
else
	for name in "$@"; do
		found=
		for entry in "${all[@]}"; do
			if [ "${entry%%:*}" = "$name" ]; then
				selected+=("$entry")
				found=1
			fi
		done
		if [ -z "$found" ]; then
			echo "run-examples: no example '$name'" >&2
			exit 2
		fi
	done
fi

pass=0
fail=0
skip=0
n=0
echo "TAP version 13"
echo "1..${#selected[@]}"
for entry in "${selected[@]}"; do
	n=$((n + 1))
	name=${entry%%:*}
	cmd=${entry#*:}
	echo "# $name: $cmd"
	start=$(date +%s.%N)
	# Word splitting of the command line is intended.
	# shellcheck disable=SC2086
	timeout -k 5 "$timeout_s" "$dir"/$cmd 2>&1 | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	case $rc in
	0)
		pass=$((pass + 1))
		echo "ok $n $name # ${took}s"
		;;
	4)
		skip=$((skip + 1))
		echo "ok $n $name # SKIP"
		;;
	124)
		fail=$((fail + 1))
		echo "not ok $n $name # timed out after ${timeout_s}s"
		;;
	*)
		fail=$((fail + 1))
		echo "not ok $n $name # exit status $rc, ${took}s"
		;;
	esac
done
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
[ "$fail" -eq 0 ]
