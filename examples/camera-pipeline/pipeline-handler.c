// SPDX-License-Identifier: MIT
/*
 * pipeline-handler - the camera-pipeline example: a pipeline handler that
 * starts its IPA as an isolated worker process (ipa-worker) and makes two
 * calls to it per frame at 240 fps, reporting the per-frame IPC time and
 * the frames that were late or dropped. See examples/README.md.
 *
 * Usage: pipeline-handler [--duration S] [--max-late PERCENT]
 *                         [--kill-worker-after FRAME]
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcsock.h>

#include "../spawn.h"
#include "../timing.h"
#include "ipa-protocol.h"

#define FPS		240
#define CALL_TIMEOUT_MS	1000

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
 * Call the worker: send @cmd with @args (and @fds), wait up to
 * CALL_TIMEOUT_MS for the reply, copy its body to @reply. Returns the body's length,
 * the worker's negative status, -ETIMEDOUT, or -EPIPE once the worker is
 * gone - as soon as the hangup is seen, whatever the timeout. Not from
 * inside a callback: it runs dispatch itself.
 */
static int ipa_call(struct ipa_proxy *ipa, uint16_t cmd, const void *args,
		    size_t args_len, const int *fds, unsigned int nr_fds,
		    void *reply, size_t reply_size)
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

	deadline = now_ns() + CALL_TIMEOUT_MS * NSEC_PER_MSEC;
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
	ipa->pid = spawn_with_fd(path, argv, fd);
	close(fd);
	if (ipa->pid < 0) {
		ipa->pid = 0;
		return -EAGAIN;
	}
	ipcsock_set_ready_read(ipa->sock, ipa_on_ready_read, ipa);
	ipcsock_set_hangup(ipa->sock, ipa_on_hangup, ipa);
	/*
	 * A worker that dies on io_uring keeps its socket open until the
	 * kernel tears its ring down: the pidfd tells at once. The library
	 * keeps its own duplicate.
	 */
	fd = pidfd_open(ipa->pid, 0);
	if (fd >= 0) {
		ipcsock_watch_pidfd(ipa->sock, fd);
		close(fd);
	}
	return 0;
}

/* Reap the worker; one still there after a second is killed. */
static int ipa_reap(struct ipa_proxy *ipa)
{
	int status = 0, ms;

	for (ms = 0; ms < 1000 && !waitpid(ipa->pid, &status, WNOHANG); ms++)
		usleep(1000);
	if (ms == 1000) {
		kill(ipa->pid, SIGKILL);
		waitpid(ipa->pid, &status, 0);
	}
	return status;
}

/* The pipeline: options, buffers, results. */
struct pipeline {
	/* Options. */
	double duration_s;
	double max_late_pct;
	unsigned int kill_after;	/* 0: never */

	struct ipa_proxy ipa;
	int buf_fd[IPA_NR_BUFS];
	void *buf_mem[IPA_NR_BUFS];
	uint32_t buf_size[IPA_NR_BUFS];

	unsigned int nr_frames;
	uint64_t *frame_ns;		/* IPC time of each frame done */
	unsigned int done;
	unsigned int late;
	unsigned int dropped;
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
	unsigned int i;
	int ret;

