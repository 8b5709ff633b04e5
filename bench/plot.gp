# SPDX-License-Identifier: MIT
#
# Draws the CSV that `ipcsock-bench --csv FILE` writes (`make bench-plot`):
#   gnuplot -c bench/plot.gp FILE.csv [TERMINAL] > bench.svg
# TERMINAL (default svg) is a gnuplot terminal and its options but the size,
# e.g. pngcairo.
# Left: round-trip time percentiles of each implementation in the ping-pong
# row with 64-byte messages and no fds (else the first ping-pong row).
# Right: stream throughput against batch size, in the stream rows with
# 64-byte messages and no fds (else the first stream row's size and fds).

if (ARGC < 1) {
	print "usage: gnuplot -c plot.gp FILE.csv [TERMINAL] > OUT"
	exit status 2
}
csv = ARG1
set datafile separator comma
set datafile columnheaders
# Rows of other scenarios are NaN in the using expressions: skip them
# without breaking the lines.
set datafile missing NaN

is64(s, f) = s == 64 && f == 0
# Which rows to draw: got[1] ping-pong, got[2] stream; 2 once a 64 B,
# no-fd row is found, 1 while only another one is.
array got[2] = [0, 0]
array size[2]
array fds[2]
take(i, s, f) = (got[i] = 1 + is64(s, f), size[i] = s, fds[i] = f, 0)
note(i, s, f) = i && (!got[i] || (got[i] == 1 && is64(s, f))) ? \
		take(i, s, f) : 0
scen(sc) = sc eq "pingpong" ? 1 : sc eq "stream" ? 2 : 0
stats csv using (note(scen(strcol("scenario")), column("size"), \
		      column("fds"))) nooutput
if (!got[1] && !got[2]) {
	print sprintf("plot.gp: %s: no ping-pong or stream rows", csv)
	exit status 1
}
row(i) = scen(strcol("scenario")) == i && column("size") == size[i] && \
	 column("fds") == fds[i]

# Ping-pong: each implementation's five percentiles, in arrays.
pct = "median_us p90_us p99_us p999_us max_us"
array impl[64]
array rtt[64 * 5]
n = 0
keep(k) = (rtt[5 * (n - 1) + k] = column(word(pct, k)), 0)
add_rtt(s) = (n = n + 1, impl[n] = s, keep(1), keep(2), keep(3), keep(4), \
	      keep(5))
if (got[1]) {
	stats csv using (row(1) && n < 64 ? add_rtt(strcol("impl")) : 0) nooutput
}

# Stream: the implementations, in the order they first appear.
impls = " "
add_impl(s) = strstrt(impls, " " . s . " ") ? 0 : (impls = impls . s . " ", 0)
if (got[2]) {
	stats csv using (row(2) ? add_impl(strcol("impl")) : 0) nooutput
}

both = got[1] && got[2]
width = both ? 1200 : 640
if (ARGC >= 2) {
	set terminal @ARG2 size width, 500
} else {
	set terminal svg size width, 500 dynamic font "sans,11" \
		background "white"
}
set grid
set key top left
set multiplot layout 1, (both ? 2 : 1) title "ipcsock-bench"

if (got[1]) {
	set title sprintf("pingpong, %g B, %g fds: round-trip time", \
			  size[1], fds[1])
	set xlabel "percentile (all rounds pooled)"
	set ylabel "RTT (us)"
	set logscale y
	set xrange [-0.2:4.2]
	set xtics ("p50" 0, "p90" 1, "p99" 2, "p99.9" 3, "max" 4)
	# The '+' pseudo-file has no header line.
	set datafile nocolumnheaders
	plot for [i=1:n] [k=0:4:1] '+' using (k):(rtt[5 * (i - 1) + k + 1]) \
		with linespoints title impl[i]
	unset logscale y
	set datafile columnheaders
}

if (got[2]) {
	set title sprintf("stream, %g B, %g fds: throughput", size[2], fds[2])
	set xlabel "batch size"
	set ylabel "million messages/s"
	set logscale x 2
	set xrange [0.8:48]
	set yrange [0:*]
	set xtics (1, 2, 4, 8, 16, 32)
	plot for [s in impls] csv \
		using (row(2) && strcol("impl") eq s ? column("batch") : NaN):\
		      (column("msgs_per_s") / 1e6) \
		smooth unique with linespoints title s
}
unset multiplot
