// SPDX-License-Identifier: MIT
/*
 * Per-round figures folded into one summary per row and implementation
 * (ratios between runs of one round), and the table, JSON and CSV.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const enum bench_impl_id ref_ids[BENCH_NR_REFS] = {
	[REF_SENDMSG] = IMPL_FLOOR_SENDMSG,
	[REF_MMSG] = IMPL_FLOOR_MMSG,
	[REF_LIBCAMERA] = IMPL_LIBCAMERA,
};

const char *ref_impl_name(enum bench_ref ref)
{
	return bench_impls[ref_ids[ref]]->name;
}

/* Why implementation @i has no round that worked. */
static const char *why_none(const struct bench_result *r, unsigned int i)
{
	return bench_impls[i]->missing ? bench_impls[i]->missing :
					 strerror(-r->err);
}

static bool is_latency(const struct bench_cfg *cfg)
{
	return cfg->scenario != BENCH_STREAM;
}

static double per_msg(uint64_t v, uint64_t msgs)
{
	return msgs ? (double)v / msgs : NAN;
}

static double median_u32(uint32_t *v, size_t n)
{
	if (!n)
		return NAN;
	sort_u32(v, n);
	return n % 2 ? v[n / 2] : ((double)v[n / 2 - 1] + v[n / 2]) / 2;
}

void result_add_run(struct bench_result *r, const struct bench_cfg *cfg,
		    unsigned int round, const struct bench_run *run)
{
	uint32_t *pool;

	if (is_latency(cfg)) {
		r->primary[round] = median_u32(run->samples,
					       run->nr_samples) / 1000;
		pool = realloc(r->pool, (r->nr_pool + run->nr_samples) *
				       sizeof(*pool));
		if (pool) {
			memcpy(pool + r->nr_pool, run->samples,
			       run->nr_samples * sizeof(*pool));
			r->pool = pool;
			r->nr_pool += run->nr_samples;
		}
	} else {
		r->primary[round] = run->count_ns ?
			run->count * 1e9 / run->count_ns : NAN;
	}
	r->cpu[round] = (per_msg(run->local.cpu_ns, run->local.msgs) +
			 per_msg(run->peer.cpu_ns, run->peer.msgs)) / 1000;
	r->csw[round] = per_msg(run->local.csw, run->local.msgs) +
			per_msg(run->peer.csw, run->peer.msgs);
	r->allocs[round] = alloc_count_works() ?
		per_msg(run->local.allocs, run->local.msgs) +
		per_msg(run->peer.allocs, run->peer.msgs) : NAN;
	r->rss[round] = run->local.rss_kib + run->peer.rss_kib;
	/* Both ends' counters: in a stream one sends, the other receives. */
	r->round_rec[round] =
		per_msg(run->local.cnt[BENCH_CNT_TX_DGRAMS] +
			run->peer.cnt[BENCH_CNT_TX_DGRAMS],
			run->local.cnt[BENCH_CNT_TX_MSGS] +
			run->peer.cnt[BENCH_CNT_TX_MSGS]);
	r->round_rx[round] =
		per_msg(run->local.cnt[BENCH_CNT_RX_MSGS] +
			run->peer.cnt[BENCH_CNT_RX_MSGS],
			run->local.cnt[BENCH_CNT_RX_DGRAMS] +
			run->peer.cnt[BENCH_CNT_RX_DGRAMS]);
	r->ok++;
}

static double max_double(const double *v, unsigned int n)
{
	double m = NAN;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!isnan(v[i]) && (isnan(m) || v[i] > m))
			m = v[i];
	return m;
}

