// SPDX-License-Identifier: MIT
/*
 * vimc-pipeline - the pipeline handler's side of libcamera's vimc IPA,
 * written in C over libipcsock in libcamera wire mode: it starts Debian's
 * real vimc IPA proxy worker (libcamera 0.0.3) and drives it as libcamera's
 * vimc pipeline handler would. See examples/libcamera-ipa/README.md.
 *
 * Usage: vimc-pipeline [--duration S] [--kill-after MS] [--orphan-wait MS]
 *                      [--worker PATH] [--ipa PATH] [--config PATH]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcsock.h>

#include "../spawn.h"
#include "../timing.h"
#include "vimc-ipa.h"

#ifndef LIBCAMERA_VERSION
#define LIBCAMERA_VERSION	""
#endif
#ifndef LIBCAMERA_LIBDIR
#define LIBCAMERA_LIBDIR	"/usr/lib"
#endif
#ifndef LIBCAMERA_PREFIX
#define LIBCAMERA_PREFIX	"/usr"
#endif

#define FPS		240
/* libcamera's IPCPipeUnixSocket gives a call this long. */
#define CALL_TIMEOUT_MS	2000
#define PARAMS_BUF_ID	1
#define PARAMS_BUF_SIZE	4096
#define KSFT_SKIP	4

/* One vimc_ipa_proxy process and the channel to it. */
struct worker {
	struct ipcsock *sock;
	pid_t pid;
	int pidfd;
	uint32_t next_cookie;

	/* The synchronous call in flight, and its reply. */
	uint32_t cmd;
	uint32_t cookie;
	bool answered;
	uint8_t reply[64];
	size_t reply_len;

	/* paramsBufferReady events: how many, and the last one. */
	unsigned int events;
	bool event_seen;
	uint32_t event_cookie;
	uint32_t event_buffer;
	uint32_t event_flags;
	uint64_t event_ns;

	unsigned int bad_messages;
	int hangup_err;		/* 0: none seen */

	/* The process is gone: when the pidfd said so, and how. */
	bool exited;
	uint64_t exit_ns;
	int status;
};

struct handler {
	/* Options. */
	double duration_s;
	unsigned int kill_after_ms;	/* 0: never */
	unsigned int orphan_wait_ms;	/* 0: no orphan demonstration */
	const char *worker_path;
	const char *ipa_path;
	const char *config_path;

	struct ipcsock_loop *loop;
	int loop_fd;
	int buf_fd;
	uint64_t kill_ns;		/* when --kill-after struck */
	uint64_t noticed_ns;		/* and when the run ended */
	bool failed;
};

static void check(struct handler *h, bool ok, const char *what)
{
	if (!ok) {
		h->failed = true;
		printf("  FAILED: %s\n", what);
	}
}

static void on_ready_read(struct ipcsock *sock, void *arg)
{
	struct worker *w = arg;
	struct ipcsock_payload msg;
	struct ipa_reader r;
	struct ipa_hdr hdr;
	unsigned int i;

	while (!ipcsock_receive(sock, &msg)) {
		/* Nothing vimc sends to the pipeline handler carries fds. */
		for (i = 0; i < msg.nr_fds; i++)
			close(msg.fds[i]);
		ipa_reader_init(&r, msg.data, msg.len, NULL, 0);
		ipa_get_hdr(&r, &hdr);
		if (r.err || msg.nr_fds) {
			w->bad_messages++;
		} else if (!w->answered && hdr.cookie == w->cookie &&
			   hdr.cmd == w->cmd) {
			w->reply_len = msg.len - r.pos;
			if (w->reply_len > sizeof(w->reply)) {
				w->bad_messages++;
				continue;
			}
			memcpy(w->reply, (const uint8_t *)msg.data + r.pos,
			       w->reply_len);
			w->answered = true;
		} else if (hdr.cmd == VIMC_EVENT_PARAMS_BUFFER_READY &&
			   !vimc_params_buffer_ready(&r, &w->event_buffer,
						     &w->event_flags)) {
			w->event_cookie = hdr.cookie;
			w->event_ns = now_ns();
			w->events++;
			w->event_seen = true;
		} else {
			w->bad_messages++;
		}
	}
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct worker *w = arg;

	(void)sock;
	w->hangup_err = err ? err : -EPIPE;
}

