// SPDX-License-Identifier: MIT
/* ipcsock-bench: options, the suite of rows, and the rotating rounds. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "fanin.h"
#include "liveness.h"

#define MAX_ROWS	256
#define MAX_LIST	16

struct opts {
	bool quick;
	bool full;
	unsigned int rounds;
	unsigned int fanin_rounds;
	unsigned int warmup_ms;
	unsigned int duration_ms;
	unsigned int fps;
	unsigned int frames;
	unsigned int warm_frames;
	bool scenarios[BENCH_NR_SCENARIOS];
	bool impls[BENCH_NR_IMPLS];
	bool impls_given;
	bool fanin_impls[FANIN_NR_IMPLS];
	unsigned int channels[FANIN_MAX_ROWS], nr_channels;
	unsigned int window;
	unsigned int procs;
	unsigned int kills;
	unsigned int sizes[MAX_LIST], nr_sizes;
	unsigned int fds[MAX_LIST], nr_fds;
	unsigned int batches[MAX_LIST], nr_batches;
	const char *json;
	const char *csv;
	bool progress;
};

/* { size, fds, batch } */
struct row_spec {
	unsigned int size, nr_fds, batch;
};

static const struct row_spec default_pingpong[] = {
	{ 64, 0, 1 }, { 1024, 0, 1 }, { 16384, 0, 1 }, { 65536, 0, 1 },
	{ 64, 1, 1 }, { 64, 4, 1 },
};

static const struct row_spec default_stream[] = {
	{ 64, 0, 1 }, { 64, 0, 8 }, { 64, 0, 32 },
	{ 1024, 0, 32 }, { 16384, 0, 32 }, { 65536, 0, 32 },
	{ 64, 1, 1 }, { 64, 1, 32 }, { 64, 4, 32 },
};

static const struct row_spec quick_pingpong[] = {
	{ 64, 0, 1 }, { 64, 1, 1 },
};

static const struct row_spec quick_stream[] = {
	{ 64, 0, 1 }, { 64, 0, 32 }, { 64, 1, 32 },
};

static const unsigned int default_channels[] = { 1, 16, 256, 1024, 4096 };
static const unsigned int quick_channels[] = { 1, 256 };

static const unsigned int full_sizes[] = { 64, 1024, 16384, 65536 };
static const unsigned int full_fds[] = { 0, 1, 4 };
static const unsigned int full_batches[] = { 1, 8, 32 };

static void print_usage(FILE *f)
{
	fprintf(f,
"usage: ipcsock-bench [options]\n"
"\n"
"libipcsock (io_uring and epoll backends) against blocking sendmsg,\n"
"sendmmsg/recvmmsg, libcamera 0.0.3's IPCUnixSocket and a rewrite of its\n"
"protocol (libcamera-style), between two processes; and fanin: N channels\n"
"into one server process (the library, and floors on epoll and io_uring)\n"
"from a few client processes; and liveness: SIGKILL of a peer to hangup,\n"
"with ipcsock_watch_pidfd() and on the end of file alone.\n"
"\n"
"  --quick            reduced suite, under 20 s\n"
"  --full             every size x fds x batch combination\n"
"  --scenario LIST    pingpong,stream,camera,fanin,liveness (default: all)\n"
"  --impl LIST        ipcsock-uring,ipcsock-epoll,floor-sendmsg,floor-mmsg,\n"
"                     libcamera-style,ipcsock-uring-busy,libcamera,\n"
"                     ipcsock-lcwire,ipcsock-uring-adaptive;\n"
"                     fanin: ipcsock-uring,ipcsock-uring-sww,\n"
"                     ipcsock-shared,ipcsock-epoll,\n"
"                     floor-epoll,floor-uring (default: all; the\n"
"                     busy-polling one in ping-pong rows only, the\n"
"                     adaptive one in ping-pong and camera rows only)\n"
"  --busy-poll US     busy_poll_us of ipcsock-uring-busy (default 100;\n"
"                     0 leaves it out)\n"
"  --size LIST        message sizes, e.g. 64,1k,64k (16 B .. 64 KiB)\n"
"  --fds LIST         fds per message, e.g. 0,1,4 (at most %d)\n"
"  --batch LIST       stream batch sizes, e.g. 1,8,32 (at most %d)\n"
"  --rounds N         rounds per row (default 5, quick and fanin 3)\n"
"  --duration MS      measured time per run (default 120, quick 40)\n"
"  --warmup MS        warm-up time per run (default 20, quick 10)\n"
"  --fps N            camera frame rate (default 240)\n"
"  --channels LIST    fanin channel counts (default 1,16,256,1024,4096;\n"
"                     quick 1,256; at most %u)\n"
"  --window N         fanin messages in flight per channel (default 8)\n"
"  --client-procs N   fanin client processes (default 2, at most %u)\n"
"  --kills N          liveness kills per row (default 200, quick 40)\n"
"  --frames N         camera frames measured per run (default 120, quick 48)\n"
"  --pin              parent on CPU 0, peer on CPU 1 (ipcsock-uring-busy\n"
"                     and ipcsock-uring-adaptive are always pinned so)\n"
"  --json FILE        write the results as JSON records (- for stdout)\n"
"  --csv FILE         the same records as CSV (bench/plot.gp draws them)\n"
"  -h, --help         this text\n",
		BENCH_MAX_FDS, BENCH_MAX_BATCH, FANIN_MAX_CHANNELS,
		FANIN_MAX_PROCS);
}

