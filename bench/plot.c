// SPDX-License-Identifier: MIT
/*
 * --plot FILE: read the JSON records this program wrote and print a
 * gnuplot script (to pipe into gnuplot) drawing
 *   - the round-trip time distribution of each implementation, from the
 *     ping-pong row with 64-byte messages and no fds (or the first one),
 *   - throughput against batch size, from the stream rows of that size.
 * The reader only understands what report.c writes: one record per line.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define PLOT_MAX_RECORDS	4096

struct plot_rec {
	char scenario[16];
	char impl[32];
	double size, fds, batch;
	double pct[5];		/* median, p90, p99, p99.9, max */
	double msgs_per_s;
};

static const char *const pct_keys[5] = {
	"median_us", "p90_us", "p99_us", "p999_us", "max_us",
};

static const char *find_key(const char *line, const char *key)
{
	char pat[48];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

static double get_num(const char *line, const char *key)
{
	const char *p = find_key(line, key);

	if (!p || !strncmp(p, "null", 4))
		return NAN;
	return strtod(p, NULL);
}

static void get_str(const char *line, const char *key, char *buf,
		    size_t len)
{
	const char *p = find_key(line, key);
	size_t n = 0;

	if (p && *p == '"') {
		for (p++; *p && *p != '"' && n + 1 < len; p++)
			buf[n++] = *p;
	}
	buf[n] = '\0';
}

static int cmp_batch(const void *a, const void *b)
{
	const struct plot_rec *x = *(struct plot_rec * const *)a;
	const struct plot_rec *y = *(struct plot_rec * const *)b;

	return x->batch < y->batch ? -1 : x->batch > y->batch;
}

static bool same_row(const struct plot_rec *a, const char *scenario,
		     double size, double fds)
{
	return !strcmp(a->scenario, scenario) && a->size == size &&
	       a->fds == fds;
}

/* Pick the 64 B, 0 fd rows of @scenario, or else the first row's size. */
static bool pick(const struct plot_rec *r, unsigned int n,
		 const char *scenario, double *size, double *fds)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (same_row(&r[i], scenario, 64, 0)) {
			*size = 64;
			*fds = 0;
			return true;
		}
	}
	for (i = 0; i < n; i++) {
		if (!strcmp(r[i].scenario, scenario)) {
			*size = r[i].size;
			*fds = r[i].fds;
			return true;
		}
	}
	return false;
}

static void emit_rtt(FILE *out, const struct plot_rec *r, unsigned int n,
		     double size, double fds)
{
	unsigned int i, k, nr = 0;

	for (i = 0; i < n; i++) {
		if (!same_row(&r[i], "pingpong", size, fds))
			continue;
		fprintf(out, "$rtt%u << EOD\n", i);
		for (k = 0; k < 5; k++)
			if (!isnan(r[i].pct[k]))
				fprintf(out, "%u %g\n", k, r[i].pct[k]);
		fprintf(out, "EOD\n");
	}
	fprintf(out, "set title \"pingpong, %g B, %g fds: round-trip time\"\n",
		size, fds);
	fprintf(out, "set xlabel \"percentile (all rounds pooled)\"\n");
	fprintf(out, "set ylabel \"RTT (us)\"\n");
	fprintf(out, "set logscale y\nunset logscale x\n");
	fprintf(out, "set xrange [-0.2:4.2]\n");
	fprintf(out, "set xtics (\"p50\" 0, \"p90\" 1, \"p99\" 2, \"p99.9\" 3, \"max\" 4)\n");
	fprintf(out, "plot");
	for (i = 0; i < n; i++) {
		if (!same_row(&r[i], "pingpong", size, fds))
			continue;
		fprintf(out, "%s $rtt%u using 1:2 with linespoints title \"%s\"",
			nr++ ? "," : "", i, r[i].impl);
	}
	fprintf(out, "\n");
}