void row_summarize(struct bench_row *row, unsigned int rounds)
{
	const struct bench_cfg *cfg = &row->cfg;
	double ratios[BENCH_MAX_ROUNDS];
	struct bench_result *r, *ref;
	unsigned int i, k, j;

	for (i = 0; i < BENCH_NR_IMPLS; i++) {
		r = &row->res[i];
		r->median_us = r->p90_us = r->p99_us = NAN;
		r->p999_us = r->max_us = NAN;
		r->msgs_per_s = r->mb_per_s = NAN;
		if (is_latency(cfg)) {
			r->median_us = median_double(r->primary, rounds,
						     &r->round_min,
						     &r->round_max);
			sort_u32(r->pool, r->nr_pool);
			r->p90_us = pct_u32(r->pool, r->nr_pool, 0.90) / 1000;
			r->p99_us = pct_u32(r->pool, r->nr_pool, 0.99) / 1000;
			r->p999_us = pct_u32(r->pool, r->nr_pool, 0.999) / 1000;
			r->max_us = pct_u32(r->pool, r->nr_pool, 1.0) / 1000;
		} else {
			r->msgs_per_s = median_double(r->primary, rounds,
						      &r->round_min,
						      &r->round_max);
			r->mb_per_s = r->msgs_per_s * cfg->size / 1e6;
		}
		r->cpu_us_per_msg = median_double(r->cpu, rounds, NULL, NULL);
		r->csw_per_msg = median_double(r->csw, rounds, NULL, NULL);
		/* The worst round: a target of zero must hold in every one. */
		r->allocs_per_msg = max_double(r->allocs, rounds);
		r->rss_kib = median_double(r->rss, rounds, NULL, NULL);
		r->records_per_msg = median_double(r->round_rec, rounds, NULL,
						   NULL);
		r->msgs_per_rx = median_double(r->round_rx, rounds, NULL,
					       NULL);

		for (k = 0; k < BENCH_NR_REFS; k++) {
			ref = &row->res[ref_ids[k]];
			for (j = 0; j < rounds; j++)
				ratios[j] = r->primary[j] / ref->primary[j];
			r->vs[k].med = median_double(ratios, rounds,
						     &r->vs[k].min,
						     &r->vs[k].max);
		}
	}
}

/* ---- table ---- */

void put_num(FILE *f, int width, int prec, double v)
{
	if (isnan(v))
		fprintf(f, " %*s", width, "-");
	else
		fprintf(f, " %*.*f", width, prec, v);
}

static void put_allocs(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, " %7s", "-");
	else if (v > 0 && v < 0.01)
		fprintf(f, " %7s", "<0.01");
	else
		fprintf(f, " %7.2f", v);
}

void put_ratio(FILE *f, const struct bench_ratio *q)
{
	char buf[40];

	if (isnan(q->med))
		snprintf(buf, sizeof(buf), "-");
	else
		snprintf(buf, sizeof(buf), "%.2f (%.2f-%.2f)", q->med, q->min,
			 q->max);
	fprintf(f, "  %-17s", buf);
}

static void put_size(FILE *f, unsigned int size)
{
	char buf[16];

	if (size >= 1024 && !(size % 1024))
		snprintf(buf, sizeof(buf), "%uK", size / 1024);
	else
		snprintf(buf, sizeof(buf), "%u", size);
	fprintf(f, "%5s", buf);
}

static void table_head(FILE *f, enum bench_scenario sc)
{
	static const char * const what[] = {
		[BENCH_PINGPONG] = "round-trip time in us",
		[BENCH_STREAM] = "messages per second at the receiver",
		[BENCH_CAMERA] = "IPC latency per frame in us",
	};
	unsigned int k;

	fprintf(f, "\n%s: %s\n", bench_scenarios[sc]->name, what[sc]);
	if (sc == BENCH_CAMERA)
		fprintf(f, "%5s %3s %5s", "fps", "", "");
	else
		fprintf(f, "%5s %3s %5s", "size", "fds", "batch");
	fprintf(f, " %-22s", "impl");
	if (sc == BENCH_STREAM)
		fprintf(f, " %10s %8s", "msgs/s", "MB/s");
	else
		fprintf(f, " %7s %7s %7s %7s %7s", "median", "p90", "p99",
			"p99.9", "max");
	fprintf(f, " %7s %6s %7s %7s %7s %6s", "cpu/msg", "cs/msg", "allocs",
		"rss KiB", "rec/msg", "msg/rx");
	for (k = 0; k < BENCH_NR_REFS; k++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "x %s", ref_impl_name(k));
		fprintf(f, "  %-17s", buf);
	}
	fprintf(f, "\n");
}

