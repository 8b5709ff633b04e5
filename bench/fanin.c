// SPDX-License-Identifier: MIT
/*
 * fanin's coordinator: one run makes the channels (socket pairs), forks
 * the server and the client processes (no exec: with thousands of fds to
 * hand over, inheriting them is the simple way), and sequences them over
 * their control sockets: idle, go, the server's window, stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fanin.h"

const struct fanin_server_ops *const fanin_impls[FANIN_NR_IMPLS] = {
	[FANIN_IPCSOCK_URING] = &fanin_ipcsock_uring,
	[FANIN_IPCSOCK_URING_SWW] = &fanin_ipcsock_uring_sww,
	[FANIN_IPCSOCK_SHARED] = &fanin_ipcsock_shared,
	[FANIN_IPCSOCK_EPOLL] = &fanin_ipcsock_epoll,
	[FANIN_FLOOR_EPOLL] = &fanin_floor_epoll,
	[FANIN_FLOOR_URING] = &fanin_floor_uring,
};

/* Its runs are not pairs of processes: main.c runs its suite itself. */
const struct bench_scenario_ops fanin_ops = {
	.name = "fanin",
};

/*
 * The coordinator holds both ends of every channel while it forks: raise
 * the soft limit on open files, and the hard one where allowed (root).
 * Returns why the row cannot run, or NULL.
 */
const char *fanin_prepare_row(const struct fanin_cfg *cfg)
{
	static char why[128];
	rlim_t need = 2ull * cfg->channels + 2 * FANIN_MAX_PROCS + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return "getrlimit failed";
	if (rl.rlim_cur >= need)
		return NULL;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	rl.rlim_cur = need;
	if (!setrlimit(RLIMIT_NOFILE, &rl))
		return NULL;
	snprintf(why, sizeof(why),
		 "RLIMIT_NOFILE below %llu and not raisable (no CAP_SYS_RESOURCE)",
		 (unsigned long long)need);
	return why;
}

static pid_t kids[FANIN_MAX_PROCS + 1];
static unsigned int nr_kids;

static void kill_kids(void)
{
	unsigned int i;

	for (i = 0; i < nr_kids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
}

static void fanin_watchdog(int sig)
{
	static const char msg[] = "ipcsock-bench: a fanin run timed out\n";

	(void)sig;
	kill_kids();
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

/*
 * Forks a role's process (0 in it): it keeps @fds[@keep_lo..@keep_hi) and
 * the child end of its control socket pair @my_ctl, nothing else.
 */
static pid_t fork_role(int *fds, unsigned int nr_fds, unsigned int keep_lo,
		       unsigned int keep_hi, int *ctl, unsigned int nr_ctl,
		       unsigned int my_ctl)
{
	pid_t parent = getpid(), pid;
	unsigned int i;

	fflush(NULL);
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	for (i = 0; i < nr_fds; i++)
		if (i < keep_lo || i >= keep_hi)
			close(fds[i]);
	for (i = 0; i < nr_ctl; i++) {
		close(ctl[2 * i]);
		if (i != my_ctl)
			close(ctl[2 * i + 1]);
	}
	return 0;
}

static void close_all(int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int make_fds(int *fds, unsigned int nr, int *ctl, unsigned int nr_ctl)
{
	unsigned int i;
	int sv[2];

	for (i = 0; i < 2 * nr; i++)
		fds[i] = -1;
	for (i = 0; i < 2 * nr_ctl; i++)
		ctl[i] = -1;
	/* Server ends first, in channel order, then the client ends. */
	for (i = 0; i < nr; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			return -errno;
		fds[i] = sv[0];
		fds[nr + i] = sv[1];
	}
	for (i = 0; i < nr_ctl; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
			       &ctl[2 * i]))
			return -errno;
	return 0;
}

/* The run's steps once every process exists; 0 or the first failure. */
static int sequence(int *ctl, unsigned int procs,
		    struct fanin_srv_report *srv, struct fanin_cli_report *cli)
{
	struct fanin_cli_report c;
	unsigned int i;
	int err;
	char b;

	/* ctl[0]: the server's; ctl[2 + 2 * i]: client i's. */
	err = read_full(ctl[0], srv, sizeof(*srv));
	if (!err)
		err = srv->err;
	for (i = 0; !err && i < procs; i++) {
		err = read_full(ctl[2 + 2 * i], &b, 1);
		if (!err && b != 'R')
			err = -EIO;
	}
	if (err)
		return err;
	memset(cli, 0, sizeof(*cli));
	for (i = 0; !err && i < procs; i++)
		err = write_full(ctl[2 + 2 * i], "G", 1);
	/* The server's window; then the clients stop and report. */
	if (!err)
		err = read_full(ctl[0], srv, sizeof(*srv));
	if (!err)
		err = srv->err;
	for (i = 0; !err && i < procs; i++)
		err = write_full(ctl[2 + 2 * i], "S", 1);
	for (i = 0; !err && i < procs; i++) {
		err = read_full(ctl[2 + 2 * i], &c, sizeof(c));
		if (!err)
			err = c.err;
		cli->idle_rss_kib += c.idle_rss_kib;
		cli->busy_rss_kib += c.busy_rss_kib;
		cli->msgs += c.msgs;
		cli->cpu_ns += c.cpu_ns;
	}
	return err;
}

static unsigned int timeout_s(const struct fanin_cfg *cfg)
{
	return (cfg->warmup_ms + cfg->duration_ms) / 1000 + 30 +
	       cfg->channels / 256;
}

int fanin_run_one(const struct fanin_server_ops *ops,
		  const struct fanin_cfg *cfg, struct fanin_srv_report *srv,
		  struct fanin_cli_report *cli)
{
	struct sigaction sa = { .sa_handler = fanin_watchdog };
	unsigned int n = cfg->channels, procs, i, first, nr;
	int *fds, ctl[2 * (FANIN_MAX_PROCS + 1)], err, status;
	pid_t pid;

	procs = cfg->procs < n ? cfg->procs : n;
	fds = malloc(2 * n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	nr_kids = 0;
	err = make_fds(fds, n, ctl, procs + 1);
	sigaction(SIGALRM, &sa, NULL);
	alarm(timeout_s(cfg));
	if (!err) {
		pid = fork_role(fds, 2 * n, 0, n, ctl, procs + 1, 0);
		if (!pid)
			_exit(fanin_server_main(ops, cfg, fds, ctl[1]));
		kids[nr_kids++] = pid;
		if (pid < 0)
			err = -errno;
	}
	for (i = 0; !err && i < procs; i++) {
		first = n * i / procs;
		nr = n * (i + 1) / procs - first;
		pid = fork_role(fds, 2 * n, n + first, n + first + nr, ctl,
				procs + 1, i + 1);
		if (!pid)
			_exit(fanin_client_main(cfg, fds + n, first, nr,
						ctl[2 * (i + 1) + 1]));
		kids[nr_kids++] = pid;
		if (pid < 0)
			err = -errno;
	}
	close_all(fds, 2 * n);
	free(fds);
	for (i = 0; i < procs + 1; i++) {
		close(ctl[2 * i + 1]);
		ctl[2 * i + 1] = -1;
	}
	if (!err)
		err = sequence(ctl, procs, srv, cli);
	if (err)
		kill_kids();
	close_all(ctl, 2 * (procs + 1));
	for (i = 0; i < nr_kids; i++) {
		if (kids[i] <= 0)
			continue;
		while (waitpid(kids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (!err && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			err = -ECHILD;
	}
	alarm(0);
	nr_kids = 0;
	return err;
}
