// SPDX-License-Identifier: MIT
/*
 * One run: the socket pairs, the peer (this program, fork+exec'd in --peer
 * mode), and the context both roles work in.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

const struct bench_impl *const bench_impls[BENCH_NR_IMPLS] = {
	[IMPL_IPCSOCK_URING] = &impl_ipcsock_uring,
	[IMPL_IPCSOCK_EPOLL] = &impl_ipcsock_epoll,
	[IMPL_FLOOR_SENDMSG] = &impl_floor_sendmsg,
	[IMPL_FLOOR_MMSG] = &impl_floor_mmsg,
	[IMPL_LIBCAMERA_STYLE] = &impl_libcamera_style,
	[IMPL_IPCSOCK_URING_BUSY] = &impl_ipcsock_uring_busy,
	[IMPL_LIBCAMERA] = &impl_libcamera,
	[IMPL_IPCSOCK_LCWIRE] = &impl_ipcsock_lcwire,
	[IMPL_IPCSOCK_URING_ADAPTIVE] = &impl_ipcsock_uring_adaptive,
};

const struct bench_scenario_ops *const bench_scenarios[BENCH_NR_SCENARIOS] = {
	[BENCH_PINGPONG] = &pingpong_ops,
	[BENCH_STREAM] = &stream_ops,
	[BENCH_CAMERA] = &camera_ops,
	[BENCH_FANIN] = &fanin_ops,
	[BENCH_LIVENESS] = &liveness_ops,
};

bool bench_pin;
static char self_exe[4096];

/*
 * The program to run as the peer: this one. Resolved once by readlink(),
 * not exec'd as /proc/self/exe, because under valgrind that link names the
 * valgrind tool while readlink() tells the truth.
 */
void peer_set_exe(const char *argv0)
{
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);

	if (n > 0)
		self_exe[n] = '\0';
	else
		snprintf(self_exe, sizeof(self_exe), "%s", argv0);
}

/* What opening a channel says when the system lacks the backend. */
bool bench_err_unsupported(int err)
{
	return err == -EOPNOTSUPP;
}

struct bench_hdr *msg_hdr(struct bench_ctx *x, unsigned int i)
{
	return x->msgs[i].data;
}

int ctx_send(struct bench_ctx *x, unsigned int first, unsigned int n)
{
	return x->chan.impl->send(&x->chan, &x->msgs[first], n);
}

int ctx_wait_stop(struct bench_ctx *x)
{
	int err;

	while (!x->stop && !x->err) {
		err = x->chan.impl->wait(&x->chan);
		if (err)
			return err;
	}
	return x->err;
}

static void ctx_free(struct bench_ctx *x)
{
	unsigned int i;

	for (i = 0; i < x->nr_memfds; i++)
		close(x->memfds[i]);
	x->nr_memfds = 0;
	free(x->buf);
	x->buf = NULL;
	free(x->samples);
	x->samples = NULL;
}

/*
 * Everything the role needs is allocated and touched here, before the
 * resident-memory baseline, so that only the channel's memory shows.
 */
static int ctx_init(struct bench_ctx *x, const struct bench_impl *impl,
		    const struct bench_cfg *cfg, bool parent)
{
	bool camera = cfg->scenario == BENCH_CAMERA;
	unsigned int i, nr_fds = camera ? CAMERA_FDS : cfg->nr_fds;
	size_t max_len = camera ? 1024 : cfg->size;

	memset(x, 0, sizeof(*x));
	x->cfg = cfg;
	x->parent = parent;
	for (i = 0; i < nr_fds; i++) {
		x->memfds[i] = memfd_create("ipcsock-bench", MFD_CLOEXEC);
		if (x->memfds[i] < 0) {
			ctx_free(x);
			return -errno;
		}
		x->nr_memfds++;
	}
	if (cfg->scenario == BENCH_STREAM)
		x->nr_msgs = cfg->batch;
	else if (camera)
		x->nr_msgs = CAMERA_EXCHANGES;
	else
		x->nr_msgs = 1;
	x->buf_stride = (max_len + 63) & ~(size_t)63;
	x->buf = malloc(x->nr_msgs * x->buf_stride);
	if (!x->buf) {
		ctx_free(x);
		return -ENOMEM;
	}
	memset(x->buf, 0x5a, x->nr_msgs * x->buf_stride);
	for (i = 0; i < x->nr_msgs; i++) {
		x->msgs[i].data = x->buf + i * x->buf_stride;
		x->msgs[i].len = cfg->size;
		x->msgs[i].fds = x->memfds;
		x->msgs[i].nr_fds = nr_fds;
		memset(x->msgs[i].data, 0, sizeof(struct bench_hdr));
	}
	x->nr_rx = 1;
	x->rx_len[0] = cfg->size;
	x->rx_fds[0] = nr_fds;
	if (camera)
		camera_msgs(x);

	if (parent && cfg->scenario == BENCH_PINGPONG)
		/* A round trip takes well over a microsecond. */
		x->cap_samples = (size_t)cfg->duration_ms * 1000 + 16;
	else if (parent && camera)
		x->cap_samples = cfg->frames + 16;
	if (x->cap_samples) {
		x->samples = malloc(x->cap_samples * sizeof(*x->samples));
		if (!x->samples) {
			ctx_free(x);
			return -ENOMEM;
		}
		memset(x->samples, 0, x->cap_samples * sizeof(*x->samples));
	}

	x->chan.impl = impl;
	x->chan.fd = -1;
	x->chan.max_len = max_len;
	x->chan.batch = cfg->scenario == BENCH_STREAM ? cfg->batch : 1;
	x->chan.rx_arg = x;
	return 0;
}