/*
 * Run the loop until *@done, @deadline (0: none) or the worker's end,
 * watching the worker's pidfd next to the loop's fd: the datagram channel
 * has no end of file, so the pidfd is what tells at once that the worker
 * is gone. Returns 0, -ETIMEDOUT, -ESRCH (the worker exited) or the
 * channel's error.
 */
static int wait_for(struct handler *h, struct worker *w, const bool *done,
		    uint64_t deadline)
{
	struct pollfd pfd[2] = {
		{ .fd = h->loop_fd, .events = POLLIN },
		{ .fd = w->pidfd, .events = POLLIN },
	};
	struct timespec ts, *tsp;
	uint64_t now;
	int n, ret;

	for (;;) {
		if (done && *done)
			return 0;
		if (w->exited)
			return -ESRCH;
		if (w->hangup_err)
			return w->hangup_err;
		tsp = NULL;
		if (deadline) {
			now = now_ns();
			if (now >= deadline)
				return done ? -ETIMEDOUT : 0;
			ts.tv_sec = (deadline - now) / NSEC_PER_SEC;
			ts.tv_nsec = (deadline - now) % NSEC_PER_SEC;
			tsp = &ts;
		}
		n = ppoll(pfd, 2, tsp, NULL);
		if (n < 0 && errno == EINTR)
			continue;	/* io_uring task work can do this */
		if (n < 0)
			return -errno;
		if (pfd[0].revents) {
			ret = ipcsock_loop_dispatch(h->loop, 0);
			if (ret < 0 && ret != -EINTR)
				return ret;
		}
		if (pfd[1].revents && !w->exited) {
			w->exit_ns = now_ns();
			w->exited = true;
		}
	}
}

static int send_msg(struct worker *w, const struct ipa_msg *m)
{
	struct ipcsock_payload p = {
		.data = m->data,
		.len = m->len,
		.fds = m->fds,
		.nr_fds = m->nr_fds,
	};

	return m->err ? m->err : ipcsock_send(w->sock, &p);
}

/*
 * A synchronous call: send @m, wait up to CALL_TIMEOUT_MS for the reply
 * with its cookie, and give a reader of the reply's body in @r.
 */
static int call(struct handler *h, struct worker *w, const struct ipa_msg *m,
		struct ipa_reader *r)
{
	struct ipa_hdr hdr;
	int ret;

	memcpy(&hdr, m->data, sizeof(hdr));
	w->cmd = hdr.cmd;
	w->cookie = hdr.cookie;
	w->answered = false;
	ret = send_msg(w, m);
	if (ret)
		return ret;
	ret = wait_for(h, w, &w->answered,
		       now_ns() + CALL_TIMEOUT_MS * NSEC_PER_MSEC);
	if (ret)
		return ret;
	ipa_reader_init(r, w->reply, w->reply_len, NULL, 0);
	return 0;
}

/*
 * Cookies start at 1: events carry cookie 0, and libcamera's proxy, whose
 * first call has cookie 0, would take an event that comes during that
 * call for its reply.
 */
static uint32_t cookie(struct worker *w)
{
	return ++w->next_cookie;
}

/*
 * fork+exec `vimc_ipa_proxy <ipa module> <fd>` with the channel's other
 * end. The pidfd comes from pidfd_open() right after fork: the child
 * cannot be reaped, and its pid reused, before we wait for it.
 */