static void table_row(FILE *f, const struct bench_row *row, unsigned int i)
{
	const struct bench_cfg *cfg = &row->cfg;
	const struct bench_result *r = &row->res[i];
	unsigned int k;

	if (cfg->scenario == BENCH_CAMERA) {
		fprintf(f, "%5u %3s %5s", cfg->fps, "", "");
	} else {
		put_size(f, cfg->size);
		fprintf(f, " %3u", cfg->nr_fds);
		if (cfg->scenario == BENCH_STREAM)
			fprintf(f, " %5u", cfg->batch);
		else
			fprintf(f, " %5s", "");
	}
	fprintf(f, " %-22s", bench_impls[i]->name);
	if (!r->ok) {
		fprintf(f, " %s: %s\n", bench_err_unsupported(r->err) ?
			"unavailable" : "failed", why_none(r, i));
		return;
	}
	if (cfg->scenario == BENCH_STREAM) {
		put_num(f, 10, 0, r->msgs_per_s);
		put_num(f, 8, 1, r->mb_per_s);
	} else {
		put_num(f, 7, 1, r->median_us);
		put_num(f, 7, 1, r->p90_us);
		put_num(f, 7, 1, r->p99_us);
		put_num(f, 7, 1, r->p999_us);
		put_num(f, 7, 1, r->max_us);
	}
	put_num(f, 7, 2, r->cpu_us_per_msg);
	put_num(f, 6, 2, r->csw_per_msg);
	put_allocs(f, r->allocs_per_msg);
	put_num(f, 7, 0, r->rss_kib);
	put_num(f, 7, 3, r->records_per_msg);
	put_num(f, 6, 1, r->msgs_per_rx);
	for (k = 0; k < BENCH_NR_REFS; k++) {
		if (ref_ids[k] == i)
			fprintf(f, "  %-17s", "(reference)");
		else
			put_ratio(f, &r->vs[k]);
	}
	if (r->err)
		fprintf(f, "  (%u rounds, last error: %s)", r->ok,
			strerror(-r->err));
	fprintf(f, "\n");
}

void report_table(FILE *f, const struct bench_row *rows, unsigned int n)
{
	enum bench_scenario sc;
	unsigned int i, j;
	bool head;

	for (sc = 0; sc < BENCH_NR_SCENARIOS; sc++) {
		head = false;
		for (i = 0; i < n; i++) {
			if (rows[i].cfg.scenario != sc)
				continue;
			if (!head)
				table_head(f, sc);
			head = true;
			for (j = 0; j < BENCH_NR_IMPLS; j++)
				if (rows[i].res[j].enabled)
					table_row(f, &rows[i], j);
		}
	}
}

/*
 * ---- Records: JSON (an array, one record per line) or CSV, one emitter ----
 * Not measured is null, or an empty cell. A range that does not apply to
 * the row is left out of JSON but empty in CSV, so that every CSV line
 * has the same columns (README.md lists them).
 */

enum rec_mode { REC_JSON, REC_CSV_HEAD, REC_CSV };

struct rec {
	FILE *f;
	enum rec_mode mode;
	unsigned int nr;	/* fields written in this record */
};

/* Starts a field; false when the CSV header took only its name. */
static bool rec_key(struct rec *o, const char *key)
{
	if (o->mode == REC_JSON) {
		fprintf(o->f, "%s\"%s\": ", o->nr++ ? ", " : "{", key);
		return true;
	}
	if (o->nr++)
		fputc(',', o->f);
	if (o->mode == REC_CSV_HEAD)
		fputs(key, o->f);
	return o->mode == REC_CSV;
}

static void rec_num(struct rec *o, const char *key, double v, int prec)
{
	if (!rec_key(o, key))
		return;
	if (!isnan(v) && !isinf(v))
		fprintf(o->f, "%.*f", prec, v);
	else if (o->mode == REC_JSON)
		fputs("null", o->f);
}

/*
 * Names, strerror() texts and bench_impl.missing have neither commas nor
 * quotes.
 */
static void rec_str(struct rec *o, const char *key, const char *v)
{
	if (!rec_key(o, key))
		return;
	if (o->mode == REC_JSON && v)
		fprintf(o->f, "\"%s\"", v);
	else
		fputs(v ? v : o->mode == REC_JSON ? "null" : "", o->f);
}

