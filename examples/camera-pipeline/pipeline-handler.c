// SPDX-License-Identifier: MIT
/*
 * pipeline-handler - the camera-pipeline example: libipcsock's main use.
 *
 * A camera "pipeline handler" starts its image processing algorithm (IPA)
 * as an isolated worker process (fork+exec of ipa-worker, the channel's
 * remote fd on argv), hands it its buffers as memfds in one message at
 * setup, as libcamera's mapBuffers() does, and then for every frame at
 * 240 fps makes two calls:
 *
 *   FILL_PARAMS    the worker writes the frame's ISP parameters into a
 *                  params buffer
 *   PROCESS_STATS  the worker reads the frame's statistics buffer and
 *                  answers with the frame's metadata
 *
 * The calls go through a small request/reply layer on top of the library
 * (struct ipa_proxy below): a command id and a cookie in every message,
 * and a synchronous call with a timeout built on ipcsock_loop_dispatch().
 * It prints the per-frame IPC time (both calls: four messages) as
 * percentiles and counts the frames that were late or dropped.
 *
 * A crashed worker must be noticed at once, not after a call timeout:
 * with --kill-worker-after N the handler SIGKILLs the worker just before
 * the calls of frame N and checks that the hangup callback ends the
 * pipeline well within the call timeout.
 *
 * Exit status: 0 when every frame's results were right (and, with
 * --kill-worker-after, the crash was reported promptly), 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcsock.h>

#include "ipa-protocol.h"

#define NSEC_PER_SEC	1000000000ull
#define NSEC_PER_MSEC	1000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/*
 * The request/reply layer: the handler's side of the channel to the
 * worker. One call is in flight at a time; a reply whose cookie is not the
 * current call's (the answer to a call that timed out) is dropped.
 */
struct ipa_proxy {
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	pid_t pid;
	uint32_t next_cookie;

	/* The call in flight. */
	uint32_t cookie;
	uint16_t cmd;
	void *reply;
	size_t reply_size;
	size_t reply_len;
	int reply_status;
	bool answered;

	/* The worker's end is gone: when, and how (hangup's err). */
	bool dead;
	int dead_err;
	uint64_t dead_ns;

	unsigned int stale_replies;
	unsigned int bad_messages;
};

static void ipa_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct ipa_proxy *ipa = arg;
	struct ipcsock_payload msg;
	struct ipa_hdr hdr;
	size_t len;
	unsigned int i;

	while (!ipcsock_receive(sock, &msg)) {
		/* Nothing the worker sends carries fds. */
		for (i = 0; i < msg.nr_fds; i++)
			close(msg.fds[i]);
		if (msg.len < sizeof(hdr) || msg.nr_fds) {
			ipa->bad_messages++;
			continue;
		}
		memcpy(&hdr, msg.data, sizeof(hdr));
		if (hdr.cmd != (ipa->cmd | IPA_REPLY) ||
		    hdr.cookie != ipa->cookie || ipa->answered) {
			ipa->stale_replies++;
			continue;
		}
		/* The caller checks the length: it may not be what it asked. */
		ipa->reply_len = msg.len - sizeof(hdr);
		len = ipa->reply_len;
		if (len > ipa->reply_size)
			len = ipa->reply_size;
		if (len)
			memcpy(ipa->reply, (char *)msg.data + sizeof(hdr), len);
		ipa->reply_status = hdr.status;
		ipa->answered = true;
	}
}

static void ipa_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct ipa_proxy *ipa = arg;

	(void)sock;
	ipa->dead = true;
	ipa->dead_err = err;
	ipa->dead_ns = now_ns();
}

/*
 * Call the worker: send @cmd with @args (and @fds), wait up to @timeout_ms
 * for the reply, copy its body to @reply. Returns the body's length,
 * the worker's negative status, -ETIMEDOUT, or -EPIPE once the worker is
 * gone - as soon as the hangup is seen, whatever the timeout. Not from
 * inside a callback: it runs dispatch itself.
 */