static int parse_num(const char *s, unsigned int *v)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'k' || *end == 'K') {
		n *= 1024;
		end++;
	}
	if (*end || n > 1u << 30)
		return -EINVAL;
	*v = n;
	return 0;
}

/* A number from @min to @max, as parse_num() reads it. */
static int parse_num_in(const char *s, unsigned int *v, unsigned int min,
			unsigned int max)
{
	int err = parse_num(s, v);

	if (err)
		return err;
	return *v < min || *v > max ? -EINVAL : 0;
}

static int parse_list(const char *arg, unsigned int *v, unsigned int *n,
		      unsigned int min, unsigned int max)
{
	char buf[256], *tok, *save;

	snprintf(buf, sizeof(buf), "%s", arg);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_LIST || parse_num(tok, &v[*n]) ||
		    v[*n] < min || v[*n] > max)
			return -EINVAL;
		(*n)++;
	}
	return *n ? 0 : -EINVAL;
}

static int parse_names(const char *arg, bool *sel, unsigned int nr,
		       const char *(*name)(unsigned int))
{
	char buf[256], *tok, *save;
	unsigned int i;

	snprintf(buf, sizeof(buf), "%s", arg);
	memset(sel, 0, nr * sizeof(*sel));
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < nr; i++)
			if (!strcmp(tok, name(i)))
				break;
		if (i == nr)
			return -EINVAL;
		sel[i] = true;
	}
	return 0;
}

/* --impl: names of either suite, each in at least one. */
static int parse_impls(const char *arg, struct opts *o)
{
	char buf[256], *tok, *save;
	unsigned int i;
	bool found;

	snprintf(buf, sizeof(buf), "%s", arg);
	memset(o->impls, 0, sizeof(o->impls));
	memset(o->fanin_impls, 0, sizeof(o->fanin_impls));
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		found = false;
		for (i = 0; i < BENCH_NR_IMPLS; i++)
			if (!strcmp(tok, bench_impls[i]->name))
				found = o->impls[i] = true;
		for (i = 0; i < FANIN_NR_IMPLS; i++)
			if (!strcmp(tok, fanin_impls[i]->name))
				found = o->fanin_impls[i] = true;
		if (!found)
			return -EINVAL;
	}
	o->impls_given = true;
	return 0;
}

static const char *scenario_name(unsigned int i)
{
	return bench_scenarios[i]->name;
}

enum {
	OPT_QUICK = 256, OPT_FULL, OPT_SCENARIO, OPT_IMPL, OPT_SIZE, OPT_FDS,
	OPT_BATCH, OPT_ROUNDS, OPT_DURATION, OPT_WARMUP, OPT_FPS, OPT_FRAMES,
	OPT_PIN, OPT_JSON, OPT_CSV, OPT_BUSY_POLL, OPT_CHANNELS, OPT_WINDOW,
	OPT_PROCS, OPT_KILLS,
};

