// SPDX-License-Identifier: MIT
/*
 * The liveness scenario (see liveness.h). Each kill: a fresh channel, a
 * forked peer that binds its end on a loop of the row's backend, says
 * "up" and waits in dispatch (io_uring_enter or epoll_wait); this end,
 * on an io_uring loop, closes its copy of the peer's end, watches the
 * peer's pidfd (or not), kills the peer and times SIGKILL to hangup.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "liveness.h"

/* A kill whose hangup takes longer counts as a failure of the row. */
#define LIVENESS_WAIT_NS	(10ull * 1000 * 1000 * 1000)

const struct bench_scenario_ops liveness_ops = {
	.name = "liveness",
};

unsigned int liveness_rows(struct liveness_row *rows, unsigned int kills)
{
	static const struct {
		const char *impl;
		bool watch, floor;
		enum ipcsock_backend peer;
	} kinds[] = {
		{ "floor-pidfd", true, true, IPCSOCK_BACKEND_URING },
		{ "ipcsock-pidfd", true, false, IPCSOCK_BACKEND_URING },
		{ "ipcsock-eof", false, false, IPCSOCK_BACKEND_URING },
		{ "ipcsock-pidfd", true, false, IPCSOCK_BACKEND_EPOLL },
		{ "ipcsock-eof", false, false, IPCSOCK_BACKEND_EPOLL },
	};
	unsigned int i, n = 0, load;

	for (load = 0; load < 2; load++) {
		for (i = 0; i < ARRAY_SIZE(kinds); i++, n++) {
			memset(&rows[n], 0, sizeof(rows[n]));
			rows[n].impl = kinds[i].impl;
			rows[n].watch = kinds[i].watch;
			rows[n].floor = kinds[i].floor;
			rows[n].peer = kinds[i].peer;
			rows[n].loaded = load;
			rows[n].kills = kills;
			rows[n].p50_us = rows[n].p99_us = rows[n].max_us = NAN;
		}
	}
	return n;
}

struct kill_state {
	bool up, hung_up;
	int err;
	uint64_t t_hangup;
};

static void on_ready(struct ipcsock *sock, void *arg)
{
	struct kill_state *k = arg;
	struct ipcsock_payload p;

	while (!ipcsock_receive(sock, &p))
		k->up = true;
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct kill_state *k = arg;

	(void)sock;
	k->t_hangup = now_ns();
	k->hung_up = true;
	k->err = err;
}

static void peer(int fd, enum ipcsock_backend backend)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	struct ipcsock_payload up = { .data = "up", .len = 2 };
	struct ipcsock_loop *loop;
	struct ipcsock *sock;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	loop = ipcsock_loop_new(&opts);
	sock = ipcsock_new(loop);
	if (!sock || ipcsock_bind(sock, fd) || ipcsock_send(sock, &up))
		_exit(1);
	for (;;)
		ipcsock_loop_dispatch(loop, -1);
}

/*
 * The floor: no library on this side, poll(2) on the pidfd alone. The
 * kernel reports a process gone only at the end of its exit (after its
 * memory and files are released), so no watcher can be faster than this.
 */
static int floor_wait(int pidfd, struct kill_state *k)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int ret;

	ret = poll(&pfd, 1, LIVENESS_WAIT_NS / 1000000);
	if (ret < 0)
		return -errno;
	if (!ret)
		return -ETIMEDOUT;
	k->t_hangup = now_ns();
	k->hung_up = true;
	return 0;
}

/* One kill; its latency in *@ns. */
static int kill_one(struct ipcsock_loop *loop, const struct liveness_row *row,
		    uint64_t *ns)
{
	struct timespec settle = { .tv_nsec = 1000 * 1000 };
	struct ipcsock *sock = ipcsock_new(loop);
	struct kill_state k = { 0 };
	int remote, pidfd = -1, err = 0;
	uint64_t t0, end;
	pid_t pid;

	if (!sock)
		return -errno;
	remote = ipcsock_create(sock);
	if (remote < 0) {
		ipcsock_free(sock);
		return remote;
	}
	ipcsock_set_ready_read(sock, on_ready, &k);
	ipcsock_set_hangup(sock, on_hangup, &k);
	pid = fork();
	if (!pid)
		peer(remote, row->peer);
	close(remote);
	if (pid < 0) {
		ipcsock_free(sock);
		return -errno;
	}
	end = now_ns() + LIVENESS_WAIT_NS;
	while (!k.up && !k.hung_up && now_ns() < end)
		ipcsock_loop_dispatch(loop, 10);
	if (!k.up)
		err = -EPROTO;
	if (!err && row->watch) {
		pidfd = pidfd_open(pid, 0);
		if (pidfd < 0)
			err = -errno;
		else if (!row->floor)
			err = ipcsock_watch_pidfd(sock, pidfd);
	}
	/* Let the peer get into its wait. */
	nanosleep(&settle, NULL);
	t0 = now_ns();
	kill(pid, SIGKILL);
	end = t0 + LIVENESS_WAIT_NS;
	if (!err && row->floor)
		err = floor_wait(pidfd, &k);
	while (!err && !k.hung_up && now_ns() < end)
		ipcsock_loop_dispatch(loop, 10);
	if (!err && !k.hung_up)
		err = -ETIMEDOUT;
	*ns = k.t_hangup - t0;
	waitpid(pid, NULL, 0);
	if (pidfd >= 0)
		close(pidfd);
	ipcsock_free(sock);
	return err;
}