	for (i = 0; i < IPA_NR_BUFS; i++)
		mb.size[i] = pl->buf_size[i];
	ret = ipa_call(&pl->ipa, IPA_CMD_MAP_BUFFERS, &mb, sizeof(mb),
		       pl->buf_fd, IPA_NR_BUFS, NULL, 0);
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
		       &done, sizeof(done));
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
		       &md, sizeof(md));
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
	fprintf(stderr, "frame %u: %s: %s\n", frame,
		cmd == IPA_CMD_FILL_PARAMS ? "FILL_PARAMS" : "PROCESS_STATS",
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
	uint64_t period = NSEC_PER_SEC / FPS;
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

static void report_latency(struct pipeline *pl)
{
	uint64_t *v = pl->frame_ns;
	unsigned int n = pl->done;

	if (!n)
		return;
	sort_ns(v, n);
	printf("  per-frame IPC time (FILL_PARAMS + PROCESS_STATS round trips, 4 messages of %zu-%zu B):\n",
	       sizeof(struct ipa_hdr) + sizeof(struct ipa_fill_params),
	       sizeof(struct ipa_hdr) + sizeof(struct ipa_metadata));
	printf("  %10s %10s %10s %10s\n", "p50", "p90", "p99", "max");
	printf("  %7.1f us %7.1f us %7.1f us %7.1f us\n", pct_us(v, n, 50),
	       pct_us(v, n, 90), pct_us(v, n, 99), v[n - 1] / 1000.0);
	printf("  frames: %u done, %u late (finished after their %.2f ms slot), %u dropped\n",
	       n, pl->late, 1000.0 / FPS, pl->dropped);
}

/* With --kill-worker-after: was the crash seen at once? */
static bool report_kill(struct pipeline *pl, int status)
{
	struct ipa_proxy *ipa = &pl->ipa;
	uint64_t limit_ns = CALL_TIMEOUT_MS * NSEC_PER_MSEC / 10;
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
		       (pl->kill_call_ns - pl->kill_ns) / 1e6, CALL_TIMEOUT_MS);
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

/* ipa-worker, in the directory this program is in. */
static const char *worker_path(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path,
			    sizeof(path) - sizeof("ipa-worker"));

	if (n <= 0)
		return "ipa-worker";
	path[n] = '\0';
	memcpy(strrchr(path, '/') + 1, "ipa-worker", sizeof("ipa-worker"));
	return path;
}

static int parse_args(struct pipeline *pl, int argc, char **argv)
{
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--duration"))
			pl->duration_s = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--max-late"))
			pl->max_late_pct = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--kill-worker-after"))
			pl->kill_after = atoi(argv[i + 1]);
		else
			break;
	}
	if (i == argc && pl->duration_s > 0 && pl->duration_s <= 3600 &&
	    pl->max_late_pct >= 0)
		return 0;
	fprintf(stderr, "usage: %s [--duration S] [--max-late PERCENT] [--kill-worker-after FRAME]\n",
		argv[0]);
	return -1;
}

int main(int argc, char **argv)
{
	IPCSOCK_LOOP_OPTS(opts, .max_msg_size = 4096);
	struct pipeline pl = { .duration_s = 10, .max_late_pct = 1 };
	unsigned int i, missed;
	int ret, status;
	bool ok;

	for (i = 0; i < IPA_NR_BUFS; i++)
		pl.buf_fd[i] = -1;
	if (parse_args(&pl, argc, argv))
		return 2;
	pl.nr_frames = pl.duration_s * FPS;
	if (!pl.nr_frames)
		pl.nr_frames = 1;
	pl.frame_ns = calloc(pl.nr_frames, sizeof(*pl.frame_ns));
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
	       pl.nr_frames, FPS, pl.nr_frames / (double)FPS, CALL_TIMEOUT_MS,
	       ipcsock_loop_backend(pl.ipa.loop) == IPCSOCK_BACKEND_URING ?
	       "io_uring" : "epoll");
	fflush(stdout);

	ret = create_buffers(&pl);
	if (ret) {
		fprintf(stderr, "camera-pipeline: buffers: %s\n", strerror(-ret));
		return 1;
	}
	ret = ipa_spawn(&pl.ipa, worker_path());
	if (ret) {
		fprintf(stderr, "camera-pipeline: starting the worker: %s\n",
			strerror(-ret));
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
	if (!ret && ipa_call(&pl.ipa, IPA_CMD_STOP, NULL, 0, NULL, 0, NULL, 0) < 0)
		ret = -EPIPE;
	ipcsock_free(pl.ipa.sock);
	ipcsock_loop_free(pl.ipa.loop);
	status = ipa_reap(&pl.ipa);

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