static const struct option long_opts[] = {
	{ "quick", no_argument, NULL, OPT_QUICK },
	{ "full", no_argument, NULL, OPT_FULL },
	{ "scenario", required_argument, NULL, OPT_SCENARIO },
	{ "impl", required_argument, NULL, OPT_IMPL },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "fds", required_argument, NULL, OPT_FDS },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "rounds", required_argument, NULL, OPT_ROUNDS },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "fps", required_argument, NULL, OPT_FPS },
	{ "frames", required_argument, NULL, OPT_FRAMES },
	{ "pin", no_argument, NULL, OPT_PIN },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "csv", required_argument, NULL, OPT_CSV },
	{ "busy-poll", required_argument, NULL, OPT_BUSY_POLL },
	{ "channels", required_argument, NULL, OPT_CHANNELS },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ "client-procs", required_argument, NULL, OPT_PROCS },
	{ "kills", required_argument, NULL, OPT_KILLS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Returns 0 to run, 1 when done (help), -1 on a usage error. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	unsigned int rounds = 0, duration = 0, warmup = 0, frames = 0;
	bool have_warmup = false;
	int c, err = 0;

	memset(o, 0, sizeof(*o));
	memset(o->scenarios, 1, sizeof(o->scenarios));
	memset(o->impls, 1, sizeof(o->impls));
	memset(o->fanin_impls, 1, sizeof(o->fanin_impls));
	o->fps = 240;
	o->window = 8;
	o->procs = 2;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_QUICK:
			o->quick = true;
			break;
		case OPT_FULL:
			o->full = true;
			break;
		case OPT_SCENARIO:
			err = parse_names(optarg, o->scenarios,
					  BENCH_NR_SCENARIOS, scenario_name);
			break;
		case OPT_IMPL:
			err = parse_impls(optarg, o);
			break;
		case OPT_BUSY_POLL:
			err = parse_num_in(optarg, &bench_busy_poll_us, 0,
					   1000000);
			if (!err && !bench_busy_poll_us)
				o->impls[IMPL_IPCSOCK_URING_BUSY] = false;
			break;
		case OPT_SIZE:
			err = parse_list(optarg, o->sizes, &o->nr_sizes,
					 BENCH_MIN_SIZE, BENCH_MAX_SIZE);
			break;
		case OPT_FDS:
			err = parse_list(optarg, o->fds, &o->nr_fds, 0,
					 BENCH_MAX_FDS);
			break;
		case OPT_BATCH:
			err = parse_list(optarg, o->batches, &o->nr_batches, 1,
					 BENCH_MAX_BATCH);
			break;
		case OPT_ROUNDS:
			err = parse_num_in(optarg, &rounds, 1, BENCH_MAX_ROUNDS);
			break;
		case OPT_DURATION:
			err = parse_num_in(optarg, &duration, 1, 60000);
			break;
		case OPT_WARMUP:
			err = parse_num_in(optarg, &warmup, 0, 60000);
			have_warmup = true;
			break;
		case OPT_FPS:
			err = parse_num_in(optarg, &o->fps, 1, 100000);
			break;
		case OPT_FRAMES:
			err = parse_num_in(optarg, &frames, 1, 10000000);
			break;
		case OPT_PIN:
			bench_pin = true;
			break;
		case OPT_CHANNELS:
			err = parse_list(optarg, o->channels, &o->nr_channels,
					 1, FANIN_MAX_CHANNELS);
			break;
		case OPT_WINDOW:
			err = parse_num(optarg, &o->window);
			if (!err && (!o->window || o->window > FANIN_MAX_WINDOW))
				err = -EINVAL;
			break;
		case OPT_PROCS:
			err = parse_num(optarg, &o->procs);
			if (!err && (!o->procs || o->procs > FANIN_MAX_PROCS))
				err = -EINVAL;
			break;
		case OPT_KILLS:
			err = parse_num(optarg, &o->kills);
			if (!err && (!o->kills || o->kills > 100000))
				err = -EINVAL;
			break;
		case OPT_JSON:
			o->json = optarg;
			break;
		case OPT_CSV:
			o->csv = optarg;
			break;
		case 'h':
			print_usage(stdout);
			return 1;
		default:
			print_usage(stderr);
			return -1;
		}
		if (err) {
			fprintf(stderr, "ipcsock-bench: bad value for --%s: %s\n",
				long_opts[c - OPT_QUICK].name, optarg);
			return -1;
		}
	}
	if (optind < argc) {
		print_usage(stderr);
		return -1;
	}
	o->rounds = rounds ? rounds : o->quick ? 3 : 5;
	if (!o->kills)
		o->kills = o->quick ? LIVENESS_QUICK_KILLS : LIVENESS_KILLS;
	/* A fanin round is long (N = 4096: seconds of setup and teardown). */
	o->fanin_rounds = rounds ? rounds : 3;
	o->duration_ms = duration ? duration : o->quick ? 40 : 120;
	o->warmup_ms = have_warmup ? warmup : o->quick ? 10 : 20;
	o->frames = frames ? frames : o->quick ? 48 : 120;
	o->warm_frames = o->quick ? 5 : 10;
	if (!bench_busy_poll_us)
		o->impls[IMPL_IPCSOCK_URING_BUSY] = false;
	o->progress = isatty(2);
	return 0;
}