static int ipa_call(struct ipa_proxy *ipa, uint16_t cmd, const void *args,
		    size_t args_len, const int *fds, unsigned int nr_fds,
		    void *reply, size_t reply_size, int timeout_ms)
{
	unsigned char buf[IPA_MAX_MSG];
	struct ipa_hdr hdr = { .cmd = cmd, .cookie = ++ipa->next_cookie };
	struct ipcsock_payload msg = {
		.data = buf,
		.len = sizeof(hdr) + args_len,
		.fds = (int *)fds,
		.nr_fds = nr_fds,
	};
	uint64_t deadline, now;
	int ret;

	if (ipa->dead)
		return -EPIPE;
	if (msg.len > sizeof(buf))
		return -EMSGSIZE;
	memcpy(buf, &hdr, sizeof(hdr));
	if (args_len)
		memcpy(buf + sizeof(hdr), args, args_len);

	ipa->cmd = cmd;
	ipa->cookie = hdr.cookie;
	ipa->reply = reply;
	ipa->reply_size = reply_size;
	ipa->reply_len = 0;
	ipa->answered = false;
	/* Goes out before send returns: we are not inside dispatch. */
	ret = ipcsock_send(ipa->sock, &msg);
	if (ret)
		return ret;

	deadline = now_ns() + timeout_ms * NSEC_PER_MSEC;
	while (!ipa->answered && !ipa->dead) {
		now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* Round up: a 0 ms timeout would not wait at all. */
		ret = ipcsock_loop_dispatch(ipa->loop,
					    (deadline - now + NSEC_PER_MSEC - 1) /
					    NSEC_PER_MSEC);
		if (ret < 0)
			return ret;
	}
	if (!ipa->answered)
		return -EPIPE;
	return ipa->reply_status ? ipa->reply_status : (int)ipa->reply_len;
}