static void emit_batch(FILE *out, const struct plot_rec *r, unsigned int n,
		       double size, double fds)
{
	const struct plot_rec *sel[PLOT_MAX_RECORDS];
	unsigned int i, j, k, nr = 0, nsel = 0;
	bool seen;

	for (i = 0; i < n; i++)
		if (same_row(&r[i], "stream", size, fds) &&
		    !isnan(r[i].msgs_per_s))
			sel[nsel++] = &r[i];
	qsort(sel, nsel, sizeof(sel[0]), cmp_batch);
	/* One data block per implementation, in batch order. */
	for (i = 0; i < nsel; i++) {
		seen = false;
		for (j = 0; j < i; j++)
			if (!strcmp(sel[j]->impl, sel[i]->impl))
				seen = true;
		if (seen)
			continue;
		fprintf(out, "$tp%u << EOD\n", i);
		for (k = i; k < nsel; k++)
			if (!strcmp(sel[k]->impl, sel[i]->impl))
				fprintf(out, "%g %g\n", sel[k]->batch,
					sel[k]->msgs_per_s / 1e6);
		fprintf(out, "EOD\n");
	}
	fprintf(out, "set title \"stream, %g B, %g fds: throughput\"\n",
		size, fds);
	fprintf(out, "set xlabel \"batch size\"\n");
	fprintf(out, "set ylabel \"million messages/s\"\n");
	fprintf(out, "unset logscale y\nset logscale x 2\n");
	fprintf(out, "set xrange [0.8:48]\nset yrange [0:*]\n");
	fprintf(out, "set xtics (1, 2, 4, 8, 16, 32)\n");
	fprintf(out, "plot");
	for (i = 0; i < nsel; i++) {
		seen = false;
		for (j = 0; j < i; j++)
			if (!strcmp(sel[j]->impl, sel[i]->impl))
				seen = true;
		if (seen)
			continue;
		fprintf(out, "%s $tp%u using 1:2 with linespoints title \"%s\"",
			nr++ ? "," : "", i, sel[i]->impl);
	}
	fprintf(out, "\n");
}

int plot_script(const char *json_path, FILE *out)
{
	static struct plot_rec recs[PLOT_MAX_RECORDS];
	double pp_size, pp_fds, st_size, st_fds;
	bool have_pp, have_st;
	unsigned int n = 0, k;
	char line[4096];
	FILE *f;

	f = fopen(json_path, "r");
	if (!f)
		return -errno;
	while (n < PLOT_MAX_RECORDS && fgets(line, sizeof(line), f)) {
		struct plot_rec *r = &recs[n];

		if (line[0] != '{')
			continue;
		get_str(line, "scenario", r->scenario, sizeof(r->scenario));
		get_str(line, "impl", r->impl, sizeof(r->impl));
		r->size = get_num(line, "size");
		r->fds = get_num(line, "fds");
		r->batch = get_num(line, "batch");
		for (k = 0; k < 5; k++)
			r->pct[k] = get_num(line, pct_keys[k]);
		r->msgs_per_s = get_num(line, "msgs_per_s");
		if (r->scenario[0] && r->impl[0])
			n++;
	}
	fclose(f);
	have_pp = pick(recs, n, "pingpong", &pp_size, &pp_fds);
	have_st = pick(recs, n, "stream", &st_size, &st_fds);
	if (!have_pp && !have_st)
		return -ENOENT;

	fprintf(out, "set terminal svg size %u,500 dynamic font \"sans,11\" background \"white\"\n",
		have_pp && have_st ? 1200 : 640);
	fprintf(out, "set grid\nset key top left\nset datafile missing \"nan\"\n");
	fprintf(out, "set multiplot layout 1,%u title \"ipcsock-bench\"\n",
		have_pp && have_st ? 2 : 1);
	if (have_pp)
		emit_rtt(out, recs, n, pp_size, pp_fds);
	if (have_st)
		emit_batch(out, recs, n, st_size, st_fds);
	fprintf(out, "unset multiplot\n");
	return 0;
}