static struct bench_row rows[MAX_ROWS];
static unsigned int nr_rows;

static void add_row(const struct opts *o, enum bench_scenario sc,
		    unsigned int size, unsigned int nr_fds, unsigned int batch)
{
	struct bench_row *row;
	unsigned int i, r;

	if (nr_rows == MAX_ROWS)
		return;
	row = &rows[nr_rows++];
	memset(row, 0, sizeof(*row));
	row->cfg = (struct bench_cfg) {
		.scenario = sc,
		.size = size,
		.nr_fds = nr_fds,
		.batch = batch,
		.warmup_ms = o->warmup_ms,
		.duration_ms = o->duration_ms,
		.fps = o->fps,
		.frames = o->frames,
		.warm_frames = o->warm_frames,
	};
	for (i = 0; i < BENCH_NR_IMPLS; i++) {
		row->res[i].enabled = o->impls[i];
		/* Unless asked for, busy polling is measured in ping-pong. */
		if (i == IMPL_IPCSOCK_URING_BUSY && !o->impls_given &&
		    sc != BENCH_PINGPONG)
			row->res[i].enabled = false;
		/* Adaptive waiting is about round trips, not streams. */
		if (i == IMPL_IPCSOCK_URING_ADAPTIVE && !o->impls_given &&
		    sc != BENCH_PINGPONG && sc != BENCH_CAMERA)
			row->res[i].enabled = false;
		for (r = 0; r < BENCH_MAX_ROUNDS; r++) {
			row->res[i].primary[r] = NAN;
			row->res[i].cpu[r] = NAN;
			row->res[i].csw[r] = NAN;
			row->res[i].allocs[r] = NAN;
			row->res[i].rss[r] = NAN;
		}
	}
	/* --impl named none of this suite's implementations. */
	for (i = 0; i < BENCH_NR_IMPLS; i++)
		if (row->res[i].enabled)
			return;
	nr_rows--;
}

static void add_specs(const struct opts *o, enum bench_scenario sc,
		      const struct row_spec *spec, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		add_row(o, sc, spec[i].size, spec[i].nr_fds, spec[i].batch);
}

/* --size/--fds/--batch/--full: the cross product, defaults for the rest. */
static void add_matrix(const struct opts *o, enum bench_scenario sc)
{
	static const unsigned int one[] = { 1 }, zero[] = { 0 },
				  s64[] = { 64 };
	const unsigned int *sizes = o->sizes, *fds = o->fds, *bs = o->batches;
	unsigned int ns = o->nr_sizes, nf = o->nr_fds, nb = o->nr_batches;
	unsigned int i, j, k;

	if (!ns) {
		sizes = o->full ? full_sizes : s64;
		ns = o->full ? 4 : 1;
	}
	if (!nf) {
		fds = o->full ? full_fds : zero;
		nf = o->full ? 3 : 1;
	}
	if (sc == BENCH_PINGPONG) {
		bs = one;
		nb = 1;
	} else if (!nb) {
		bs = full_batches;
		nb = 3;
	}
	for (i = 0; i < ns; i++)
		for (j = 0; j < nf; j++)
			for (k = 0; k < nb; k++)
				add_row(o, sc, sizes[i], fds[j], bs[k]);
}