/* Run the loop until @t, so that a hangup is seen between frames too. */
static void ipa_idle_until(struct ipa_proxy *ipa, uint64_t t)
{
	struct timespec ts;
	uint64_t now;

	while (!ipa->dead && (now = now_ns()) < t) {
		if (t - now >= NSEC_PER_MSEC) {
			ipcsock_loop_dispatch(ipa->loop,
					      (t - now) / NSEC_PER_MSEC);
			continue;
		}
		/* The last fraction of a millisecond: sleep it off. */
		ts.tv_sec = t / NSEC_PER_SEC;
		ts.tv_nsec = t % NSEC_PER_SEC;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

/*
 * fork+exec the worker with its end of a new channel on argv. Only that
 * fd crosses exec: everything else this process has open is marked
 * close-on-exec first.
 */
static int ipa_spawn(struct ipa_proxy *ipa, const char *path)
{
	char name[] = "ipa-worker", fd_arg[16];
	char *argv[3] = { name, fd_arg, NULL };
	int fd;

	fd = ipcsock_create(ipa->sock);
	if (fd < 0)
		return fd;
	snprintf(fd_arg, sizeof(fd_arg), "%d", fd);
	ipa->pid = fork();
	if (ipa->pid < 0) {
		ipa->pid = 0;
		close(fd);
		return -EAGAIN;
	}
	if (!ipa->pid) {
		/* Between fork and exec: system calls only. */
		if (fd > 3)
			close_range(3, fd - 1, CLOSE_RANGE_CLOEXEC);
		close_range(fd + 1, ~0u, CLOSE_RANGE_CLOEXEC);
		if (fcntl(fd, F_SETFD, 0) == 0)
			execv(path, argv);
		_exit(127);
	}
	close(fd);
	ipcsock_set_ready_read(ipa->sock, ipa_on_ready_read, ipa);
	ipcsock_set_hangup(ipa->sock, ipa_on_hangup, ipa);
	return 0;
}

/* Reap the worker, waiting up to @ms; kill it if it will not go. */
static int ipa_reap(struct ipa_proxy *ipa, int ms)
{
	struct timespec ts = { .tv_nsec = NSEC_PER_MSEC };
	int status = 0;
	pid_t ret;

	if (!ipa->pid)
		return 0;
	while ((ret = waitpid(ipa->pid, &status, WNOHANG)) == 0 && ms-- > 0)
		nanosleep(&ts, NULL);
	if (ret == 0) {
		kill(ipa->pid, SIGKILL);
		waitpid(ipa->pid, &status, 0);
	}
	ipa->pid = 0;
	return status;
}

/* The pipeline: options, buffers, results. */
struct pipeline {
	/* Options. */
	unsigned int fps;
	double duration_s;
	int timeout_ms;
	unsigned int kill_after;	/* 0: never */
	unsigned int busy_poll_us;
	double max_late_pct;
	const char *worker;

	struct ipa_proxy ipa;
	int buf_fd[IPA_NR_BUFS];
	void *buf_mem[IPA_NR_BUFS];
	uint32_t buf_size[IPA_NR_BUFS];

	unsigned int nr_frames;
	uint64_t *frame_ns;		/* IPC time of each frame done */
	unsigned int done;
	unsigned int late;
	unsigned int dropped;
	uint64_t map_ns;
	uint64_t kill_ns;		/* when the worker was killed */
	unsigned int kill_frame;	/* and before which frame */
	int kill_call_ret;		/* what the call after the kill gave */
	uint64_t kill_call_ns;		/* and when it returned */
};

/* memfds with a fixed size: the worker maps them without fear of SIGBUS. */
static int create_buffers(struct pipeline *pl)
{
	unsigned int i;
	char name[32];

	for (i = 0; i < IPA_NR_BUFS; i++) {
		pl->buf_size[i] = i < IPA_NR_PARAMS_BUFS ? IPA_PARAMS_BUF_SIZE :
							  IPA_STATS_BUF_SIZE;
		snprintf(name, sizeof(name), "ipa-%s-%u",
			 i < IPA_NR_PARAMS_BUFS ? "params" : "stats", i);
		pl->buf_fd[i] = memfd_create(name, MFD_CLOEXEC |
						   MFD_ALLOW_SEALING);
		if (pl->buf_fd[i] < 0)
			return -errno;
		if (ftruncate(pl->buf_fd[i], pl->buf_size[i]) ||
		    fcntl(pl->buf_fd[i], F_ADD_SEALS,
			  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
			return -errno;
		pl->buf_mem[i] = mmap(NULL, pl->buf_size[i],
				      PROT_READ | PROT_WRITE, MAP_SHARED,
				      pl->buf_fd[i], 0);
		if (pl->buf_mem[i] == MAP_FAILED) {
			pl->buf_mem[i] = NULL;
			return -errno;
		}
	}
	return 0;
}

static void free_buffers(struct pipeline *pl)
{
	unsigned int i;

	for (i = 0; i < IPA_NR_BUFS; i++) {
		if (pl->buf_mem[i])
			munmap(pl->buf_mem[i], pl->buf_size[i]);
		if (pl->buf_fd[i] >= 0)
			close(pl->buf_fd[i]);
	}
}

/* mapBuffers: every buffer in one message. */
static int map_buffers(struct pipeline *pl)
{
	struct ipa_map_buffers mb = { .nr_bufs = IPA_NR_BUFS };
	uint64_t t = now_ns();
	unsigned int i;
	int ret;

	for (i = 0; i < IPA_NR_BUFS; i++)
		mb.size[i] = pl->buf_size[i];
	ret = ipa_call(&pl->ipa, IPA_CMD_MAP_BUFFERS, &mb, sizeof(mb),
		       pl->buf_fd, IPA_NR_BUFS, NULL, 0, pl->timeout_ms);
	pl->map_ns = now_ns() - t;
	return ret < 0 ? ret : 0;
}

/* The ISP's statistics for a frame; returns the histogram's sum. */
static uint64_t fake_isp_stats(struct pipeline *pl, unsigned int buf,
			       uint32_t frame)
{
	uint32_t *hist = pl->buf_mem[buf];
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < IPA_HIST_BINS; i++) {
		hist[i] = (frame * 7 + i * 13) & 0x7ff;
		sum += hist[i];
	}
	return sum;
}

static const char *cmd_name(uint16_t cmd)
{
	switch (cmd) {
	case IPA_CMD_FILL_PARAMS:
		return "FILL_PARAMS";
	case IPA_CMD_PROCESS_STATS:
		return "PROCESS_STATS";
	default:
		return "?";
	}
}

/*
 * One frame: FILL_PARAMS, the ISP (here: writing the statistics), then
 * PROCESS_STATS and its metadata. *ipc_ns gets the time spent in the two
 * calls. 0, or a negative errno with a message printed.
 */
static int run_frame(struct pipeline *pl, uint32_t frame, uint64_t *ipc_ns)
{
	unsigned int pbuf = frame % IPA_NR_PARAMS_BUFS;
	unsigned int sbuf = IPA_NR_PARAMS_BUFS + frame % IPA_NR_STATS_BUFS;
	struct ipa_fill_params fp = { .frame = frame, .buf = pbuf };
	struct ipa_process_stats ps = {
		.frame = frame,
		.buf = sbuf,
		.nr_ctrls = IPA_NR_SENSOR_CTRLS,
	};
	const struct ipa_isp_params *params = pl->buf_mem[pbuf];
	uint16_t cmd = IPA_CMD_FILL_PARAMS;
	struct ipa_params_done done;
	struct ipa_metadata md;
	uint64_t t, hist_sum;
	unsigned int i;
	int ret;

	t = now_ns();
	ret = ipa_call(&pl->ipa, cmd, &fp, sizeof(fp), NULL, 0,
		       &done, sizeof(done), pl->timeout_ms);
	if (ret < 0)
		goto fail;
	*ipc_ns = now_ns() - t;
	if (ret != sizeof(done) || done.frame != frame ||
	    done.bytes_used != sizeof(*params) || params->frame != frame ||
	    done.checksum != ipa_checksum(params, sizeof(*params))) {
		fprintf(stderr, "frame %u: wrong params\n", frame);
		return -EPROTO;
	}

	/* The ISP processes the frame: here, it writes the statistics. */
	hist_sum = fake_isp_stats(pl, sbuf, frame);
	ps.timestamp_ns = now_ns();
	for (i = 0; i < IPA_NR_SENSOR_CTRLS; i++) {
		ps.ctrls[i][0] = i;
		ps.ctrls[i][1] = frame + i;
	}

	cmd = IPA_CMD_PROCESS_STATS;
	t = now_ns();
	ret = ipa_call(&pl->ipa, cmd, &ps, sizeof(ps), NULL, 0,
		       &md, sizeof(md), pl->timeout_ms);
	if (ret < 0)
		goto fail;
	*ipc_ns += now_ns() - t;
	if (ret != sizeof(md) || md.frame != frame ||
	    md.nr_entries != IPA_NR_METADATA ||
	    md.entries[1].id != IPA_MD_HIST_SUM ||
	    md.entries[1].value != hist_sum) {
		fprintf(stderr, "frame %u: wrong metadata\n", frame);
		return -EPROTO;
	}
	return 0;
fail:
	if (ret == -EPIPE && pl->kill_ns)
		return ret;	/* expected; the caller reports it */
	fprintf(stderr, "frame %u: %s: %s\n", frame, cmd_name(cmd),
		ret == -EPIPE ? "the worker is gone" : strerror(-ret));
	return ret;
}

/*
 * The frame loop. Frame n arrives at start + n * period; a frame whose
 * slot has passed before the pipeline could start it is dropped, one that
 * finishes after its slot is late.
 */
static int run_pipeline(struct pipeline *pl)
{
	uint64_t period = NSEC_PER_SEC / pl->fps;
	uint64_t start, due, now, ipc_ns;
	unsigned int frame = 0, skip;
	int ret;

	start = now_ns() + period;
	while (frame < pl->nr_frames) {
		due = start + frame * period;
		ipa_idle_until(&pl->ipa, due);
		if (pl->ipa.dead)
			return -EPIPE;
		now = now_ns();
		if (now >= due + period) {
			skip = (now - due) / period;
			if (skip > pl->nr_frames - frame)
				skip = pl->nr_frames - frame;
			pl->dropped += skip;
			frame += skip;
			continue;
		}
		/* ">=": frame kill_after itself may have been dropped. */
		if (pl->kill_after && frame >= pl->kill_after && !pl->kill_ns) {
			kill(pl->ipa.pid, SIGKILL);
			pl->kill_ns = now_ns();
			pl->kill_frame = frame;
		}
		ret = run_frame(pl, frame, &ipc_ns);
		if (ret) {
			if (pl->kill_ns) {
				pl->kill_call_ret = ret;
				pl->kill_call_ns = now_ns();
			}
			return ret;
		}
		pl->frame_ns[pl->done++] = ipc_ns;
		if (now_ns() > due + period)
			pl->late++;
		frame++;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted @v. */
static double pct_us(const uint64_t *v, unsigned int n, unsigned int pct)
{
	unsigned int rank = (n * pct + 99) / 100;

	return v[rank ? rank - 1 : 0] / 1000.0;
}

static void report_latency(struct pipeline *pl)
{
	uint64_t *v = pl->frame_ns;
	unsigned int n = pl->done;

	printf("  mapBuffers: %u memfds in one message, answered in %.1f ms (the first call: includes the worker's start-up)\n",
	       IPA_NR_BUFS, pl->map_ns / 1e6);
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("  per-frame IPC time (FILL_PARAMS + PROCESS_STATS round trips, 4 messages of %zu-%zu B):\n",
	       sizeof(struct ipa_hdr) + sizeof(struct ipa_fill_params),
	       sizeof(struct ipa_hdr) + sizeof(struct ipa_metadata));
	printf("  %10s %10s %10s %10s\n", "p50", "p90", "p99", "max");
	printf("  %7.1f us %7.1f us %7.1f us %7.1f us\n", pct_us(v, n, 50),
	       pct_us(v, n, 90), pct_us(v, n, 99), v[n - 1] / 1000.0);
	printf("  frames: %u done, %u late (finished after their %.2f ms slot), %u dropped\n",
	       n, pl->late, 1000.0 / pl->fps, pl->dropped);
}

/* With --kill-worker-after: was the crash seen at once? */
static bool report_kill(struct pipeline *pl, int status)
{
	struct ipa_proxy *ipa = &pl->ipa;
	uint64_t limit_ns = pl->timeout_ms * NSEC_PER_MSEC / 10;
	bool ok = true;

	if (!pl->kill_ns) {
		printf("  FAIL: the run ended before frame %u: the worker was never killed\n",
		       pl->kill_after);
		return false;
	}
	if (!ipa->dead) {
		printf("  FAIL: worker killed, but no hangup was reported\n");
		return false;
	}
	printf("  worker killed (SIGKILL) before frame %u: hangup reported after %.3f ms (err %d)\n",
	       pl->kill_frame, (ipa->dead_ns - pl->kill_ns) / 1e6,
	       ipa->dead_err);
	if (pl->kill_call_ns)
		printf("  the call in flight failed with %s after %.3f ms (call timeout %d ms)\n",
		       pl->kill_call_ret == -EPIPE ? "EPIPE (worker gone)" :
		       strerror(-pl->kill_call_ret),
		       (pl->kill_call_ns - pl->kill_ns) / 1e6, pl->timeout_ms);
	if (pl->kill_call_ns && pl->kill_call_ret != -EPIPE) {
		printf("  FAIL: the call should have failed through the hangup\n");
		ok = false;
	}
	if (ipa->dead_ns - pl->kill_ns > limit_ns) {
		printf("  FAIL: the hangup took longer than a tenth of the call timeout\n");
		ok = false;
	}
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		printf("  FAIL: the worker was not killed by SIGKILL (status 0x%x)\n",
		       status);
		ok = false;
	}
	return ok;
}

static void print_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [options]\n"
		"  --fps N                 frame rate (default 240)\n"
		"  --duration SECONDS      how long to stream (default 10)\n"
		"  --timeout-ms MS         call timeout (default 1000)\n"
		"  --kill-worker-after N   SIGKILL the worker before frame N and check\n"
		"                          that the crash is reported at once\n"
		"  --max-late PERCENT      fail if more frames are late or dropped\n"
		"                          (default 1)\n"
		"  --busy-poll US          the loop's busy_poll_us (default 0: off)\n"
		"  --backend NAME          io_uring or epoll (default: auto)\n"
		"  --worker PATH           the IPA worker (default: ipa-worker next to\n"
		"                          this program)\n",
		prog);
}

/* ipa-worker in the directory this program is in. */
static const char *default_worker(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	char *slash;

	if (n <= 0)
		return "ipa-worker";
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (!slash)
		return "ipa-worker";
	n = slash - path;
	if ((size_t)snprintf(slash, sizeof(path) - n, "/ipa-worker") >=
	    sizeof(path) - n)
		return "ipa-worker";
	return path;
}

static int parse_args(struct pipeline *pl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fps", required_argument, NULL, 'f' },
		{ "duration", required_argument, NULL, 'd' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "kill-worker-after", required_argument, NULL, 'k' },
		{ "max-late", required_argument, NULL, 'l' },
		{ "busy-poll", required_argument, NULL, 'b' },
		{ "backend", required_argument, NULL, 'B' },
		{ "worker", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	char *end;
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		errno = 0;
		end = NULL;
		switch (c) {
		case 'f':
		case 't':
		case 'k':
		case 'b':
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 0 || v > INT_MAX ||
			    (c == 'f' && (v < 1 || v > 10000)) ||
			    (c == 't' && v < 1))
				goto bad;
			if (c == 'f')
				pl->fps = v;
			else if (c == 't')
				pl->timeout_ms = v;
			else if (c == 'k')
				pl->kill_after = v;
			else
				pl->busy_poll_us = v;
			break;
		case 'd':
			pl->duration_s = strtod(optarg, &end);
			if (errno || *end || pl->duration_s <= 0 ||
			    pl->duration_s > 3600)
				goto bad;
			break;
		case 'l':
			pl->max_late_pct = strtod(optarg, &end);
			if (errno || *end || pl->max_late_pct < 0)
				goto bad;
			break;
		case 'B':
			if (strcmp(optarg, "epoll") && strcmp(optarg, "io_uring"))
				goto bad;
			/* Chooses for the worker too, which inherits it. */
			setenv("IPCSOCK_BACKEND", optarg, 1);
			break;
		case 'w':
			pl->worker = optarg;
			break;
		default:
			print_usage(argv[0]);
			return -1;
		}
	}
	if (optind != argc) {
		print_usage(argv[0]);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "%s: bad value '%s'\n", argv[0], optarg);
	return -1;
}

int main(int argc, char **argv)
{
	struct pipeline pl = {
		.fps = 240,
		.duration_s = 10,
		.timeout_ms = 1000,
		.max_late_pct = 1,
	};
	IPCSOCK_LOOP_OPTS(opts, .max_msg_size = 4096);
	unsigned int i, missed;
	int ret, status;
	bool ok;

	for (i = 0; i < IPA_NR_BUFS; i++)
		pl.buf_fd[i] = -1;
	if (parse_args(&pl, argc, argv))
		return 2;
	if (!pl.worker)
		pl.worker = default_worker();
	pl.nr_frames = pl.duration_s * pl.fps;
	if (!pl.nr_frames)
		pl.nr_frames = 1;
	pl.frame_ns = calloc(pl.nr_frames, sizeof(*pl.frame_ns));
	opts.busy_poll_us = pl.busy_poll_us;
	pl.ipa.loop = ipcsock_loop_new(&opts);
	if (!pl.frame_ns || !pl.ipa.loop) {
		perror("camera-pipeline: setup");
		return 1;
	}
	pl.ipa.sock = ipcsock_new(pl.ipa.loop);
	if (!pl.ipa.sock) {
		perror("camera-pipeline: ipcsock_new");
		return 1;
	}

	printf("camera-pipeline: %u frames at %u fps (%.1f s), call timeout %d ms, backend %s\n",
	       pl.nr_frames, pl.fps, pl.nr_frames / (double)pl.fps,
	       pl.timeout_ms,
	       ipcsock_loop_backend(pl.ipa.loop) == IPCSOCK_BACKEND_URING ?
	       "io_uring" : "epoll");
	fflush(stdout);

	ret = create_buffers(&pl);
	if (ret) {
		fprintf(stderr, "camera-pipeline: buffers: %s\n", strerror(-ret));
		return 1;
	}
	ret = ipa_spawn(&pl.ipa, pl.worker);
	if (ret) {
		fprintf(stderr, "camera-pipeline: starting %s: %s\n",
			pl.worker, strerror(-ret));
		return 1;
	}
	ret = map_buffers(&pl);
	if (ret)
		fprintf(stderr, "camera-pipeline: mapBuffers: %s\n",
			ret == -EPIPE ? "the worker is gone (could it start?)" :
			strerror(-ret));
	else
		ret = run_pipeline(&pl);

	/* A clean stop: STOP, then close, then the worker exits. */
	if (!ret && ipa_call(&pl.ipa, IPA_CMD_STOP, NULL, 0, NULL, 0, NULL, 0,
			     pl.timeout_ms) < 0)
		ret = -EPIPE;
	ipcsock_free(pl.ipa.sock);
	ipcsock_loop_free(pl.ipa.loop);
	status = ipa_reap(&pl.ipa, 2000);

	report_latency(&pl);
	if (pl.ipa.stale_replies || pl.ipa.bad_messages)
		printf("  %u stale replies, %u malformed messages\n",
		       pl.ipa.stale_replies, pl.ipa.bad_messages);
	if (pl.kill_after) {
		ok = report_kill(&pl, status);
	} else {
		ok = !ret && !pl.ipa.bad_messages;
		if (ret == -EPIPE)
			printf("  FAIL: the worker hung up (err %d)\n",
			       pl.ipa.dead_err);
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("  FAIL: the worker ended with status 0x%x\n",
			       status);
			ok = false;
		}
		missed = pl.late + pl.dropped;
		if (missed > pl.max_late_pct / 100 * pl.nr_frames) {
			printf("  FAIL: %u of %u frames late or dropped (limit %.1f%%)\n",
			       missed, pl.nr_frames, pl.max_late_pct);
			ok = false;
		}
	}
	free_buffers(&pl);
	free(pl.frame_ns);
	printf("camera-pipeline: %s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}