static int worker_start(struct handler *h, struct worker *w)
{
	IPCSOCK_OPTS(opts, .wire = IPCSOCK_WIRE_LIBCAMERA);
	char fd_arg[16];
	char *argv[4] = { (char *)h->worker_path, (char *)h->ipa_path,
			  fd_arg, NULL };
	int fd;

	memset(w, 0, sizeof(*w));
	w->pidfd = -1;
	w->sock = ipcsock_new_opts(h->loop, &opts);
	if (!w->sock)
		return -errno;
	ipcsock_set_ready_read(w->sock, on_ready_read, w);
	ipcsock_set_hangup(w->sock, on_hangup, w);
	fd = ipcsock_create(w->sock);
	if (fd < 0)
		return fd;
	snprintf(fd_arg, sizeof(fd_arg), "%d", fd);
	w->pid = spawn_with_fd(h->worker_path, argv, fd);
	close(fd);
	if (w->pid < 0) {
		w->pid = 0;
		return -EAGAIN;
	}
	w->pidfd = pidfd_open(w->pid, 0);
	if (w->pidfd < 0) {
		fd = -errno;
		kill(w->pid, SIGKILL);
		waitpid(w->pid, NULL, 0);
		w->pid = 0;
		return fd;
	}
	return 0;
}

/* Watch only the pidfd for up to @ms: has the worker exited? */
static bool worker_exited(struct worker *w, unsigned int ms)
{
	struct pollfd pfd = { .fd = w->pidfd, .events = POLLIN };
	int n;

	if (w->exited)
		return true;
	do
		n = poll(&pfd, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		w->exit_ns = now_ns();
		w->exited = true;
	}
	return w->exited;
}

/* Wait for the worker's end, up to @ms; kill it if it is still there. */
static void worker_reap(struct worker *w, unsigned int ms)
{
	siginfo_t info = { 0 };

	if (!w->pid)
		return;
	if (!worker_exited(w, ms))
		kill(w->pid, SIGKILL);
	if (waitid(P_PIDFD, w->pidfd, &info, WEXITED) == 0)
		w->status = info.si_code == CLD_EXITED ? info.si_status :
							 -info.si_status;
	w->pid = 0;
}

static void worker_free(struct worker *w)
{
	worker_reap(w, 0);
	if (w->pidfd >= 0)
		close(w->pidfd);
	ipcsock_free(w->sock);
	w->sock = NULL;
}

static int do_init(struct handler *h, struct worker *w, const char *config,
		   int32_t *ret, uint32_t *flags)
{
	struct vimc_settings s = {
		.configuration_file = config,
		.sensor_model = "sensor",
	};
	struct ipa_reader r;
	struct ipa_msg m;
	int err;

	vimc_init_msg(&m, cookie(w), &s, VIMC_OP_INIT, VIMC_FLAG2);
	err = call(h, w, &m, &r);
	return err ? err : vimc_init_reply(&r, ret, flags);
}

static int do_start(struct handler *h, struct worker *w, int32_t *ret)
{
	struct ipa_reader r;
	struct ipa_msg m;
	int err;

	vimc_start_msg(&m, cookie(w));
	err = call(h, w, &m, &r);
	return err ? err : vimc_start_reply(&r, ret);
}

static int do_stop(struct handler *h, struct worker *w)
{
	struct ipa_reader r;
	struct ipa_msg m;
	int err;

	vimc_stop_msg(&m, cookie(w));
	err = call(h, w, &m, &r);
	return err ? err : vimc_empty_reply(&r);
}

/* mapBuffers() is synchronous: with no buffers, a barrier. */
static int do_map_buffers(struct handler *h, struct worker *w,
			  const struct vimc_buffer *bufs, unsigned int nr)
{
	struct ipa_reader r;
	struct ipa_msg m;
	int err;

	vimc_map_buffers_msg(&m, cookie(w), bufs, nr);
	err = call(h, w, &m, &r);
	return err ? err : vimc_empty_reply(&r);
}

static int send_fill(struct worker *w, uint32_t frame, uint32_t buffer)
{
	struct ipa_msg m;

	vimc_fill_params_buffer_msg(&m, cookie(w), frame, buffer);
	return send_msg(w, &m);
}

/* fillParamsBuffer, then wait for its paramsBufferReady; its latency. */
static int fill_and_wait(struct handler *h, struct worker *w, uint32_t frame,
			 uint64_t *lat_ns)
{
	unsigned int events = w->events;
	uint64_t t0 = now_ns();
	int ret;

	w->event_seen = false;
	ret = send_fill(w, frame, PARAMS_BUF_ID);
	if (!ret)
		ret = wait_for(h, w, &w->event_seen,
			       t0 + CALL_TIMEOUT_MS * NSEC_PER_MSEC);
	if (ret)
		return ret;
	*lat_ns = w->event_ns - t0;
	if (w->events != events + 1 || w->event_buffer != PARAMS_BUF_ID ||
	    w->event_cookie != 0)
		return -EBADMSG;
	return 0;
}