static void build_suite(const struct opts *o)
{
	bool matrix = o->full || o->nr_sizes || o->nr_fds || o->nr_batches;

	if (o->scenarios[BENCH_PINGPONG]) {
		if (matrix)
			add_matrix(o, BENCH_PINGPONG);
		else if (o->quick)
			add_specs(o, BENCH_PINGPONG, quick_pingpong, 2);
		else
			add_specs(o, BENCH_PINGPONG, default_pingpong, 6);
	}
	if (o->scenarios[BENCH_STREAM]) {
		if (matrix)
			add_matrix(o, BENCH_STREAM);
		else if (o->quick)
			add_specs(o, BENCH_STREAM, quick_stream, 3);
		else
			add_specs(o, BENCH_STREAM, default_stream, 9);
	}
	if (o->scenarios[BENCH_CAMERA])
		add_row(o, BENCH_CAMERA, 0, CAMERA_FDS, 1);
}

static struct fanin_row fanin_rows[FANIN_MAX_ROWS];
static unsigned int nr_fanin;

static void add_fanin_row(const struct opts *o, unsigned int channels)
{
	struct fanin_row *row = &fanin_rows[nr_fanin++];
	struct fanin_result *res;
	const char *skip;
	unsigned int i, r;

	memset(row, 0, sizeof(*row));
	row->cfg = (struct fanin_cfg) {
		.channels = channels,
		.window = o->window,
		.procs = o->procs,
		.warmup_ms = o->warmup_ms,
		.duration_ms = o->duration_ms,
	};
	skip = fanin_prepare_row(&row->cfg);
	if (skip)
		snprintf(row->skip, sizeof(row->skip), "%s", skip);
	for (i = 0; i < FANIN_NR_IMPLS; i++) {
		res = &row->res[i];
		res->enabled = o->fanin_impls[i];
		for (r = 0; r < BENCH_MAX_ROUNDS; r++)
			res->srv_cpu[r] = res->all_cpu[r] = res->rate[r] =
			res->srv_idle[r] = res->srv_busy[r] =
			res->all_idle[r] = res->all_busy[r] = NAN;
	}
}

static void build_fanin(const struct opts *o)
{
	const unsigned int *n = o->channels;
	unsigned int i, nr = o->nr_channels;
	bool any = false;

	for (i = 0; i < FANIN_NR_IMPLS; i++)
		any |= o->fanin_impls[i];
	if (!o->scenarios[BENCH_FANIN] || !any)
		return;
	if (!nr) {
		n = o->quick ? quick_channels : default_channels;
		nr = o->quick ? ARRAY_SIZE(quick_channels) :
				ARRAY_SIZE(default_channels);
	}
	for (i = 0; i < nr; i++)
		add_fanin_row(o, n[i]);
}

static void progress(const struct opts *o, unsigned int done,
		     unsigned int total, const struct bench_row *row,
		     unsigned int round, unsigned int impl)
{
	const struct bench_cfg *cfg = &row->cfg;

	if (!o->progress)
		return;
	fprintf(stderr, "\r\033[K[%3u%%] %s", done * 100 / total,
		bench_scenarios[cfg->scenario]->name);
	if (cfg->scenario != BENCH_CAMERA)
		fprintf(stderr, " %u B, %u fds", cfg->size, cfg->nr_fds);
	if (cfg->scenario == BENCH_STREAM)
		fprintf(stderr, ", batch %u", cfg->batch);
	fprintf(stderr, ": %s, round %u/%u", bench_impls[impl]->name,
		round + 1, o->rounds);
	fflush(stderr);
}