static void rec_range(struct rec *o, const char *stem,
		      const struct bench_range *r, int prec)
{
	char key[48];

	if (o->mode != REC_JSON) {
		snprintf(key, sizeof(key), "%s_range_min", stem);
		rec_num(o, key, r->valid ? r->min : NAN, prec);
		snprintf(key, sizeof(key), "%s_range_max", stem);
		rec_num(o, key, r->valid ? r->max : NAN, prec);
		return;
	}
	if (!r->valid)
		return;
	snprintf(key, sizeof(key), "%s_range", stem);
	rec_key(o, key);
	if (isnan(r->min))
		fputs("null", o->f);
	else
		fprintf(o->f, "[%.*f, %.*f]", prec, r->min, prec, r->max);
}

static void rec_ratio(struct rec *o, const char *key,
		      const struct bench_ratio *q)
{
	struct bench_range r = { q->min, q->max, true };

	rec_num(o, key, q->med, 4);
	rec_range(o, key, &r, 4);
}

void record_init(struct bench_record *rec)
{
	const struct bench_ratio none = { NAN, NAN, NAN };
	unsigned int k;

	*rec = (struct bench_record) {
		.size = NAN, .fds = NAN, .batch = NAN, .fps = NAN,
		.rounds = NAN, .median_us = NAN, .p90_us = NAN,
		.p99_us = NAN, .p999_us = NAN, .max_us = NAN,
		.msgs_per_s = NAN, .mb_per_s = NAN, .cpu_us_per_msg = NAN,
		.allocs_per_msg = NAN, .rss_kib = NAN, .ctxsw_per_msg = NAN,
		.records_per_msg = NAN, .msgs_per_rx = NAN,
		.kills = NAN, .p50_us = NAN,
		.channels = NAN, .window = NAN, .server_cpu_us_per_msg = NAN,
		.rss_kib_per_channel = NAN, .idle_rss_kib_per_channel = NAN,
		.server_rss_kib_per_channel = NAN,
		.server_idle_rss_kib_per_channel = NAN,
		.vs_floor_epoll = none, .vs_one_channel = none,
	};
	for (k = 0; k < BENCH_NR_REFS; k++)
		rec->vs[k] = none;
}

/* The one place that decides the fields and their order. */
static void rec_write(struct rec *o, const struct bench_record *r)
{
	static const char *const ref_key[BENCH_NR_REFS] = {
		"vs_floor_sendmsg", "vs_floor_mmsg", "vs_libcamera",
	};
	unsigned int k;

	o->nr = 0;
	rec_str(o, "scenario", r->scenario);
	rec_str(o, "impl", r->impl);
	rec_num(o, "size", r->size, 0);
	rec_num(o, "fds", r->fds, 0);
	rec_num(o, "batch", r->batch, 0);
	rec_num(o, "median_us", r->median_us, 3);
	rec_num(o, "p90_us", r->p90_us, 3);
	rec_num(o, "p99_us", r->p99_us, 3);
	rec_num(o, "p999_us", r->p999_us, 3);
	rec_num(o, "msgs_per_s", r->msgs_per_s, 0);
	rec_num(o, "mb_per_s", r->mb_per_s, 3);
	rec_num(o, "cpu_us_per_msg", r->cpu_us_per_msg, 3);
	rec_num(o, "allocs_per_msg", r->allocs_per_msg, 6);
	rec_num(o, "rss_kib", r->rss_kib, 0);
	rec_num(o, "max_us", r->max_us, 3);
	rec_num(o, "ctxsw_per_msg", r->ctxsw_per_msg, 4);
	rec_num(o, "records_per_msg", r->records_per_msg, 4);
	rec_num(o, "msgs_per_rx", r->msgs_per_rx, 2);
	rec_range(o, "median_us", &r->median_us_range, 3);
	rec_range(o, "msgs_per_s", &r->msgs_per_s_range, 3);
	rec_num(o, "fps", r->fps, 0);
	rec_num(o, "rounds", r->rounds, 0);
	for (k = 0; k < BENCH_NR_REFS; k++)
		rec_ratio(o, ref_key[k], &r->vs[k]);
	rec_num(o, "channels", r->channels, 0);
	rec_num(o, "window", r->window, 0);
	rec_num(o, "server_cpu_us_per_msg", r->server_cpu_us_per_msg, 3);
	rec_num(o, "rss_kib_per_channel", r->rss_kib_per_channel, 2);
	rec_num(o, "idle_rss_kib_per_channel", r->idle_rss_kib_per_channel, 2);
	rec_num(o, "server_rss_kib_per_channel",
		r->server_rss_kib_per_channel, 2);
	rec_num(o, "server_idle_rss_kib_per_channel",
		r->server_idle_rss_kib_per_channel, 2);
	rec_ratio(o, "vs_floor_epoll", &r->vs_floor_epoll);
	rec_ratio(o, "vs_one_channel", &r->vs_one_channel);
	rec_str(o, "peer_backend", r->peer_backend);
	rec_str(o, "load", r->load);
	rec_num(o, "kills", r->kills, 0);
	rec_num(o, "p50_us", r->p50_us, 3);
	rec_str(o, "error", r->error);
	fputs(o->mode == REC_JSON ? "}" : "\n", o->f);
}