int read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* A run that hangs (a peer that died on a datagram socket) ends the program. */
static pid_t watch_pid;

static void watchdog(int sig)
{
	static const char msg[] = "ipcsock-bench: a run timed out\n";

	(void)sig;
	if (watch_pid > 0)
		kill(watch_pid, SIGKILL);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

static unsigned int run_timeout_s(const struct bench_cfg *cfg)
{
	unsigned int ms = cfg->warmup_ms + cfg->duration_ms;

	if (cfg->scenario == BENCH_CAMERA)
		ms = (cfg->frames + cfg->warm_frames) * 1000ull / cfg->fps;
	return ms / 1000 + 30;
}

#define PEER_ARGS	13

/*
 * Busy polling is for processes with a core each: left to the scheduler,
 * a waker that spins can sit on the core its wakee was placed on, and
 * round trips then take the polling budget. So that implementation, and
 * the adaptive one, are always pinned (parent CPU 0, peer CPU 1); --pin
 * pins every one.
 */
static bool run_pinned(const struct bench_impl *impl)
{
	return (bench_pin || impl == &impl_ipcsock_uring_busy ||
		impl == &impl_ipcsock_uring_adaptive) &&
	       sysconf(_SC_NPROCESSORS_ONLN) >= 2;
}

static pid_t spawn_peer(const struct bench_impl *impl,
			const struct bench_cfg *cfg, int chan_fd, int ctl_fd)
{
	char args[PEER_ARGS][32], *argv[PEER_ARGS + 3];
	pid_t parent = getpid(), pid;
	unsigned int i;

	snprintf(args[0], sizeof(args[0]), "%s", impl->name);
	snprintf(args[1], sizeof(args[1]), "%s",
		 bench_scenarios[cfg->scenario]->name);
	snprintf(args[2], sizeof(args[2]), "%u", cfg->size);
	snprintf(args[3], sizeof(args[3]), "%u", cfg->nr_fds);
	snprintf(args[4], sizeof(args[4]), "%u", cfg->batch);
	snprintf(args[5], sizeof(args[5]), "%u", cfg->warmup_ms);
	snprintf(args[6], sizeof(args[6]), "%u", cfg->duration_ms);
	snprintf(args[7], sizeof(args[7]), "%u", cfg->fps);
	snprintf(args[8], sizeof(args[8]), "%u", cfg->frames);
	snprintf(args[9], sizeof(args[9]), "%u", cfg->warm_frames);
	snprintf(args[10], sizeof(args[10]), "%d", chan_fd);
	snprintf(args[11], sizeof(args[11]), "%d", ctl_fd);
	snprintf(args[12], sizeof(args[12]), "%u", bench_busy_poll_us);
	argv[0] = "ipcsock-bench";
	argv[1] = "--peer";
	for (i = 0; i < PEER_ARGS; i++)
		argv[i + 2] = args[i];
	argv[PEER_ARGS + 2] = NULL;

	pid = fork();
	if (pid)
		return pid;
	/* Die with the parent; never outlive a killed benchmark. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (run_pinned(impl))
		pin_to(1);
	fcntl(chan_fd, F_SETFD, 0);
	fcntl(ctl_fd, F_SETFD, 0);
	execv(self_exe, argv);
	_exit(127);
}

int run_one(const struct bench_impl *impl, const struct bench_cfg *cfg,
	    struct bench_run *run)
{
	const struct bench_scenario_ops *sc = bench_scenarios[cfg->scenario];
	struct sigaction sa = { .sa_handler = watchdog };
	bool pinned = run_pinned(impl);
	struct bench_ctx x;
	int sv[2], ctl[2], err, status;
	cpu_set_t cpus;
	pid_t pid;

	memset(run, 0, sizeof(*run));
	if (impl->missing)
		return -EOPNOTSUPP;
	if (socketpair(AF_UNIX, impl->sock_type | SOCK_CLOEXEC, 0, sv))
		return -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl)) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	pid = spawn_peer(impl, cfg, sv[1], ctl[1]);
	close(sv[1]);
	close(ctl[1]);
	if (pid < 0) {
		err = -errno;
		close(sv[0]);
		close(ctl[0]);
		return err;
	}
	watch_pid = pid;
	sigaction(SIGALRM, &sa, NULL);
	alarm(run_timeout_s(cfg));
	if (pinned) {
		sched_getaffinity(0, sizeof(cpus), &cpus);
		pin_to(0);
	}

	err = ctx_init(&x, impl, cfg, true);
	if (err) {
		close(sv[0]);
		goto out_peer;
	}
	/* Give freed heap back, so that the channel's pages show as new. */
	malloc_trim(0);
	x.rss0 = rss_kib();
	err = impl->open(&x.chan, sv[0]);
	if (err) {
		close(sv[0]);
		ctx_free(&x);
		goto out_peer;
	}
	err = sc->parent(&x);
	if (!err)
		err = read_full(ctl[0], &run->peer, sizeof(run->peer));
	if (!err && run->peer.err)
		err = run->peer.err;
	impl->close(&x.chan);
	run->local = x.side;
	run->samples = x.samples;
	run->nr_samples = x.nr_samples;
	run->count = x.count;
	run->count_ns = x.count_ns;
	x.samples = NULL;
	ctx_free(&x);
out_peer:
	if (err)
		kill(pid, SIGKILL);
	close(ctl[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	alarm(0);
	watch_pid = 0;
	if (pinned)
		sched_setaffinity(0, sizeof(cpus), &cpus);
	if (!err && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		err = -ECHILD;
	if (err) {
		free(run->samples);
		run->samples = NULL;
		run->nr_samples = 0;
	}
	return err;
}

static int parse_uint(const char *s, unsigned int *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || n > 0x7fffffff)
		return -EINVAL;
	*v = n;
	return 0;
}

static const struct bench_impl *impl_by_name(const char *name)
{
	unsigned int i;

	for (i = 0; i < BENCH_NR_IMPLS; i++)
		if (!strcmp(bench_impls[i]->name, name))
			return bench_impls[i];
	return NULL;
}

/* ipcsock-bench --peer IMPL SCENARIO SIZE FDS BATCH WARMUP DURATION FPS
 *                      FRAMES WARM_FRAMES CHAN_FD CTL_FD BUSY_POLL_US
 */
int peer_main(int argc, char **argv)
{
	unsigned int v[10], i, chan_fd, ctl_fd;
	const struct bench_impl *impl;
	struct bench_cfg cfg = { 0 };
	struct bench_ctx x;
	ssize_t n;
	char c;
	int err;

	if (argc != PEER_ARGS + 2)
		return 2;
	impl = impl_by_name(argv[2]);
	for (i = 0; i < BENCH_NR_SCENARIOS; i++)
		if (!strcmp(bench_scenarios[i]->name, argv[3]))
			cfg.scenario = i;
	for (i = 0; i < 10; i++)
		if (i >= 2 && parse_uint(argv[i + 2], &v[i]))
			return 2;
	if (!impl || parse_uint(argv[12], &chan_fd) ||
	    parse_uint(argv[13], &ctl_fd) ||
	    parse_uint(argv[14], &bench_busy_poll_us))
		return 2;
	if (strcmp(bench_scenarios[cfg.scenario]->name, argv[3]))
		return 2;
	cfg.size = v[2];
	cfg.nr_fds = v[3];
	cfg.batch = v[4];
	cfg.warmup_ms = v[5];
	cfg.duration_ms = v[6];
	cfg.fps = v[7];
	cfg.frames = v[8];
	cfg.warm_frames = v[9];
	fcntl(chan_fd, F_SETFD, FD_CLOEXEC);
	fcntl(ctl_fd, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	/* Told apart from the parent in ps, top and perf. */
	prctl(PR_SET_NAME, "ipcsock-peer");

	err = ctx_init(&x, impl, &cfg, false);
	if (!err) {
		x.rss0 = rss_kib();
		err = impl->open(&x.chan, chan_fd);
		if (err)
			close(chan_fd);
	}
	if (!err)
		err = bench_scenarios[cfg.scenario]->peer(&x);
	x.side.err = err;
	if (write_full(ctl_fd, &x.side, sizeof(x.side)))
		return 1;
	/* Keep the channel open until the parent has seen everything. */
	for (;;) {
		n = read(ctl_fd, &c, 1);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		break;
	}
	if (x.chan.priv)
		impl->close(&x.chan);
	ctx_free(&x);
	return 0;
}