/* Processes that keep every CPU busy until killed. */
static int load_start(pid_t *hogs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		hogs[i] = fork();
		if (hogs[i] < 0)
			return -errno;
		if (!hogs[i]) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				__asm__ __volatile__("" ::: "memory");
		}
	}
	return 0;
}

static void load_stop(pid_t *hogs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (hogs[i] <= 0)
			continue;
		kill(hogs[i], SIGKILL);
		waitpid(hogs[i], NULL, 0);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *ns, unsigned int n, double p)
{
	unsigned int i = (unsigned int)ceil(p * n) - 1;

	return ns[i < n ? i : n - 1] / 1000.0;
}

int liveness_run(struct liveness_row *row)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_URING);
	unsigned int i, nr_hogs = 0;
	pid_t hogs[64] = { 0 };
	struct ipcsock_loop *loop;
	uint64_t *ns;
	int err = 0;

	ns = calloc(row->kills, sizeof(*ns));
	loop = ipcsock_loop_new(&opts);
	if (!ns || !loop) {
		err = -errno;
		goto out;
	}
	if (row->loaded) {
		nr_hogs = sysconf(_SC_NPROCESSORS_ONLN);
		if (nr_hogs > ARRAY_SIZE(hogs))
			nr_hogs = ARRAY_SIZE(hogs);
		err = load_start(hogs, nr_hogs);
	}
	for (i = 0; !err && i < row->kills; i++)
		err = kill_one(loop, row, &ns[i]);
	load_stop(hogs, nr_hogs);
	if (!err) {
		qsort(ns, row->kills, sizeof(*ns), cmp_u64);
		row->p50_us = pct_us(ns, row->kills, 0.50);
		row->p99_us = pct_us(ns, row->kills, 0.99);
		row->max_us = ns[row->kills - 1] / 1000.0;
	}
out:
	row->err = err;
	ipcsock_loop_free(loop);
	free(ns);
	return err;
}

static const char *backend_str(enum ipcsock_backend b)
{
	return b == IPCSOCK_BACKEND_EPOLL ? "epoll" : "io_uring";
}

void liveness_table(FILE *f, const struct liveness_row *rows, unsigned int n)
{
	unsigned int i;

	if (!n)
		return;
	fprintf(f, "\nliveness: SIGKILL of the peer, blocked in its loop's wait, to hangup (us)\n");
	fprintf(f, "%-14s %-9s %-5s %6s %10s %10s %10s\n", "impl", "peer",
		"load", "kills", "p50", "p99", "max");
	for (i = 0; i < n; i++) {
		fprintf(f, "%-14s %-9s %-5s %6u", rows[i].impl,
			backend_str(rows[i].peer),
			rows[i].loaded ? "busy" : "idle", rows[i].kills);
		if (rows[i].err) {
			fprintf(f, "  failed: %s\n", strerror(-rows[i].err));
			continue;
		}
		fprintf(f, " %10.1f %10.1f %10.1f\n", rows[i].p50_us,
			rows[i].p99_us, rows[i].max_us);
	}
	fprintf(f, "ipcsock-pidfd: ipcsock_watch_pidfd(); ipcsock-eof: the SEQPACKET end of file alone;\n"
		"floor-pidfd: poll(2) on the pidfd, no library on the watching side.\n"
		"busy: one spinning process per CPU meanwhile. libcamera notices a dead\n"
		"worker when a call times out (2 s), or never for one it sends to without a reply.\n");
}

void liveness_record(struct bench_record *rec, const struct liveness_row *row)
{
	record_init(rec);
	rec->scenario = "liveness";
	rec->impl = row->impl;
	rec->peer_backend = backend_str(row->peer);
	rec->load = row->loaded ? "busy" : "idle";
	rec->kills = row->kills;
	rec->p50_us = row->p50_us;
	rec->p99_us = row->p99_us;
	rec->max_us = row->max_us;
	rec->rounds = 1;
	if (row->err)
		rec->error = strerror(-row->err);
}
