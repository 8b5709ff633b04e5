#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - run each libFuzzer harness for a while, as `make fuzz` does.
#
# Usage: fuzz/run.sh RUN SECONDS HARNESS... [-- LIBFUZZER-ARGS...]
#
# Each harness starts from a fresh copy of fuzz/corpus/ in RUN/<name>/corpus
# (the run never writes into fuzz/corpus/) and runs SECONDS; the first one
# that finds a crash, a sanitizer report, a leak or a broken invariant
# fails the run, with the input left in RUN/<name>/artifacts/. So does one
# that ran no input: an option the harness takes for its own (fuzz-peer's
# -write-seeds=DIR) makes it exit 0 before libFuzzer starts, and a run that
# fuzzed nothing must not pass.
set -eu -o pipefail

cd "$(dirname "$0")/.."
run=$1
seconds=$2
shift 2
progs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	progs+=("$1")
	shift
done
[ $# -eq 0 ] || shift

for prog in "${progs[@]}"; do
	dir=$run/${prog##*/}
	rm -rf "$dir"
	mkdir -p "$dir/corpus" "$dir/artifacts"
	cp fuzz/corpus/* "$dir/corpus/"
	# A 16 MiB ASan quarantine, not 256: twice the speed, still catching a
	# use after free within the last 16 MiB of frees. Inputs are
	# operations, and 1 KiB holds a few hundred; one that takes 30 s is
	# stuck.
	ASAN_OPTIONS=quarantine_size_mb=16:${ASAN_OPTIONS:-} \
	UBSAN_OPTIONS=print_stacktrace=1:${UBSAN_OPTIONS:-} \
		"$prog" -max_len=1024 -timeout=30 -print_final_stats=1 \
		-max_total_time="$seconds" -artifact_prefix="$dir/artifacts/" \
		"$@" "$dir/corpus" 2>&1 | tee "$dir/log"
	# -print_final_stats=1: every libFuzzer run that ends prints them.
	if ! grep -q '^stat::number_of_executed_units:' "$dir/log"; then
		echo "run.sh: ${prog##*/} ran no input (see $dir/log)" >&2
		exit 1
	fi
done