/* A pair scenario's row and implementation as a record. */
static void row_record(struct bench_record *rec, const struct bench_row *row,
		       unsigned int i)
{
	const struct bench_cfg *cfg = &row->cfg;
	const struct bench_result *r = &row->res[i];
	bool camera = cfg->scenario == BENCH_CAMERA;
	bool stream = cfg->scenario == BENCH_STREAM;
	struct bench_range range = { r->round_min, r->round_max, true };
	unsigned int k;

	record_init(rec);
	rec->scenario = bench_scenarios[cfg->scenario]->name;
	rec->impl = bench_impls[i]->name;
	rec->size = camera ? NAN : cfg->size;
	rec->fds = camera ? NAN : cfg->nr_fds;
	rec->batch = stream ? cfg->batch : NAN;
	rec->median_us = r->median_us;
	rec->p90_us = r->p90_us;
	rec->p99_us = r->p99_us;
	rec->p999_us = r->p999_us;
	rec->msgs_per_s = r->msgs_per_s;
	rec->mb_per_s = r->mb_per_s;
	rec->cpu_us_per_msg = r->cpu_us_per_msg;
	rec->allocs_per_msg = r->allocs_per_msg;
	rec->rss_kib = r->rss_kib;
	rec->max_us = r->max_us;
	rec->ctxsw_per_msg = r->csw_per_msg;
	rec->records_per_msg = r->records_per_msg;
	rec->msgs_per_rx = r->msgs_per_rx;
	if (stream)
		rec->msgs_per_s_range = range;
	else
		rec->median_us_range = range;
	rec->fps = camera ? cfg->fps : NAN;
	rec->rounds = r->ok;
	for (k = 0; k < BENCH_NR_REFS; k++)
		rec->vs[k] = r->vs[k];
	rec->error = r->ok ? NULL : why_none(r, i);
}

/* @path "-" is stdout; @extra (fanin's) follow the rows. */
int report_records(const char *path, bool csv, const struct bench_row *rows,
		   unsigned int n, const struct bench_record *extra,
		   unsigned int nr_extra)
{
	struct rec o = { .mode = csv ? REC_CSV_HEAD : REC_JSON };
	struct bench_record rec;
	bool first = true;
	unsigned int i, j;
	int err = 0;

	o.f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	if (!o.f)
		return -errno;
	if (csv) {
		record_init(&rec);
		rec_write(&o, &rec);
		o.mode = REC_CSV;
	} else {
		fputs("[\n", o.f);
	}
	for (i = 0; i < n + nr_extra; i++) {
		for (j = 0; j < (i < n ? BENCH_NR_IMPLS : 1); j++) {
			if (i < n && !rows[i].res[j].enabled)
				continue;
			if (!first && !csv)
				fputs(",\n", o.f);
			first = false;
			if (i < n)
				row_record(&rec, &rows[i], j);
			rec_write(&o, i < n ? &rec : &extra[i - n]);
		}
	}
	if (!csv)
		fputs("\n]\n", o.f);
	if (fflush(o.f) || ferror(o.f))
		err = -EIO;
	if (o.f != stdout && fclose(o.f))
		err = -errno;
	return err;
}