static void run_row(const struct opts *o, struct bench_row *row,
		    unsigned int *done, unsigned int total)
{
	struct bench_result *res;
	struct bench_run run;
	unsigned int r, j, i;
	int err;

	for (r = 0; r < o->rounds; r++) {
		for (j = 0; j < BENCH_NR_IMPLS; j++) {
			i = (j + r) % BENCH_NR_IMPLS;
			res = &row->res[i];
			if (!res->enabled)
				continue;
			progress(o, (*done)++, total, row, r, i);
			err = run_one(bench_impls[i], &row->cfg, &run);
			if (err) {
				res->err = err;
				continue;
			}
			result_add_run(res, &row->cfg, r, &run);
			free(run.samples);
		}
	}
	row_summarize(row, o->rounds);
	for (i = 0; i < BENCH_NR_IMPLS; i++) {
		free(row->res[i].pool);
		row->res[i].pool = NULL;
	}
}

/*
 * Round-major, so that one round's runs at every N are close in time: the
 * ratios to N = 1 are taken within a round too.
 */
static void run_fanin(const struct opts *o, unsigned int *done,
		      unsigned int total)
{
	struct fanin_srv_report srv;
	struct fanin_cli_report cli;
	struct fanin_result *res;
	struct fanin_row *row;
	unsigned int r, k, j, i;
	int err;

	for (r = 0; r < o->fanin_rounds; r++) {
		for (k = 0; k < nr_fanin; k++) {
			row = &fanin_rows[k];
			for (j = 0; j < FANIN_NR_IMPLS && !row->skip[0]; j++) {
				i = (j + r) % FANIN_NR_IMPLS;
				res = &row->res[i];
				if (!res->enabled)
					continue;
				if (o->progress)
					fprintf(stderr, "\r\033[K[%3u%%] fanin %u channels: %s, round %u/%u",
						(*done)++ * 100 / total,
						row->cfg.channels,
						fanin_impls[i]->name, r + 1,
						o->fanin_rounds);
				err = fanin_run_one(fanin_impls[i], &row->cfg,
						    &srv, &cli);
				if (err)
					res->err = err;
				else
					fanin_result_add(res, &row->cfg, r,
							 &srv, &cli);
			}
		}
	}
	fanin_summarize(fanin_rows, nr_fanin, o->fanin_rounds);
}

static void print_header(const struct opts *o)
{
	struct utsname u;

	uname(&u);
	printf("ipcsock-bench: %s %s, %ld CPUs%s; ", u.sysname, u.release,
	       sysconf(_SC_NPROCESSORS_ONLN),
	       bench_pin ? " (pinned: parent CPU 0, peer CPU 1)" : "");
	if (nr_rows)
		printf("%u rounds per row, ", o->rounds);
	if (nr_fanin)
		printf("fanin %u rounds, ", o->fanin_rounds);
	printf("implementations interleaved\n");
	printf("runs: %u ms warm-up + %u ms measured; camera %u frames at %u fps; busy poll %u us\n",
	       o->warmup_ms, o->duration_ms, o->frames, o->fps,
	       bench_busy_poll_us);
}

static void print_notes(void)
{
	printf("\nmedian: median over rounds of each run's median; p90..max: all rounds' samples pooled.\n"
	       "cpu/msg: CPU time (user+system, getrusage) of both processes per message, in us;\n"
	       "  a ping-pong round trip is 2 messages, a camera frame 6.\n"
	       "cs/msg: context switches (voluntary + involuntary) of both processes per message.\n"
	       "allocs: heap allocations per message of both processes in the measured window\n"
	       "  (worst round). rss KiB: resident memory the channel added, both ends.\n"
	       "x REF: ratio to REF measured in the same round, median (min-max) over rounds;\n"
	       "  latency ratios (lower is better), throughput ratios for stream (higher is better).\n"
	       "floor-sendmsg sends one message per call whatever the batch.\n"
	       "ipcsock-uring-busy and ipcsock-uring-adaptive run pinned, parent on CPU 0\n"
	       "  and peer on CPU 1.\n");
}

static struct liveness_row live_rows[LIVENESS_MAX_ROWS];
static unsigned int nr_live;