/*
 * fillParamsBuffer at FPS for --duration, each answered by its event;
 * with --kill-after, SIGKILL the worker on the way, between two frames:
 * the run then ends in the error that noticed it.
 */
static int run_frames(struct handler *h, struct worker *w)
{
	unsigned int n = h->duration_s * FPS, done = 0, late = 0, i;
	uint64_t period = NSEC_PER_SEC / FPS, start;
	uint64_t *lat = calloc(n ? n : 1, sizeof(*lat));
	int ret = 0;

	if (!lat)
		return -ENOMEM;
	start = now_ns();
	for (i = 0; i < n; i++) {
		ret = wait_for(h, w, NULL, start + i * period);
		if (!ret)
			ret = fill_and_wait(h, w, i + 2, &lat[done]);
		if (ret)
			break;
		if (now_ns() > start + (i + 1) * period)
			late++;
		done++;
		if (h->kill_after_ms && !h->kill_ns &&
		    now_ns() - start >= h->kill_after_ms * NSEC_PER_MSEC) {
			h->kill_ns = now_ns();
			kill(w->pid, SIGKILL);
		}
	}
	h->noticed_ns = now_ns();
	if (done) {
		sort_ns(lat, done);
		printf("  fillParamsBuffer at %u fps: %u calls answered by paramsBufferReady, %u late (after their %.2f ms slot)\n",
		       FPS, done, late, 1000.0 / FPS);
		printf("  call to event latency: p50 %.1f us, p99 %.1f us, max %.1f us\n",
		       pct_us(lat, done, 50), pct_us(lat, done, 99),
		       (double)lat[done - 1] / NSEC_PER_USEC);
	}
	free(lat);
	if (!h->kill_ns)
		check(h, !ret && done == n, "every call answered by its event");
	return ret;
}

/*
 * After --kill-after: the run must have ended soon after the kill, because
 * the pidfd said the worker was gone (or a send was refused). Then what
 * the channel says: a datagram pair has no end of file, a send is refused.
 */
static void report_kill(struct handler *h, struct worker *w, int ret)
{
	uint64_t deadline;
	int err;

	if (!h->kill_ns || !ret) {
		printf("  the kill was not noticed\n");
		check(h, false, "the kill noticed");
		return;
	}
	printf("  worker SIGKILLed %u ms into the run: %s %.3f ms later (libcamera waits for its %d ms call timeout)\n",
	       h->kill_after_ms,
	       ret == -ESRCH ? "its pidfd was readable" : "a send failed",
	       (double)(h->noticed_ns - h->kill_ns) / NSEC_PER_MSEC,
	       CALL_TIMEOUT_MS);
	check(h, h->noticed_ns - h->kill_ns <
		 CALL_TIMEOUT_MS * NSEC_PER_MSEC / 10,
	      "the kill noticed within a tenth of libcamera's call timeout");

	err = send_fill(w, 0, PARAMS_BUF_ID);
	deadline = now_ns() + 100 * NSEC_PER_MSEC;
	while (!w->hangup_err && now_ns() < deadline)
		ipcsock_loop_dispatch(h->loop, 10);
	printf("  the channel: the next send gave %s, then %s%s\n",
	       err ? strerror(-err) : "0 (queued)",
	       w->hangup_err ? "hangup " : "no hangup within 100 ms",
	       w->hangup_err ? strerror(-w->hangup_err) : "");
	worker_reap(w, 0);
	check(h, w->status == -SIGKILL, "the worker died of SIGKILL");
}

/* The worker's log level: keep its INFO lines out of the output. */
static void quiet_worker_log(void)
{
	setenv("LIBCAMERA_LOG_LEVELS", "*:ERROR", 0);
}

