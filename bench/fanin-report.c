// SPDX-License-Identifier: MIT
/*
 * fanin's figures: per run, folded over rounds (ratios within a round:
 * to floor-epoll at the same N, to the same implementation at N = 1),
 * the table and the records.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fanin.h"

static double per(double v, double n)
{
	return n > 0 ? v / n : NAN;
}

void fanin_result_add(struct fanin_result *r, const struct fanin_cfg *cfg,
		      unsigned int round, const struct fanin_srv_report *srv,
		      const struct fanin_cli_report *cli)
{
	double n = cfg->channels;

	r->srv_cpu[round] = per(srv->cpu_ns, srv->msgs) / 1000;
	r->all_cpu[round] = r->srv_cpu[round] +
			    per(cli->cpu_ns, cli->msgs) / 1000;
	r->rate[round] = per(srv->msgs * 1e9, srv->ns);
	r->srv_idle[round] = srv->idle_rss_kib / n;
	r->srv_busy[round] = srv->busy_rss_kib / n;
	r->all_idle[round] = (srv->idle_rss_kib + cli->idle_rss_kib) / n;
	r->all_busy[round] = (srv->busy_rss_kib + cli->busy_rss_kib) / n;
	r->ok++;
}

static void ratio(struct bench_ratio *q, const double *v, const double *ref,
		  unsigned int rounds)
{
	double x[BENCH_MAX_ROUNDS];
	unsigned int j;

	for (j = 0; j < rounds; j++)
		x[j] = ref ? v[j] / ref[j] : NAN;
	q->med = median_double(x, rounds, &q->min, &q->max);
}

void fanin_summarize(struct fanin_row *rows, unsigned int nr,
		     unsigned int rounds)
{
	const struct fanin_row *one = NULL;
	struct fanin_result *r;
	unsigned int k, i;

	for (k = 0; k < nr; k++)
		if (rows[k].cfg.channels == 1 && !rows[k].skip[0])
			one = &rows[k];
	for (k = 0; k < nr; k++) {
		for (i = 0; i < FANIN_NR_IMPLS; i++) {
			r = &rows[k].res[i];
			r->srv_cpu_med = median_double(r->srv_cpu, rounds,
						       NULL, NULL);
			r->all_cpu_med = median_double(r->all_cpu, rounds,
						       NULL, NULL);
			r->rate_med = median_double(r->rate, rounds,
						    &r->rate_min, &r->rate_max);
			r->srv_idle_med = median_double(r->srv_idle, rounds,
							NULL, NULL);
			r->srv_busy_med = median_double(r->srv_busy, rounds,
							NULL, NULL);
			r->all_idle_med = median_double(r->all_idle, rounds,
							NULL, NULL);
			r->all_busy_med = median_double(r->all_busy, rounds,
							NULL, NULL);
			ratio(&r->vs_floor, r->srv_cpu,
			      rows[k].res[FANIN_FLOOR_EPOLL].srv_cpu, rounds);
			ratio(&r->vs_one, r->srv_cpu,
			      one ? one->res[i].srv_cpu : NULL, rounds);
		}
	}
}

static void table_row(FILE *f, const struct fanin_row *row, unsigned int i)
{
	const struct fanin_result *r = &row->res[i];

	fprintf(f, "%5u %-15s", row->cfg.channels, fanin_impls[i]->name);
	if (row->skip[0]) {
		fprintf(f, " skipped: %s\n", row->skip);
		return;
	}
	if (!r->ok) {
		fprintf(f, " %s: %s\n", bench_err_unsupported(r->err) ?
			"unavailable" : "failed", strerror(-r->err));
		return;
	}
	put_num(f, 8, 0, r->rate_med);
	put_num(f, 8, 2, r->srv_cpu_med);
	put_num(f, 8, 2, r->all_cpu_med);
	if (i == FANIN_FLOOR_EPOLL)
		fprintf(f, "  %-17s", "(reference)");
	else
		put_ratio(f, &r->vs_floor);
	put_ratio(f, &r->vs_one);
	put_num(f, 7, 1, r->srv_idle_med);
	put_num(f, 7, 1, r->srv_busy_med);
	put_num(f, 7, 1, r->all_idle_med);
	put_num(f, 7, 1, r->all_busy_med);
	if (r->err)
		fprintf(f, "  (%u rounds, last error: %s)", r->ok,
			strerror(-r->err));
	fprintf(f, "\n");
}

void fanin_table(FILE *f, const struct fanin_row *rows, unsigned int nr,
		 unsigned int rounds)
{
	unsigned int k, i;

	if (!nr)
		return;
	fprintf(f, "\nfanin: N channels into one server, %u B echoes, window %u, %u client processes, %u rounds\n",
		FANIN_MSG_LEN, rows[0].cfg.window, rows[0].cfg.procs, rounds);
	fprintf(f, "%5s %-15s %8s %8s %8s  %-17s  %-17s %7s %7s %7s %7s\n",
		"N", "impl", "msgs/s", "srv us", "all us", "srv x floor-epoll",
		"srv x N=1", "srv idl", "srv bsy", "all idl", "all bsy");
	for (k = 0; k < nr; k++)
		for (i = 0; i < FANIN_NR_IMPLS; i++)
			if (rows[k].res[i].enabled)
				table_row(f, &rows[k], i);
	fprintf(f, "srv us: the server's CPU time (user+system) per echoed message; all us: with\n"
		   "  the clients'. x floor-epoll, x N=1: ratios of srv us in the same round,\n"
		   "  median (min-max). idl/bsy: resident memory added per channel in KiB (anonymous\n"
		   "  and io_uring mappings), channels bound and idle / at the end of the window;\n"
		   "  srv the server process, all with the clients.\n");
}

unsigned int fanin_records(const struct fanin_row *rows, unsigned int nr,
			   struct bench_record *rec, unsigned int max)
{
	const struct fanin_result *r;
	unsigned int k, i, n = 0;

	for (k = 0; k < nr; k++) {
		for (i = 0; i < FANIN_NR_IMPLS && n < max; i++) {
			r = &rows[k].res[i];
			if (!r->enabled)
				continue;
			record_init(&rec[n]);
			rec[n].scenario = "fanin";
			rec[n].impl = fanin_impls[i]->name;
			rec[n].size = FANIN_MSG_LEN;
			rec[n].fds = 0;
			rec[n].channels = rows[k].cfg.channels;
			rec[n].window = rows[k].cfg.window;
			rec[n].rounds = r->ok;
			rec[n].msgs_per_s = r->rate_med;
			rec[n].msgs_per_s_range = (struct bench_range) {
				r->rate_min, r->rate_max, true,
			};
			rec[n].mb_per_s = r->rate_med * FANIN_MSG_LEN / 1e6;
			rec[n].cpu_us_per_msg = r->all_cpu_med;
			rec[n].server_cpu_us_per_msg = r->srv_cpu_med;
			rec[n].rss_kib = r->all_busy_med * rows[k].cfg.channels;
			rec[n].rss_kib_per_channel = r->all_busy_med;
			rec[n].idle_rss_kib_per_channel = r->all_idle_med;
			rec[n].server_rss_kib_per_channel = r->srv_busy_med;
			rec[n].server_idle_rss_kib_per_channel =
				r->srv_idle_med;
			rec[n].vs_floor_epoll = r->vs_floor;
			rec[n].vs_one_channel = r->vs_one;
			if (rows[k].skip[0])
				rec[n].error = rows[k].skip;
			else if (!r->ok)
				rec[n].error = strerror(-r->err);
			n++;
		}
	}
	return n;
}