static void run_liveness(const struct opts *o, unsigned int *done,
			 unsigned int total)
{
	unsigned int i;

	for (i = 0; i < nr_live; i++) {
		if (o->progress)
			fprintf(stderr, "\r\033[K[%3u%%] liveness: %s, %s peer, %s",
				(*done)++ * 100 / total, live_rows[i].impl,
				live_rows[i].peer == IPCSOCK_BACKEND_EPOLL ?
				"epoll" : "io_uring",
				live_rows[i].loaded ? "busy" : "idle");
		liveness_run(&live_rows[i]);
	}
}

static struct bench_record fanin_recs[FANIN_MAX_ROWS * FANIN_NR_IMPLS +
				      LIVENESS_MAX_ROWS];
static unsigned int nr_fanin_recs;

int main(int argc, char **argv)
{
	unsigned int i, j, total = 0, done = 0;
	struct opts o;
	int ret;

	if (argc > 1 && !strcmp(argv[1], "--peer"))
		return peer_main(argc, argv);

	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret < 0 ? 2 : 0;
	signal(SIGPIPE, SIG_IGN);
	peer_set_exe(argv[0]);
	if (bench_pin) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	build_suite(&o);
	build_fanin(&o);
	if (o.scenarios[BENCH_LIVENESS])
		nr_live = liveness_rows(live_rows, o.kills);
	if (!nr_rows && !nr_fanin && !nr_live) {
		fprintf(stderr, "ipcsock-bench: nothing to run\n");
		return 2;
	}
	for (i = 0; i < nr_rows; i++)
		for (j = 0; j < BENCH_NR_IMPLS; j++)
			total += rows[i].res[j].enabled * o.rounds;
	for (i = 0; i < nr_fanin; i++)
		for (j = 0; j < FANIN_NR_IMPLS; j++)
			total += fanin_rows[i].res[j].enabled * o.fanin_rounds;
	total += nr_live;

	print_header(&o);
	fflush(stdout);
	for (i = 0; i < nr_rows; i++)
		run_row(&o, &rows[i], &done, total);
	run_fanin(&o, &done, total);
	run_liveness(&o, &done, total);
	if (o.progress)
		fprintf(stderr, "\r\033[K");
	report_table(stdout, rows, nr_rows);
	if (nr_rows)
		print_notes();
	fanin_table(stdout, fanin_rows, nr_fanin, o.fanin_rounds);
	liveness_table(stdout, live_rows, nr_live);
	if (!alloc_count_works())
		printf("allocs: not counted (a sanitizer owns malloc).\n");

	nr_fanin_recs = fanin_records(fanin_rows, nr_fanin, fanin_recs,
				      ARRAY_SIZE(fanin_recs));
	for (i = 0; i < nr_live; i++)
		liveness_record(&fanin_recs[nr_fanin_recs++], &live_rows[i]);
	for (i = 0; i < 2; i++) {
		const char *path = i ? o.csv : o.json;

		ret = path ? report_records(path, i, rows, nr_rows, fanin_recs,
					    nr_fanin_recs) : 0;
		if (ret) {
			fprintf(stderr, "ipcsock-bench: %s: %s\n", path,
				strerror(-ret));
			return 1;
		}
	}
	/* A backend this system lacks (no io_uring) is not a failure. */
	for (i = 0; i < nr_rows; i++)
		for (j = 0; j < BENCH_NR_IMPLS; j++)
			if (rows[i].res[j].enabled && !rows[i].res[j].ok &&
			    !bench_err_unsupported(rows[i].res[j].err))
				return 1;
	for (i = 0; i < nr_fanin; i++)
		for (j = 0; j < FANIN_NR_IMPLS; j++)
			if (fanin_rows[i].res[j].enabled &&
			    !fanin_rows[i].skip[0] && !fanin_rows[i].res[j].ok &&
			    !bench_err_unsupported(fanin_rows[i].res[j].err))
				return 1;
	for (i = 0; i < nr_live; i++)
		if (live_rows[i].err &&
		    !bench_err_unsupported(live_rows[i].err))
			return 1;
	return 0;
}