static int run_main_worker(struct handler *h)
{
	struct vimc_plane plane = { .fd = h->buf_fd, .length = PARAMS_BUF_SIZE };
	struct vimc_buffer buf = {
		.id = PARAMS_BUF_ID, .planes = &plane, .nr_planes = 1,
	};
	struct worker w;
	uint64_t lat = 0, t0;
	uint32_t flags = 0;
	int32_t ret = 0;
	int err;

	err = worker_start(h, &w);
	if (err) {
		printf("  cannot start the worker: %s\n", strerror(-err));
		worker_free(&w);
		return err;
	}
	printf("  worker %s (pid %d), module %s\n", h->worker_path, w.pid,
	       h->ipa_path);

	err = do_init(h, &w, "/nonexistent/vimc.conf", &ret, &flags);
	printf("  init(missing configuration file): ret %d, outFlags 0x%x\n",
	       ret, flags);
	check(h, !err && ret == -EINVAL, "init with a missing file gives -EINVAL");

	err = err ? err : do_init(h, &w, h->config_path, &ret, &flags);
	printf("  init(%s, IPAOperationInit, Flag2): ret %d, outFlags 0x%x\n",
	       h->config_path, ret, flags);
	check(h, !err && !ret && flags == VIMC_FLAG1,
	      "init gives 0 and Flag1");

	err = err ? err : do_start(h, &w, &ret);
	printf("  start: ret %d\n", ret);
	check(h, !err && !ret, "start gives 0");

	/* Unmapped: the IPA logs an error and sends nothing. */
	err = err ? err : send_fill(&w, 1, PARAMS_BUF_ID);
	err = err ? err : do_map_buffers(h, &w, NULL, 0);
	printf("  fillParamsBuffer before mapBuffers: %u events\n", w.events);
	check(h, !err && !w.events, "no event for an unmapped buffer");

	err = err ? err : do_map_buffers(h, &w, &buf, 1);
	printf("  mapBuffers(id %u, a %u-byte memfd): %s\n", PARAMS_BUF_ID,
	       PARAMS_BUF_SIZE, err ? strerror(-err) : "done");

	err = err ? err : fill_and_wait(h, &w, 1, &lat);
	printf("  fillParamsBuffer(1, %u): paramsBufferReady(%u, 0x%x), cookie %u, after %.1f us\n",
	       PARAMS_BUF_ID, w.event_buffer, w.event_flags, w.event_cookie,
	       (double)lat / NSEC_PER_USEC);
	check(h, !err, "paramsBufferReady answers fillParamsBuffer");

	if (!err && h->kill_after_ms) {
		report_kill(h, &w, run_frames(h, &w));
		worker_free(&w);
		return 0;
	}
	err = err ? err : run_frames(h, &w);

	err = err ? err : do_stop(h, &w);
	printf("  stop: %s\n", err ? strerror(-err) : "done");

	if (!err) {
		struct ipa_msg m;

		vimc_exit_msg(&m, cookie(&w));
		t0 = now_ns();
		err = send_msg(&w, &m);
		worker_reap(&w, CALL_TIMEOUT_MS);
		printf("  Exit: the worker exited with status %d, %.3f ms after the command\n",
		       w.status, (double)(w.exit_ns - t0) / NSEC_PER_MSEC);
		check(h, !err && w.exited && w.status == 0,
		      "the worker exits with status 0 on Exit");
	}
	if (w.bad_messages)
		printf("  %u unexpected messages\n", w.bad_messages);
	check(h, !w.bad_messages, "no unexpected message");
	worker_free(&w);
	return err;
}

/* A process's state letter from /proc/PID/stat (S: asleep), or '?'. */
static char proc_state(pid_t pid)
{
	char path[32], buf[256], *p = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			p = strrchr(buf, ')');
		fclose(f);
	}
	return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

/*
 * A worker whose channel closes without Exit: its socket is a datagram
 * one, which has no end of file, so it keeps waiting for messages that
 * will never come. Shown, then killed.
 */
static int run_orphan(struct handler *h)
{
	struct worker w;
	uint32_t flags;
	int32_t ret;
	int err;

	err = worker_start(h, &w);
	err = err ? err : do_init(h, &w, h->config_path, &ret, &flags);
	if (err) {
		check(h, false, "a second worker starts");
		worker_free(&w);
		return err;
	}
	ipcsock_close(w.sock);
	if (worker_exited(&w, h->orphan_wait_ms))
		printf("  without Exit: a second worker whose channel was closed exited\n");
	else
		printf("  without Exit: a second worker whose channel was closed is still there %u ms later, state %c (an orphan once this process exits); killed\n",
		       h->orphan_wait_ms, proc_state(w.pid));
	check(h, !w.exited, "a worker without Exit stays behind");
	worker_free(&w);
	return 0;
}

static int bad_args(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--duration S] [--kill-after MS] [--orphan-wait MS]\n"
		"       [--worker PATH] [--ipa PATH] [--config PATH]\n",
		prog);
	return 2;
}

static int parse_args(struct handler *h, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val)
			return bad_args(argv[0]);
		if (!strcmp(opt, "--duration"))
			h->duration_s = atof(val);
		else if (!strcmp(opt, "--kill-after"))
			h->kill_after_ms = atoi(val);
		else if (!strcmp(opt, "--orphan-wait"))
			h->orphan_wait_ms = atoi(val);
		else if (!strcmp(opt, "--worker"))
			h->worker_path = val;
		else if (!strcmp(opt, "--ipa"))
			h->ipa_path = val;
		else if (!strcmp(opt, "--config"))
			h->config_path = val;
		else
			return bad_args(argv[0]);
		i++;
	}
	if (h->duration_s <= 0 || h->duration_s > 3600)
		return bad_args(argv[0]);
	if (h->kill_after_ms >= h->duration_s * 1000) {
		fprintf(stderr, "%s: --kill-after must come before the end of --duration\n",
			argv[0]);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct handler h = {
		.duration_s = 2,
		.orphan_wait_ms = 1000,
		.worker_path = LIBCAMERA_LIBDIR "/libcamera/vimc_ipa_proxy",
		.ipa_path = LIBCAMERA_LIBDIR "/libcamera/ipa_vimc.so",
		.config_path = LIBCAMERA_PREFIX "/share/libcamera/ipa/vimc/vimc.conf",
		.buf_fd = -1,
	};
	int err;

	err = parse_args(&h, argc, argv);
	if (err)
		return err;
	/* Our lines and the worker's log, in the order they happen. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("vimc-pipeline: libcamera %s's vimc IPA over libipcsock in libcamera wire mode\n",
	       LIBCAMERA_VERSION[0] ? LIBCAMERA_VERSION : "(none)");
	if (strcmp(LIBCAMERA_VERSION, "0.0.3") ||
	    access(h.worker_path, X_OK) || access(h.ipa_path, R_OK)) {
		printf("  skipped: this speaks libcamera 0.0.3's vimc protocol; no such worker (%s)\n",
		       h.worker_path);
		return KSFT_SKIP;
	}
	/* A dead worker's channel must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	quiet_worker_log();

	h.loop = ipcsock_loop_new(NULL);
	if (!h.loop) {
		perror("ipcsock_loop_new");
		return 1;
	}
	h.loop_fd = ipcsock_loop_fd(h.loop);
	h.buf_fd = memfd_create("vimc-params", MFD_CLOEXEC);
	if (h.loop_fd < 0 || h.buf_fd < 0 ||
	    ftruncate(h.buf_fd, PARAMS_BUF_SIZE)) {
		perror("vimc-pipeline: setup");
		return 1;
	}
	printf("  backend: %s\n",
	       ipcsock_loop_backend(h.loop) == IPCSOCK_BACKEND_URING ?
	       "io_uring" : "epoll");

	err = run_main_worker(&h);
	if (!err && !h.kill_after_ms && h.orphan_wait_ms)
		err = run_orphan(&h);
	if (err)
		check(&h, false, strerror(-err));

	close(h.buf_fd);
	ipcsock_loop_free(h.loop);
	printf("vimc-pipeline: %s\n", h.failed ? "FAILED" : "ok");
	return h.failed ? 1 : 0;
}
